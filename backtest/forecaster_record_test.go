package backtest

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/nomadscalerd/nomadscalerd/model"
	"github.com/nomadscalerd/nomadscalerd/optimize"
)

func TestEveryRefitIsHandedOverAsARecordAndASeedWarmStartsTheNextFit(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	cfg := ForecastConfig{Step: 10, Orders: []model.Order{{P: 1, D: 0, Q: 0}}, RefitEvery: time.Minute}
	f := NewModelForecaster(cfg, clock)
	var got []model.Record
	f.OnFit = func(r model.Record) { got = append(got, r) }
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
	g := NewModelForecaster(cfg, clock)
	g.Seed(got[0])
	if w := g.warm["1,0,0"]; len(w) != len(got[0].Params) {
		t.Fatalf("seeded warm start %v", w)
	}
}
