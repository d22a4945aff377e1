package reconciler

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/nomadscalerd/nomadscalerd/history"
	"github.com/nomadscalerd/nomadscalerd/model"
	"github.com/nomadscalerd/nomadscalerd/optimize"
	"github.com/nomadscalerd/nomadscalerd/store"
)

// DemandFunc turns a policy's forecast of the requests series into demand,
// given the latest value of every other check (the seed's formula in model).
type DemandFunc func(p Policy, requests []float64, latest map[string]float64) []float64

// ForecasterFactory builds the forecaster of a policy; it is called once
// per policy and kept, so it may hold fitted parameters between plans.
type ForecasterFactory func(p Policy) optimize.Forecaster

// HistoryPlanner is the production Planner: it reads the policy's recorded
// history from bbolt, forecasts with the policy's forecaster, converts the
// forecast into demand and solves for a plan with the optimize package's
// Planner, the same path the API and the backtest use.
type HistoryPlanner struct {
	hist       history.RangeReader
	newFC      ForecasterFactory
	demand     DemandFunc
	solver     optimize.Solver
	metrics    *optimize.Metrics
	log        *slog.Logger
	mu         sync.Mutex
	forecaster map[string]optimize.Forecaster
	gauges     *Metrics
	resources  GroupResources
}

// GroupResources reads what one replica of a group is allocated; satisfied
// by the Nomad client wrapper. Needed only by policies that price CPU or
// memory.
type GroupResources interface {
	GroupResources(ctx context.Context, namespace, job, group string) (cpuMHz, memoryMiB float64, err error)
}

// WithResources lets policies price a replica by its allocated CPU and
// memory (cpu_price, memory_price).
func (hp *HistoryPlanner) WithResources(r GroupResources) *HistoryPlanner {
	hp.resources = r
	return hp
}

// WithMetrics makes the planner publish each plan's forecast next to the
// latest observation (nomadscaler_forecast_requests and
// nomadscaler_observed_requests).
func (hp *HistoryPlanner) WithMetrics(m *Metrics) *HistoryPlanner {
	hp.gauges = m
	return hp
}

// NewHistoryPlanner builds the planner; demand may be nil (demand is the
// requests forecast itself).
func NewHistoryPlanner(h history.RangeReader, f ForecasterFactory, demand DemandFunc, s optimize.Solver, m *optimize.Metrics, log *slog.Logger) *HistoryPlanner {
	if log == nil {
		log = slog.Default()
	}
	return &HistoryPlanner{hist: h, newFC: f, demand: demand, solver: s, metrics: m, log: log, forecaster: map[string]optimize.Forecaster{}}
}

func (hp *HistoryPlanner) forecasterFor(p Policy) optimize.Forecaster {
	hp.mu.Lock()
	defer hp.mu.Unlock()
	f, ok := hp.forecaster[p.Key]
	if !ok {
		f = hp.newFC(p)
		hp.forecaster[p.Key] = f
	}
	return f
}

