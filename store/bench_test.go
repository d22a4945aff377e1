package store

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkStoreWrite drives WritePoints the way the recorder does, one
// call per tick with a point for every series, and prints the write cost
// per tick and the bytes the bbolt file spends per stored point. It is run
// once by make bench-store (-benchtime 1x): the figures are the output,
// not b.N timings. BENCH_STORE_SERIES, BENCH_STORE_TICKS and
// BENCH_STORE_VALUES (a comma list of counts, rate1m, noisy) change the
// run.
func BenchmarkStoreWrite(b *testing.B) {
	series := benchEnvInt(b, "BENCH_STORE_SERIES", 5000)
	ticks := benchEnvInt(b, "BENCH_STORE_TICKS", 1200)
	kinds := strings.Split(cmpOr(os.Getenv("BENCH_STORE_VALUES"), "counts,rate1m,noisy"), ",")
	for _, kind := range kinds {
		b.Run(kind, func(b *testing.B) {
			for range b.N {
				benchWrite(b, kind, series, ticks)
			}
		})
	}
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func benchEnvInt(b *testing.B, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive integer", name, s)
	}
	return n
}

// valueGen returns the value of series s at tick i. The kinds are what
// nomadscalerd's samples look like: counts are requests per second at 1 s
// sampling (whole numbers around a level that drifts over the day, with
// Poisson-like noise); rate1m is Prometheus' rate() over a 1-minute window
// of such a counter (multiples of 1/60, full-mantissa floats); noisy is
// the worst case, a level times (1 + 10% gaussian noise) at full precision.
func valueGen(b *testing.B, kind string, series int) func(s, i int) float64 {
	r := rand.New(rand.NewPCG(1, 2))
	base := make([]float64, series)
	phase := make([]float64, series)
	for s := range base {
		base[s] = math.Exp(math.Log(10) + r.Float64()*math.Log(200)) // 10 to 2,000 per second
		phase[s] = r.Float64() * 2 * math.Pi
	}
	level := func(s, i int) float64 {
		return base[s] * (1 + 0.3*math.Sin(2*math.Pi*float64(i)/86400+phase[s]))
	}
	switch kind {
	case "counts":
		return func(s, i int) float64 {
			l := level(s, i)
			return math.Max(0, math.Round(l+math.Sqrt(l)*r.NormFloat64()))
		}
	case "rate1m":
		return func(s, i int) float64 {
			l := level(s, i)
			return math.Max(0, math.Round(60*l+math.Sqrt(60*l)*r.NormFloat64())) / 60
		}
	case "noisy":
		return func(s, i int) float64 { return level(s, i) * (1 + 0.1*r.NormFloat64()) }
	}
	b.Fatalf("BENCH_STORE_VALUES: unknown kind %q (counts, rate1m, noisy)", kind)
	return nil
}

func benchWrite(b *testing.B, kind string, series, ticks int) {
	path := filepath.Join(b.TempDir(), "bench.db")
	d, err := Open(path, Options{Migrate: true})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	gen := valueGen(b, kind, series)
	names := make([]string, series)
	for s := range names {
		names[s] = fmt.Sprintf("default/service-%04d/web/requests-%d", s/5, s%5)
	}
	start := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	costs := make([]time.Duration, 0, ticks)
	pts := make([]Point, series)
	for i := range ticks {
		at := start.Add(time.Duration(i) * time.Second)
		for s := range pts {
			pts[s] = Point{Series: names[s], T: at, V: gen(s, i)}
		}
		t0 := time.Now()
		if err := d.WritePoints(pts); err != nil {
			b.Fatal(err)
		}
		costs = append(costs, time.Since(t0))
	}
	b.StopTimer()
	points := ticks * series
	f, err := d.Footprint()
	if err != nil {
		b.Fatal(err)
	}
	slices.Sort(costs)
	pct := func(p float64) float64 {
		return float64(costs[int(math.Ceil(p*float64(len(costs))))-1].Microseconds()) / 1000
	}
	per := func(n, pts int64) float64 { return float64(n) / float64(pts) }
	fmt.Printf("bench-store values=%s series=%d ticks=%d (1 s apart): write per tick p50 %.1f ms, p99 %.1f ms, max %.1f ms\n",
		kind, series, ticks, pct(0.50), pct(0.99), pct(1))
	fmt.Printf("bench-store values=%s: sealed chunks hold %d points: %.2f bytes/point of chunk+key+bbolt header, %.2f bytes/point of pages (part-filled last page per series included)\n",
		kind, f.ChunkPoints, per(f.ChunkBytes, f.ChunkPoints), f.ChunkPageBytesPerPoint())
	fmt.Printf("bench-store values=%s: whole file %d bytes for %d points = %.2f bytes/point (open-window log %d bytes, free pages %d bytes, preallocated tail %d bytes)\n",
		kind, f.FileBytes, points, per(f.FileBytes, int64(points)), f.HeadPageBytes, f.FreePageBytes, f.TailBytes)
	b.ReportMetric(pct(0.50), "p50-ms/tick")
	b.ReportMetric(pct(0.99), "p99-ms/tick")
	b.ReportMetric(f.ChunkPageBytesPerPoint(), "chunk-page-bytes/point")
}
