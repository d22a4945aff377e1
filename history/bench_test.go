package history

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nomadscalerd/nomadscalerd/clock"
	"github.com/nomadscalerd/nomadscalerd/store"
)

// BenchmarkTick measures one tick of 100 series into a real bbolt file: the
// sampling fan-out plus one write transaction (with its fsync).
func BenchmarkTick(b *testing.B) {
	for _, n := range []int{10, 100} {
		b.Run(fmt.Sprintf("series=%d", n), func(b *testing.B) {
			db, err := store.Open(b.TempDir()+"/b.db", store.Options{Migrate: true})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			targets := make([]Target, n)
			for i := range targets {
				targets[i] = target(fmt.Sprintf("ns/job/g%d/requests", i), "q")
			}
			clk := clock.NewFake(t0)
			r, err := NewRecorder(db, constSource(1), TargetsFunc(func() []Target { return targets }), clk, Config{})
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				clk.Advance(time.Second)
				if err := r.Tick(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAlign aligns a day of per-second samples of three series, the
// forecaster's largest window.
func BenchmarkAlign(b *testing.B) {
	const n = 86400
	in := map[string][]store.Sample{}
	for _, name := range []string{"y", "cpu", "mem"} {
		s := make([]store.Sample, 0, n)
		for i := 0; i < n; i++ {
			if i%97 == 50 {
				continue // gaps
			}
			s = append(s, store.Sample{T: t0.Add(time.Duration(i)*time.Second + 3*time.Millisecond), V: float64(i)})
		}
		in[name] = s
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		times, _ := Align(in, time.Second)
		if len(times) != n {
			b.Fatalf("%d rows", len(times))
		}
	}
}

// BenchmarkRollUp rolls up an hour of per-second samples of ten series.
func BenchmarkRollUp(b *testing.B) {
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		db, err := store.Open(b.TempDir()+"/b.db", store.Options{Migrate: true})
		if err != nil {
			b.Fatal(err)
		}
		var pts []store.Point
		for s := 0; s < 10; s++ {
			for k := 0; k < 3600; k++ {
				pts = append(pts, store.Point{Series: fmt.Sprintf("p/m%d", s), T: t0.Add(time.Duration(k) * time.Second), V: float64(k)})
			}
		}
		if err := db.WritePoints(pts); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		n, err := RollUp(context.Background(), db, time.Minute, t0.Add(time.Hour))
		if err != nil || n != 600 {
			b.Fatalf("%d rollups, %v", n, err)
		}
		b.StopTimer()
		db.Close()
	}
}