// Plan implements Planner.
func (hp *HistoryPlanner) Plan(ctx context.Context, p Policy, current int, now time.Time) (optimize.Plan, error) {
	names := make([]string, 0, len(p.Checks))
	for _, c := range p.Checks {
		names = append(names, store.SeriesName(p.Key, c.Name))
	}
	data, err := history.Load(hp.hist, names, now.Add(-p.Target.HistoryWindow), now)
	if err != nil {
		return optimize.Plan{}, fmt.Errorf("load history: %w", err)
	}
	times, cols := history.Align(data, time.Second)
	requests := cols[store.SeriesName(p.Key, p.Target.RequestsCheck)]
	if len(requests) == 0 {
		return optimize.Plan{}, fmt.Errorf("%w for %s yet", optimize.ErrNoHistory, p.Target.RequestsCheck)
	}
	latest := map[string]float64{}
	for _, c := range p.Checks {
		if col := cols[store.SeriesName(p.Key, c.Name)]; len(col) > 0 {
			latest[c.Name] = col[len(col)-1]
		}
	}
	h := optimize.History{Requests: requests, Exog: knownRegressors(p.Target, times[0], len(times)+p.Target.ForecastHorizon+int(p.Target.ModelStep.Seconds())*2)}
	fc := hp.forecasterFor(p)
	fc = demandForecaster{inner: fc, demand: hp.demand, latest: latest, policy: p,
		seen: func(f []float64) {
			if len(f) > 0 {
				hp.gauges.forecasted(p.Key, f[0], requests[len(requests)-1])
			}
		}}
	prob := problemFor(p, current)
	if (p.Target.CPUPrice > 0 || p.Target.MemoryPrice > 0) && p.Target.ReplicaCost == 0 {
		if hp.resources == nil {
			return optimize.Plan{}, fmt.Errorf("cpu_price/memory_price need the group's resources, and no reader is configured")
		}
		cpu, mem, err := hp.resources.GroupResources(ctx, p.Namespace, p.Job, p.Group)
		if err != nil {
			return optimize.Plan{}, fmt.Errorf("group resources: %w", err)
		}
		prob.ReplicaCost = optimize.ReplicaCost(cpu, mem, p.Target.CPUPrice, p.Target.MemoryPrice)
	}
	planner := optimize.NewPlanner(fc, hp.solver, hp.metrics, hp.log)
	plan, err := planner.Plan(ctx, optimize.PlanRequest{History: h, Problem: prob, Horizon: p.Target.ForecastHorizon, Start: now})
	if err != nil {
		return plan, err
	}
	// The optimizer looks ForecastHorizon ahead (so a startup delay is
	// planned for); the cache serves the first CacheSize seconds.
	if n := p.Target.CacheSize; len(plan.Desired) > n {
		plan.Desired = plan.Desired[:n]
		if len(plan.Serving) > n {
			plan.Serving = plan.Serving[:n]
		}
	}
	return plan, nil
}

func problemFor(p Policy, current int) optimize.Problem {
	prob := optimize.DefaultProblem()
	t := p.Target
	prob.CapacityPerReplica = t.CapacityPerReplica
	if t.ReplicaCost > 0 {
		prob.ReplicaCost = t.ReplicaCost
	}
	prob.Penalty, prob.StartupCost, prob.ShutdownCost, prob.ExtraPenalty = t.Penalty, t.StartupCost, t.ShutdownCost, t.ExtraPenalty
	prob.MaxScaleUp, prob.MaxScaleDown = t.MaxScaleUp, t.MaxScaleDown
	prob.MinReplicas, prob.MaxReplicas, prob.CurrentReplicas = p.Min, p.Max, current
	prob.StartupDelay = int(math.Ceil(t.StartupDelay.Seconds()))
	return prob
}

// demandForecaster turns the requests forecast into demand (when a
// DemandFunc is set) and shows the forecast to seen.
type demandForecaster struct {
	inner  optimize.Forecaster
	demand DemandFunc
	latest map[string]float64
	policy Policy
	seen   func([]float64)
}

func (d demandForecaster) Forecast(ctx context.Context, h optimize.History, steps int) ([]float64, error) {
	f, err := d.inner.Forecast(ctx, h, steps)
	if err != nil {
		return nil, err
	}
	d.seen(f)
	if d.demand == nil {
		return f, nil
	}
	return d.demand(d.policy, f, d.latest), nil
}

// knownRegressors are the exogenous rows known in advance, one per second
// from first for n seconds (past the history, through the horizon): a
// sine/cosine pair per Fourier term of each seasonality, and a 0/1
// indicator per scheduled event. Nil when the target declares neither.
func knownRegressors(t Target, first time.Time, n int) [][]float64 {
	if (len(t.Seasonality) == 0 || t.FourierTerms == 0) && len(t.Events) == 0 {
		return nil
	}
	times := make([]int64, n)
	for i := range times {
		times[i] = first.Unix() + int64(i)
	}
	var rows [][]float64
	if len(t.Seasonality) > 0 && t.FourierTerms > 0 {
		periods := make([]float64, len(t.Seasonality))
		for i, d := range t.Seasonality {
			periods[i] = d.Seconds()
		}
		// Phases from absolute unix time, so the terms continue into the
		// future and across restarts.
		rows = model.Fourier(times, periods, t.FourierTerms)
	} else {
		rows = make([][]float64, n)
	}
	if len(t.Events) > 0 {
		for i := range rows {
			at := first.Add(time.Duration(i) * time.Second)
			for _, ev := range t.Events {
				v := 0.0
				if ev.Active(at) {
					v = 1
				}
				rows[i] = append(rows[i], v)
			}
		}
	}
	return rows
}
