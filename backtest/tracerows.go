package backtest

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// A trace of timed rows ("TIME,COUNT", one row a second, a minute or any
// other step) is how most published request counts come: the backtest
// reads it as it is rather than asking for a conversion first, laying each
// row's count over the seconds it counts.

// Row time layouts, tried after whole unix seconds (or milliseconds).
var rowTimeLayouts = []string{
	"2006-01-02 15:04:05",
	"2006-01-02T15:04:05",
	time.RFC3339,
	"2006-01-02 15:04",
	"2006-01-02T15:04",
	"2006-01-02 15:04:05Z07:00",
	"2006-01-02 15:04:05 -0700",
	"02/Jan/2006:15:04:05 -0700",
}

// unixMillisFrom is where a whole-number time is read as unix
// milliseconds: 1e11 seconds is the year 5138, 1e11 milliseconds 1973.
const unixMillisFrom = 1e11

// ParseRowTime reads a row's time: whole unix seconds (or milliseconds,
// from 1e11), "2006-01-02 15:04[:05]" with a space or a T, RFC 3339, or a
// web server log's "02/Jan/2006:15:04:05 -0700". Times without a zone are
// UTC.
func ParseRowTime(s string) (time.Time, error) {
	s = strings.Trim(strings.TrimSpace(s), `"'`)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n >= unixMillisFrom {
			return time.UnixMilli(n).UTC(), nil
		}
		return time.Unix(n, 0).UTC(), nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && f >= 0 && f < unixMillisFrom {
		// "898473605.0": a whole second written as a float.
		if f == math.Trunc(f) {
			return time.Unix(int64(f), 0).UTC(), nil
		}
	}
	for _, l := range rowTimeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("time %q: want unix seconds, 2006-01-02 15:04[:05] or RFC 3339", s)
}

// parseRowCount reads a row's count of requests: a non-negative number,
// also written as a float ("94.0"). A fractional count (a rate averaged
// over the row) is kept as it is.
func parseRowCount(s string) (float64, error) {
	s = strings.Trim(strings.TrimSpace(s), `"'`)
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("count %q: want a non-negative number", s)
	}
	return v, nil
}

// splitRow splits a row into its time and count: comma-, semicolon- or
// tab-separated rows are TIME,COUNT[,...] (further columns ignored);
// space-separated ones end with the count, and the fields before it are
// the time ("1995-07-01 00:00:00 3"). ok is false for a row of one field.
func splitRow(s string) (timeField, countField string, ok bool) {
	for _, sep := range []string{",", ";", "\t"} {
		if strings.Contains(s, sep) {
			f := strings.Split(s, sep)
			return f[0], f[1], true
		}
	}
	f := strings.Fields(s)
	if len(f) < 2 {
		return "", "", false
	}
	return strings.Join(f[:len(f)-1], " "), f[len(f)-1], true
}

// timedRows collects a trace's timed rows, then lays them onto seconds.
type timedRows struct {
	at    []int64 // unix seconds
	count []float64
}

// Add reads one row; it is an error when its time or its count does not
// read.
func (tr *timedRows) Add(row string) error {
	tf, cf, ok := splitRow(row)
	if !ok {
		return fmt.Errorf("%q: want TIME,COUNT", row)
	}
	t, err := ParseRowTime(tf)
	if err != nil {
		return err
	}
	c, err := parseRowCount(cf)
	if err != nil {
		return err
	}
	tr.at = append(tr.at, t.Unix())
	tr.count = append(tr.count, c)
	return nil
}

// isHeader reports whether a first line is a header rather than a row: it
// splits into fields, but its time or count does not read.
func isHeader(row string) bool {
	tf, cf, ok := splitRow(row)
	if !ok {
		_, err := strconv.ParseFloat(strings.TrimSpace(row), 64)
		return err != nil
	}
	_, terr := ParseRowTime(tf)
	_, cerr := parseRowCount(cf)
	return terr != nil || cerr != nil
}

// RowsInfo says how timed rows were laid onto seconds.
type RowsInfo struct {
	Rows int
	// Step is the seconds one row counts: the commonest gap between
	// successive row times (the shorter of two as common).
	Step          int
	First, End    time.Time // the seconds [First, End) the trace covers
	MissingRows   int       // steps with no row, counted as zero requests
	FractionalRow bool      // some count was not whole: laid on evenly as a rate
}

// PerSecond lays the rows onto seconds: each row's count over the Step
// seconds from its time, as evenly as whole requests allow (second s of
// the step gets floor((s+1)c/step) - floor(sc/step), so the seconds sum
// to c and differ by at most one; a fractional count is divided evenly).
// Rows for the same time are summed; times without a row count zero.
func (tr *timedRows) PerSecond() ([]float64, RowsInfo, error) {
	if len(tr.at) == 0 {
		return nil, RowsInfo{}, fmt.Errorf("no TIME,COUNT rows")
	}
	idx := make([]int, len(tr.at))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(tr.at[a], tr.at[b]) })
	gaps := map[int64]int{}
	distinct := 1
	for k := 1; k < len(idx); k++ {
		if g := tr.at[idx[k]] - tr.at[idx[k-1]]; g > 0 {
			gaps[g]++
			distinct++
		}
	}
	step := int64(1)
	best := 0
	for g, n := range gaps {
		if n > best || n == best && g < step {
			step, best = g, n
		}
	}
	first, last := tr.at[idx[0]], tr.at[idx[len(idx)-1]]
	n := last - first + step
	const maxSeconds = 400 * 86400
	if n > maxSeconds {
		return nil, RowsInfo{}, fmt.Errorf("rows from %s to %s span %d days: at most 400 are read", time.Unix(first, 0).UTC(), time.Unix(last, 0).UTC(), n/86400)
	}
	out := make([]float64, n)
	info := RowsInfo{Rows: len(idx), Step: int(step), First: time.Unix(first, 0).UTC(), End: time.Unix(last+step, 0).UTC()}
	info.MissingRows = int((n+step-1)/step) - distinct
	if info.MissingRows < 0 {
		info.MissingRows = 0
	}
	for _, i := range idx {
		c, off := tr.count[i], tr.at[i]-first
		// Whole counts below 2^35 spread exactly without overflowing
		// (s+1)*c for any step of the 400 days.
		whole := c == math.Trunc(c) && c < 1<<35
		info.FractionalRow = info.FractionalRow || !whole
		for s := int64(0); s < step && off+s < n; s++ {
			if whole {
				w := int64(c)
				out[off+s] += float64((s+1)*w/step - s*w/step)
			} else {
				out[off+s] += c / float64(step)
			}
		}
	}
	return out, info, nil
}
