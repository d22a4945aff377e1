package model

import (
	"context"
	"testing"
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
