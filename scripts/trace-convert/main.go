// Command trace-convert turns a request-count series into the backtest's
// trace format: one integer count a line, one line a second, gzip.
//
//	go run ./scripts/trace-convert -in counts.csv -from '1998-06-22 00:00' -to '1998-06-29 00:00' \
//	    -out backtest/testdata/traces/NAME-per-second.txt.gz
//
// The backtest reads such rows as they are (backtest.ReadTrace); this
// command makes a file of seconds to keep, or one cut to [-from, -to).
//
// The input is CSV lines "TIME,COUNT[,...]" with TIME as the backtest
// reads it (backtest.ParseRowTime: unix seconds, "2006-01-02 15:04[:05]",
// RFC 3339, ...); each row counts the requests of -step seconds
// from TIME (default 60: per-minute counts). Other columns are ignored; a
// header line or any line whose first two fields do not parse is skipped
// and counted. Rows for the same time are summed (a minute split across two
// source files appears twice). Times missing from the input count zero. A
// row's count c is spread over its step seconds as evenly as integers
// allow: second s of the step gets floor((s+1)c/step) - floor(sc/step), so
// the seconds sum to c and differ by at most one. It prints the span, the number of seconds, the mean and the
// maximum per second, and how many rows were skipped.
package main

import (
	"bufio"
	"compress/gzip"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/nomadscalerd/nomadscalerd/backtest"
)

const (
	minuteLayout = "2006-01-02 15:04"
	secondLayout = "2006-01-02 15:04:05"
)

func main() {
	in := flag.String("in", "", "input CSV (TIME,COUNT per line); - for stdin")
	out := flag.String("out", "", "output .txt.gz")
	from := flag.String("from", "", "first second to write, "+minuteLayout+" or "+secondLayout+" (default: the first input row)")
	to := flag.String("to", "", "end (exclusive), same layouts (default: after the last input row)")
	step := flag.Int("step", 60, "seconds each input row counts")
	flag.Parse()
	if *in == "" || *out == "" || *step < 1 {
		flag.Usage()
		os.Exit(2)
	}
	var r io.Reader = os.Stdin
	if *in != "-" {
		f, err := os.Open(*in)
		if err != nil {
			log.Fatal(err)
		}
		defer f.Close()
		r = f
	}
	counts, skipped, err := readCounts(r, *step)
	if err != nil {
		log.Fatal(err)
	}
	if len(counts) == 0 {
		log.Fatalf("no rows read (%d skipped): each row is TIME,COUNT with a whole count", skipped)
	}
	lo, hi := span(counts)
	if *from != "" {
		if lo, err = parseTime(*from); err != nil {
			log.Fatal(err)
		}
	}
	if *to != "" {
		if hi, err = parseTime(*to); err != nil {
			log.Fatal(err)
		}
	}
	if !hi.After(lo) {
		log.Fatalf("empty span [%s, %s)", lo, hi)
	}
	perSecond := spread(counts, lo, hi)
	if err := write(*out, perSecond); err != nil {
		log.Fatal(err)
	}
	var sum, peak int64
	for _, v := range perSecond {
		sum += v
		peak = max(peak, v)
	}
	fmt.Printf("span %s .. %s, %d seconds, mean %.2f/s, max %d/s, %d input rows skipped\n",
		lo.Format(secondLayout), hi.Format(secondLayout), len(perSecond),
		float64(sum)/float64(len(perSecond)), peak, skipped)
}

// bucket is one input row's time and the seconds it counts.
type bucket struct {
	t     time.Time
	width int
}

func readCounts(r io.Reader, step int) (map[bucket]int64, int, error) {
	counts := map[bucket]int64{}
	skipped := 0
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		fields := strings.Split(strings.TrimSpace(sc.Text()), ",")
		if len(fields) < 2 {
			skipped++
			continue
		}
		t, err := parseTime(fields[0])
		if err != nil {
			skipped++
			continue
		}
		n, ok := parseCount(fields[1])
		if !ok {
			skipped++
			continue
		}
		counts[bucket{t, step}] += n
	}
	return counts, skipped, sc.Err()
}

// parseCount reads a row's count: a whole, non-negative number, also
// when written as a float ("94.0", as NAB's CSVs write theirs). A
// fractional count is not a number of requests, and is skipped.
func parseCount(s string) (int64, bool) {
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, n >= 0
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 || f != math.Trunc(f) || f > math.MaxInt64/2 {
		return 0, false
	}
	return int64(f), true
}

// parseTime reads a row's time as the backtest reads a timed trace's
// (backtest.ParseRowTime), so a file converted here and the same file
// given to the backtest as it is lay the same seconds.
func parseTime(s string) (time.Time, error) { return backtest.ParseRowTime(s) }

func span(counts map[bucket]int64) (lo, hi time.Time) {
	first := true
	for b := range counts {
		end := b.t.Add(time.Duration(b.width) * time.Second)
		if first || b.t.Before(lo) {
			lo = b.t
		}
		if first || end.After(hi) {
			hi = end
		}
		first = false
	}
	return lo, hi
}

// spread lays the buckets onto seconds [lo, hi).
func spread(counts map[bucket]int64, lo, hi time.Time) []int64 {
	n := int(hi.Sub(lo) / time.Second)
	out := make([]int64, n)
	for b, c := range counts {
		w := int64(b.width)
		for s := int64(0); s < w; s++ {
			i := int(b.t.Sub(lo)/time.Second) + int(s)
			if i < 0 || i >= n {
				continue
			}
			out[i] += (s+1)*c/w - s*c/w
		}
	}
	return out
}

func write(path string, perSecond []int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	zw, err := gzip.NewWriterLevel(f, gzip.BestCompression)
	if err != nil {
		f.Close()
		return err
	}
	bw := bufio.NewWriter(zw)
	for _, v := range perSecond {
		bw.WriteString(strconv.FormatInt(v, 10))
		bw.WriteByte('\n')
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := zw.Close(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
