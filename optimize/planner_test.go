package optimize

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

type errForecaster struct{ err error }

func (e errForecaster) Forecast(context.Context, History, int) ([]float64, error) { return nil, e.err }

type recordingForecaster struct {
	out   []float64
	steps int
}

func (r *recordingForecaster) Forecast(_ context.Context, _ History, steps int) ([]float64, error) {
	r.steps = steps
	return r.out, nil
}

func TestPlannerForecastsSolvesAndStampsThePlan(t *testing.T) {
	m, _ := newTestMetrics(t)
	pl := NewPlanner(LastValueForecaster{}, DPSolver{}, m, nil)
	tmpl := DefaultProblem()
	tmpl.CurrentReplicas = 3
	plan, err := pl.Plan(context.Background(), PlanRequest{
		History: History{Requests: []float64{5, 10, 55}}, Problem: tmpl, Horizon: 4, Start: t0,
	})
	if err != nil {
		t.Fatal(err)
	}
	// Demand 55 at capacity 10: 6 replicas, reached at 2 per second.
	if want := []int{5, 6, 6, 6}; !slices.Equal(plan.Desired, want) {
		t.Fatalf("desired %v, want %v", plan.Desired, want)
	}
	if plan.ID == "" || !plan.Start.Equal(t0) || plan.MaxReplicas != tmpl.MaxReplicas {
		t.Fatalf("plan not stamped: %+v", plan)
	}
	if got := testutil.ToFloat64(m.predictions); got != 1 {
		t.Fatalf("predictions %v, want 1", got)
	}
	if got := testutil.CollectAndCount(m.optimizationLatency); got != 1 {
		t.Fatalf("optimization latency series %d", got)
	}
}

func TestPlannerAsksForTheHorizonAndFloorsNegativeForecastsAtZero(t *testing.T) {
	f := &recordingForecaster{out: []float64{-5, -5, -5}}
	tmpl := DefaultProblem()
	tmpl.CurrentReplicas = 2
	plan, err := NewPlanner(f, DPSolver{}, nil, nil).Plan(context.Background(), PlanRequest{Problem: tmpl, Horizon: 3, Start: t0})
	if err != nil {
		t.Fatal(err)
	}
	if f.steps != 3 {
		t.Fatalf("forecaster asked for %d steps, want 3", f.steps)
	}
	if want := []int{0, 0, 0}; !slices.Equal(plan.Desired, want) {
		t.Fatalf("desired %v, want %v", plan.Desired, want)
	}
}

func TestPlannerCountsAndReturnsForecastFailures(t *testing.T) {
	m, _ := newTestMetrics(t)
	boom := errors.New("model not trained")
	_, err := NewPlanner(errForecaster{boom}, DPSolver{}, m, nil).Plan(context.Background(), PlanRequest{Problem: DefaultProblem(), Horizon: 3, Start: t0})
	if !errors.Is(err, boom) {
		t.Fatalf("err %v, want the forecaster's", err)
	}
	if got := testutil.ToFloat64(m.errors); got != 1 {
		t.Fatalf("errors %v, want 1", got)
	}
}

func TestPlannerRejectsShortOrNonFiniteForecasts(t *testing.T) {
	for name, out := range map[string][]float64{"short": {1}, "NaN": {1, nan(), 1}} {
		f := &recordingForecaster{out: out}
		_, err := NewPlanner(f, DPSolver{}, nil, nil).Plan(context.Background(), PlanRequest{Problem: DefaultProblem(), Horizon: 3, Start: t0})
		if err == nil {
			t.Errorf("%s forecast: want an error", name)
		}
	}
}

func nan() float64 { var z float64; return z / z }

func TestServingAPlannedPlanRefreshesThroughThePlanner(t *testing.T) {
	// The reconciler's loop: serve, refresh after two passes through the
	// Planner, keep serving when the Planner fails.
	tmpl := DefaultProblem()
	history := History{Requests: []float64{20}}
	good := NewPlanner(LastValueForecaster{}, DPSolver{}, nil, nil)
	bad := NewPlanner(errForecaster{errors.New("down")}, DPSolver{}, nil, nil)
	produce := func(pl *Planner, now time.Time) func(context.Context) (Plan, error) {
		return func(ctx context.Context) (Plan, error) {
			return pl.Plan(ctx, PlanRequest{History: history, Problem: tmpl, Horizon: 3, Start: now})
		}
	}
	var cur Plan
	_, cur, err := Serve(context.Background(), t0, cur, produce(good, t0))
	if err != nil || cur.ID == "" {
		t.Fatalf("first plan: %v", err)
	}
	first := cur.ID
	now := t0.Add(6 * time.Second)
	v, next, err := Serve(context.Background(), now, cur, produce(bad, now))
	if err == nil || next.ID != first || v != cur.Desired[0] {
		t.Fatalf("through a failure: (%d, %q, %v), want the old plan's value", v, next.ID, err)
	}
	_, next, err = Serve(context.Background(), now, cur, produce(good, now))
	if err != nil || next.ID == first || !next.Start.Equal(now) {
		t.Fatalf("refresh: (%q, %v), want a new plan starting now", next.ID, err)
	}
}

// bandForecaster is a fake BandForecaster returning a fixed band.
type bandForecaster struct{ band Band }

func (b bandForecaster) Forecast(ctx context.Context, h History, steps int) ([]float64, error) {
	return b.band.Plan, nil
}

func (b bandForecaster) ForecastBand(context.Context, History, int) (Band, error) { return b.band, nil }

func TestAPlanKeepsItsForecastsBandAndBurstHeadroom(t *testing.T) {
	f := bandForecaster{Band{Plan: []float64{30, 30, 30}, Lower: []float64{10, 10, 10}, Upper: []float64{50, 50, 50}, Burst: 12.5}}
	plan, err := NewPlanner(f, DPSolver{}, nil, nil).Plan(context.Background(), PlanRequest{Problem: DefaultProblem(), Horizon: 3, Start: t0})
	if err != nil {
		t.Fatal(err)
	}
	if plan.Burst != 12.5 {
		t.Errorf("plan's burst headroom %v, want the band's 12.5", plan.Burst)
	}
	if !slices.Equal(plan.Lower, f.band.Lower) || !slices.Equal(plan.Upper, f.band.Upper) {
		t.Errorf("plan's band %v..%v, want the forecast's", plan.Lower, plan.Upper)
	}
}
