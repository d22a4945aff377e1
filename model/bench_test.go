package model

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/nomadscalerd/nomadscalerd/forecast"
)

// BenchmarkSelectDefaultOrdersAndForecast fits the four default candidates
// with 4 exog columns on 3600 points and forecasts 60 steps: the workload
// scripts/bench-model.sh times statsmodels on.
func BenchmarkSelectDefaultOrdersAndForecast(b *testing.B) {
	hist, err := ReadCSVFile("testdata/golden/bench_n3600.csv", true)
	if err != nil {
		b.Fatal(err)
	}
	fut, err := ReadCSVFile("testdata/golden/bench_n3600_future.csv", false)
	if err != nil {
		b.Fatal(err)
	}
	if len(hist.Names) != 4 || len(hist.Y) != 3600 || len(fut.Exog) < 60 {
		b.Fatalf("benchmark data has %d exog columns, %d points, %d future rows", len(hist.Names), len(hist.Y), len(fut.Exog))
	}
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		sel, err := Select(ctx, hist.Y, hist.Exog, DefaultOrders(), nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := sel.Best.Forecast(hist.Y, hist.Exog, fut.Exog[:60], 60); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLogLikelihood is one concentrated likelihood evaluation of an
// ARIMA(1,1,1) with 4 exog columns on 3600 points.
func BenchmarkLogLikelihood(b *testing.B) {
	hist, err := ReadCSVFile("testdata/golden/bench_n3600.csv", true)
	if err != nil {
		b.Fatal(err)
	}
	s := newSpec(Order{P: 1, D: 1, Q: 1}, 4)
	ev := newEvaluator(s, hist.Y, hist.Exog)
	x := []float64{0.5, -0.3, 0}
	for b.Loop() {
		if _, ok := ev.profileLLF(x, nil); !ok {
			b.Fatal("not finite")
		}
	}
}

// BenchmarkFirstForecastAfterARestart is a policy's first forecast after a
// restart at the daemon's defaults (an hour of 1 s history, 10 s steps,
// the four default orders, a 60 s plan): "fit" selects an order and fits
// it, as every policy did in the daemon's first minute; "resumed" forecasts
// from a fresh stored fit (Forecaster.Resume); "fit, a day of history"
// is the fit of a policy whose history_window is a day.
func BenchmarkFirstForecastAfterARestart(b *testing.B) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	cfg := ForecastConfig{Step: 10, Orders: DefaultOrders(), RefitEvery: time.Hour, Margin: 1.15, NoiseMargin: 3, Settings: "bench"}
	rng := rand.New(rand.NewPCG(1, 2))
	h := forecast.History{Requests: make([]float64, 3600)}
	for i := range h.Requests {
		h.Requests[i] = 100 + 30*math.Sin(float64(i)/600) + rng.NormFloat64()*8
	}
	ctx := context.Background()
	var rec Record
	f := NewForecaster(cfg, clock)
	f.OnFit = func(r Record) { rec = r }
	if _, err := f.Forecast(ctx, h, 60); err != nil || len(rec.Params) == 0 {
		b.Fatalf("fit: %v, record %+v", err, rec)
	}
	b.Run("fit", func(b *testing.B) {
		for b.Loop() {
			if _, err := NewForecaster(cfg, clock).Forecast(ctx, h, 60); err != nil {
				b.Fatal(err)
			}
		}
	})
	// A policy that reads a day (history_window = "1d") and declares no
	// season: the model is fitted on the latest hour of it.
	day := forecast.History{Requests: make([]float64, 86400)}
	for i := range day.Requests {
		day.Requests[i] = 100 + 30*math.Sin(float64(i)/600) + rng.NormFloat64()*8
	}
	b.Run("fit, a day of history", func(b *testing.B) {
		for b.Loop() {
			if _, err := NewForecaster(cfg, clock).Forecast(ctx, day, 60); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("resumed", func(b *testing.B) {
		for b.Loop() {
			g := NewForecaster(cfg, clock)
			if !g.Resume(rec) {
				b.Fatal("the stored fit was not resumed")
			}
			if _, err := g.Forecast(ctx, h, 60); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkBurstHeadroom is the burst headroom of one plan: an hour of
// seconds, 28,800 deviations, one selection. BenchmarkPlanFromAFittedModel
// is a whole plan's forecast between refits, with and without it: the
// share a policy's plan pays for it.
func BenchmarkBurstHeadroom(b *testing.B) {
	x := bursty(2 * 3600)
	var s burstScratch
	for b.Loop() {
		if q := s.headroom(x, 0.935, 0); q <= 0 {
			b.Fatalf("headroom %v", q)
		}
	}
}

func BenchmarkPlanFromAFittedModel(b *testing.B) {
	h := forecast.History{Requests: bursty(3600)}
	for _, q := range []float64{0, 0.935} {
		b.Run(fmt.Sprintf("burst_quantile=%g", q), func(b *testing.B) {
			cfg := DefaultForecastConfig()
			cfg.Step, cfg.Sqrt, cfg.Margin, cfg.NoiseMargin, cfg.BurstQuantile = 10, false, 1.15, 3, q
			f := NewForecaster(cfg, func() time.Time { return time.Unix(0, 0) })
			ctx := context.Background()
			if _, err := f.ForecastBand(ctx, h, 60); err != nil { // the fit, kept for the hour
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := f.ForecastBand(ctx, h, 60); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkMemoryAForecasterHoldsBetweenPlans reports what one policy's
// forecaster keeps once it has fitted and planned (its fit, warm starts,
// the burst headroom's buffer), as held_bytes/policy. The daemon holds one
// per policy, so what a forecaster keeps is multiplied by a thousand where
// allocations a plan are not: the burst headroom's first build held 320 KB
// a policy with no allocation a plan (171 MiB more anonymous memory at
// 1,000 policies, found by make bench-scale).
func BenchmarkMemoryAForecasterHoldsBetweenPlans(b *testing.B) {
	h := forecast.History{Requests: bursty(3600)}
	cfg := DefaultForecastConfig()
	cfg.Step, cfg.Sqrt, cfg.Margin, cfg.NoiseMargin, cfg.BurstQuantile = 10, false, 1.15, 3, 0.935
	ctx := context.Background()
	const policies = 50
	var held float64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		fs := make([]*Forecaster, policies)
		for i := range fs {
			fs[i] = NewForecaster(cfg, func() time.Time { return time.Unix(0, 0) })
			for range 2 { // the fit, then a plan from it
				if _, err := fs[i].ForecastBand(ctx, h, 60); err != nil {
					b.Fatal(err)
				}
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		held = (float64(after.HeapAlloc) - float64(before.HeapAlloc)) / policies
		runtime.KeepAlive(fs)
	}
	b.ReportMetric(held, "held_bytes/policy")
}
