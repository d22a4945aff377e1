package optimize

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/nomadscalerd/nomadscalerd/forecast"
)

// The forecast types are package forecast's (the model makes them without
// importing this package); these names keep the planner's API whole.
type (
	History        = forecast.History
	Forecaster     = forecast.Forecaster
	Band           = forecast.Band
	BandForecaster = forecast.BandForecaster
)

// LastValueForecaster repeats the last observed value; it stands in for a
// model in tests and in the test-data mode.
type LastValueForecaster struct{}

// Forecast implements Forecaster.
func (LastValueForecaster) Forecast(_ context.Context, h History, steps int) ([]float64, error) {
	if len(h.Requests) == 0 {
		return nil, errors.New("last value forecast: empty history")
	}
	out := make([]float64, steps)
	for i := range out {
		out[i] = h.Requests[len(h.Requests)-1]
	}
	return out, nil
}

// FixedForecaster returns a known demand series, ignoring the history: the
// offline CLI plans for a given series with it. Shorter series are padded
// with their last value.
type FixedForecaster []float64

// Forecast implements Forecaster.
func (f FixedForecaster) Forecast(_ context.Context, _ History, steps int) ([]float64, error) {
	if len(f) == 0 {
		return nil, errors.New("fixed forecast: empty series")
	}
	out := make([]float64, steps)
	for i := range out {
		out[i] = f[min(i, len(f)-1)]
	}
	return out, nil
}

// Planner is the single path from history to plan, shared by the API, the
// reconciler and the backtest.
type Planner struct {
	forecaster Forecaster
	solver     Solver
	metrics    *Metrics
	log        *slog.Logger
}

// NewPlanner returns a Planner. metrics may be nil; log may be nil.
func NewPlanner(f Forecaster, s Solver, m *Metrics, log *slog.Logger) *Planner {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Planner{forecaster: f, solver: s, metrics: m, log: log}
}

// PlanRequest is one call of Plan.
type PlanRequest struct {
	History History
	// Problem is the template: everything but Demand, which Plan fills from
	// the forecast.
	Problem Problem
	// Horizon is the plan length in seconds (the seed's cache_size).
	Horizon int
	// Start stamps the plan: its first second.
	Start time.Time
}

// Plan forecasts Horizon seconds, turns the forecast into demand (negative
// values become 0), solves, and returns the plan stamped with a fresh ID
// and r.Start.
func (pl *Planner) Plan(ctx context.Context, r PlanRequest) (Plan, error) {
	plan, err := pl.plan(ctx, r)
	if err != nil {
		pl.metrics.failed()
		if errors.Is(err, ErrShortHistory) {
			pl.log.Debug("optimizer plan waits for history", "err", err)
		} else {
			pl.log.Error("optimizer plan failed", "err", err)
		}
		return Plan{}, err
	}
	pl.metrics.prediction()
	return plan, nil
}

func (pl *Planner) plan(ctx context.Context, r PlanRequest) (Plan, error) {
	if r.Horizon < 1 {
		return Plan{}, fmt.Errorf("plan: horizon %d is not positive", r.Horizon)
	}
	start := time.Now()
	var band Band
	var err error
	if bf, ok := pl.forecaster.(BandForecaster); ok {
		band, err = bf.ForecastBand(ctx, r.History, r.Horizon)
	} else {
		band.Plan, err = pl.forecaster.Forecast(ctx, r.History, r.Horizon)
	}
	forecast := band.Plan
	pl.metrics.forecastTook(elapsedSeconds(start))
	if err != nil {
		return Plan{}, fmt.Errorf("forecast: %w", err)
	}
	if len(forecast) < r.Horizon {
		return Plan{}, fmt.Errorf("forecast: got %d steps, want %d", len(forecast), r.Horizon)
	}
	p := r.Problem
	p.Demand = make([]float64, r.Horizon)
	for t := range p.Demand {
		v := forecast[t]
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return Plan{}, fmt.Errorf("forecast: step %d is %v", t, v)
		}
		p.Demand[t] = math.Max(0, v)
	}
	start = time.Now()
	plan, err := pl.solver.Solve(ctx, p)
	pl.metrics.optimizationTook(elapsedSeconds(start))
	if err != nil {
		return Plan{}, fmt.Errorf("optimize: %w", err)
	}
	plan.Start = r.Start
	plan.ID = newPlanID(r.Start)
	if len(plan.Desired) == len(p.Demand) {
		plan.Demand = p.Demand
	}
	if len(band.Upper) >= r.Horizon && len(band.Lower) >= r.Horizon {
		plan.Lower, plan.Upper = band.Lower[:r.Horizon], band.Upper[:r.Horizon]
	}
	plan.Burst = band.Burst
	pl.log.Debug("optimizer planned", "id", plan.ID, "solver", plan.Solver, "objective", plan.Objective, "seconds", len(plan.Desired))
	return plan, nil
}

func elapsedSeconds(start time.Time) float64 { return time.Since(start).Seconds() }
