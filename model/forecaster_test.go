package model

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/nomadscalerd/nomadscalerd/optimize"
)

func TestForecasterRefusesTooShortAHistory(t *testing.T) {
	f := NewForecaster(DefaultForecastConfig(), time.Now)
	_, err := f.Forecast(context.Background(), optimize.History{Requests: make([]float64, 600)}, 60)
	if !errors.Is(err, ErrShortHistory) {
		t.Fatalf("err = %v, want ErrShortHistory", err)
	}
}

func TestForecasterFollowsARampAndAddsItsMargin(t *testing.T) {
	// 4 hours rising by 1 request/s every minute, plus a little noise.
	rng := rand.New(rand.NewPCG(5, 8))
	h := make([]float64, 4*3600)
	for s := range h {
		h[s] = 20 + float64(s)/60 + rng.NormFloat64()*0.5
	}
	last := 20 + float64(len(h))/60
	for _, sqrt := range []bool{false, true} {
		cfg := DefaultForecastConfig()
		cfg.Sqrt = sqrt
		cfg.Margin = 0
		mean, err := NewForecaster(cfg, time.Now).Forecast(context.Background(), optimize.History{Requests: h}, 600)
		if err != nil {
			t.Fatal(err)
		}
		// Ten minutes on, the ramp is 10 higher.
		if got := mean[599]; math.Abs(got-(last+10)) > 2 {
			t.Errorf("sqrt %v: forecast 600 s ahead %.1f, want about %.1f", sqrt, got, last+10)
		}
		if math.Abs(mean[0]-last) > 2 {
			t.Errorf("sqrt %v: forecast 1 s ahead %.1f, want about %.1f", sqrt, mean[0], last)
		}
		cfg.Margin = 2
		upper, err := NewForecaster(cfg, time.Now).Forecast(context.Background(), optimize.History{Requests: h}, 600)
		if err != nil {
			t.Fatal(err)
		}
		for s := range upper {
			if upper[s] < mean[s] {
				t.Fatalf("sqrt %v: second %d: forecast with margin %.2f below the mean %.2f", sqrt, s, upper[s], mean[s])
			}
		}
		if upper[599] <= mean[599] {
			t.Errorf("sqrt %v: margin added nothing 600 s ahead", sqrt)
		}
	}
}

func TestEveryRefitIsHandedOverAsARecordAndASeedWarmStartsTheNextFit(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	cfg := ForecastConfig{Step: 10, Orders: []Order{{P: 1, D: 0, Q: 0}}, RefitEvery: time.Minute}
	f := NewForecaster(cfg, clock)
	var got []Record
	f.OnFit = func(r Record) { got = append(got, r) }
	h := optimize.History{Requests: make([]float64, 600)}
	for i := range h.Requests {
		h.Requests[i] = 50 + 10*math.Sin(float64(i)/30) + float64(i%7)
	}
	if _, err := f.Forecast(context.Background(), h, 30); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Forecast(context.Background(), h, 30); err != nil { // within RefitEvery: no new fit
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Order.String() != "1,0,0" || len(got[0].Params) == 0 || !got[0].TrainedAt.Equal(now) || got[0].NObs != 60 {
		t.Fatalf("records = %+v, want one fit of order 1,0,0 on 60 steps", got)
	}
	g := NewForecaster(cfg, clock)
	g.Seed(got[0])
	if w := g.warm["1,0,0"]; len(w) != len(got[0].Params) {
		t.Fatalf("seeded warm start %v", w)
	}
}
