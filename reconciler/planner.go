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
	"github.com/nomadscalerd/nomadscalerd/predict"
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
	forecaster map[string]keyedForecaster
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
	return &HistoryPlanner{hist: h, newFC: f, demand: demand, solver: s, metrics: m, log: log, forecaster: map[string]keyedForecaster{}}
}

type keyedForecaster struct {
	fingerprint string
	// mu is held by the one plan using the forecaster: a forecaster keeps
	// its fit and warm starts between calls and is not safe for
	// concurrent use, and a policy's plans can come at once (its worker
	// and POST /optimize, which plans several requests in parallel). A
	// channel, not a mutex, so that a request given up while it waits
	// (a slow fit ahead of it) stops waiting and frees its planning slot.
	lock chan struct{}
	optimize.Forecaster
}

// forecasterFor returns the policy's forecaster, built again when the
// settings it is built from changed (a new model_step or orders is a new
// model),
// locked for the caller, who calls unlock when done with it; ctx's error
// if it ends while another plan holds the forecaster.
func (hp *HistoryPlanner) forecasterFor(ctx context.Context, p Policy) (f optimize.Forecaster, unlock func(), err error) {
	// A forecaster is not built from the bounds or the seed's cache_size
	// and forecast_horizon, which POST /optimize sets per request: a
	// request must not replace the forecaster the policy's worker keeps.
	q := p
	q.Min, q.Max, q.Target.CacheSize, q.Target.ForecastHorizon = 0, 0, 0, 0
	hp.mu.Lock()
	kf, ok := hp.forecaster[p.Key]
	if !ok || !q.matches(kf.fingerprint) {
		kf = keyedForecaster{fingerprint: q.fingerprint(), lock: make(chan struct{}, 1), Forecaster: hp.newFC(p)}
		hp.forecaster[p.Key] = kf
	}
	hp.mu.Unlock()
	select {
	case kf.lock <- struct{}{}:
		return kf.Forecaster, func() { <-kf.lock }, nil
	case <-ctx.Done():
		return nil, nil, fmt.Errorf("wait for %s's forecaster: %w", p.Key, ctx.Err())
	}
}

// Forget drops a removed policy's forecaster and the gauges its plans
// set.
func (hp *HistoryPlanner) Forget(key string) {
	hp.mu.Lock()
	delete(hp.forecaster, key)
	hp.mu.Unlock()
	hp.gauges.forgetForecast(key)
}

// Plan is the seed's plan for a policy: ForecastHorizon seconds planned
// from the current count with the policy's startup_delay, of which the
// first CacheSize are returned (the POST /optimize answer).
func (hp *HistoryPlanner) Plan(ctx context.Context, p Policy, current int, now time.Time) (optimize.Plan, error) {
	plan, err := hp.PlanAhead(ctx, p, predict.PlanRequest{Now: now, Current: current, StartupDelay: p.Target.StartupDelay, Horizon: p.Target.ForecastHorizon})
	if err != nil {
		return plan, err
	}
	if n := p.Target.CacheSize; len(plan.Desired) > n {
		plan.Desired = plan.Desired[:n]
		if len(plan.Serving) > n {
			plan.Serving = plan.Serving[:n]
		}
		plan.Lower, plan.Upper = plan.Lower[:min(n, len(plan.Lower))], plan.Upper[:min(n, len(plan.Upper))]
		plan.Demand = plan.Demand[:min(n, len(plan.Demand))]
	}
	return plan, nil
}

// PlanAhead makes the plan a policy's decider serves: at least
// r.Horizon seconds (and ForecastHorizon) from r.Now, planned with the
// startup delay r gives; r.Refit re-estimates the model first.
func (hp *HistoryPlanner) PlanAhead(ctx context.Context, p Policy, r predict.PlanRequest) (optimize.Plan, error) {
	now := r.Now
	names := make([]string, 0, len(p.Checks))
	for _, c := range p.Checks {
		names = append(names, store.SeriesName(p.Key, c.Name))
	}
	data, err := history.Load(hp.hist, names, now.Add(-p.ForecastWindow()), now)
	if err != nil {
		return optimize.Plan{}, fmt.Errorf("load history: %w", err)
	}
	first, _, cols := history.AlignColumns(data, time.Second)
	requests := cols[store.SeriesName(p.Key, p.Target.RequestsCheck)]
	if len(requests) == 0 {
		return optimize.Plan{}, fmt.Errorf("%w for %s yet", optimize.ErrNoHistory, p.Target.RequestsCheck)
	}
	latest := latestValues(p, cols)
	inner, unlock, err := hp.forecasterFor(ctx, p)
	if err != nil {
		return optimize.Plan{}, err
	}
	defer unlock()
	if rf, ok := inner.(interface{ Refit() }); ok && r.Refit {
		rf.Refit()
	}
	fc := demandForecaster{inner: inner, demand: hp.demand, latest: latest, policy: p,
		seen: func(f []float64) {
			if len(f) > 0 {
				hp.gauges.forecasted(p.Key, f[0], requests[len(requests)-1])
			}
		}}
	cost := 0.0
	if (p.Target.CPUPrice > 0 || p.Target.MemoryPrice > 0) && p.Target.ReplicaCost == 0 {
		if hp.resources == nil {
			return optimize.Plan{}, fmt.Errorf("cpu_price/memory_price need the group's resources, and no reader is configured")
		}
		cpu, mem, err := hp.resources.GroupResources(ctx, p.Namespace, p.Job, p.Group)
		if err != nil {
			return optimize.Plan{}, fmt.Errorf("group resources: %w", err)
		}
		cost = optimize.ReplicaCost(cpu, mem, p.Target.CPUPrice, p.Target.MemoryPrice)
	}
	pp := PolicyPlanner{Policy: p, Forecaster: fc, Solver: hp.solver, Metrics: hp.metrics, Log: hp.log, ReplicaCost: cost}
	return pp.Plan(ctx, first, requests, r)
}

// Recent is the policy's observed demand per second over the window
// before now, oldest first: the requests check, through the demand formula
// when the policy has one. It feeds the decider's floor and band checks.
func (hp *HistoryPlanner) Recent(_ context.Context, p Policy, now time.Time, window time.Duration) ([]float64, error) {
	names := make([]string, 0, len(p.Checks))
	for _, c := range p.Checks {
		if hp.demand != nil || c.Name == p.Target.RequestsCheck {
			names = append(names, store.SeriesName(p.Key, c.Name))
		}
	}
	data, err := history.Load(hp.hist, names, now.Add(-window), now)
	if err != nil {
		return nil, fmt.Errorf("load recent history: %w", err)
	}
	_, _, cols := history.AlignColumns(data, time.Second)
	requests := cols[store.SeriesName(p.Key, p.Target.RequestsCheck)]
	if hp.demand == nil || len(requests) == 0 {
		return requests, nil
	}
	latest := latestValues(p, cols)
	return hp.demand(p, requests, latest), nil
}

// PolicyPlanner makes one policy's plans from its per-second history: the
// known regressors of its target, its forecaster and its cost model. The
// daemon (through HistoryPlanner) and the backtest both plan through it.
type PolicyPlanner struct {
	Policy     Policy
	Forecaster optimize.Forecaster
	Solver     optimize.Solver
	Metrics    *optimize.Metrics
	Log        *slog.Logger
	// ReplicaCost, when positive, prices a replica instead of the target's
	// replica_cost (from cpu_price and memory_price).
	ReplicaCost float64
}

// Plan plans from requests, one value per second from first up to r.Now.
func (pp PolicyPlanner) Plan(ctx context.Context, first time.Time, requests []float64, r predict.PlanRequest) (optimize.Plan, error) {
	p := pp.Policy
	horizon := max(r.Horizon, p.Target.ForecastHorizon)
	// What the model fits: the history, up to model.MaxFitSteps steps.
	covered := time.Duration(min(len(requests), model.MaxFitSteps*max(int(p.Target.ModelStep.Seconds()), 1))) * time.Second
	h := optimize.History{Requests: requests, Exog: knownRegressors(p.Target, first, len(requests)+horizon+int(p.Target.ModelStep.Seconds())*2, covered)}
	prob := problemFor(p, r.Current)
	prob.StartupDelay = int(math.Ceil(r.StartupDelay.Seconds()))
	if pp.ReplicaCost > 0 {
		prob.ReplicaCost = pp.ReplicaCost
	}
	prob.Penalty = penaltyFor(p, prob.ReplicaCost)
	if prob.StartupDelay >= horizon {
		horizon = prob.StartupDelay + 1
	}
	h.Lead = prob.StartupDelay + int(math.Ceil(p.Target.ReplanInterval.Seconds()))
	planner := optimize.NewPlanner(pp.Forecaster, pp.Solver, pp.Metrics, pp.Log)
	return planner.Plan(ctx, optimize.PlanRequest{History: h, Problem: prob, Horizon: horizon, Start: r.Now})
}

func problemFor(p Policy, current int) optimize.Problem {
	prob := optimize.DefaultProblem()
	t := p.Target
	prob.CapacityPerReplica = t.CapacityPerReplica
	if t.ReplicaCost > 0 {
		prob.ReplicaCost = t.ReplicaCost
	}
	prob.Penalty, prob.StartupCost, prob.ShutdownCost, prob.ExtraPenalty = t.Penalty, t.StartupCost, t.ShutdownCost, t.ExtraPenalty
	prob.MaxScaleUp = rampFor(t.MaxScaleUp, t.set["max_scale_up"], current)
	prob.MaxScaleDown = rampFor(t.MaxScaleDown, t.set["max_scale_down"], current)
	prob.MinReplicas, prob.MaxReplicas, prob.CurrentReplicas = p.Min, p.Max, current
	prob.StartupDelay = int(math.Ceil(t.StartupDelay.Seconds()))
	return prob
}

// rampShare is the least share of the count asked for that an unwritten
// max_scale_up or max_scale_down lets a plan change per second. A limit in
// replicas is a hold in time that grows with the group: at 2 a second a
// group of 20 sheds a burst's replicas in a few seconds, one of 200 (the
// same traffic, ten times the rate) in a minute, holding replicas nobody
// needs. On the NASA week at 10 times the README's rate, the 2-a-second
// limit cost more than target-value and HPA (1.04x, 1.03x) and at 5% of the
// count it costs less (0.95x, 0.93x); at the README's rate, where counts
// stay under 40 and the limit stays 2, nothing changes.
const rampShare = 0.05

// rampFor is a plan's per-second limit: what the policy wrote, or the
// default raised to rampShare of the current count.
func rampFor(limit int, written bool, current int) int {
	if written {
		return limit
	}
	return max(limit, int(math.Ceil(rampShare*float64(current))))
}

// targetValueShortfall is the shortfall, in replicas, below which a
// target-value policy's plan may leave demand uncovered: one millionth of a
// replica, so rounding noise in the metric does not start a replica.
const targetValueShortfall = 1e-6

// penaltyFor is the price of a unit of uncovered demand. A target-value
// policy that does not set penalty plans as target-value chooses: enough
// replicas that the demand per replica is at most the target, so missing
// even targetValueShortfall of a replica costs more than one more replica
// for the whole horizon would.
func penaltyFor(p Policy, replicaCost float64) float64 {
	t := p.Target
	if t.TargetValue <= 0 || t.set["penalty"] {
		return t.Penalty
	}
	perReplica := max(replicaCost, optimize.DefaultReplicaCost) * float64(max(t.ForecastHorizon, 1)+1)
	return perReplica / (targetValueShortfall * t.CapacityPerReplica)
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

// ForecastBand implements optimize.BandForecaster when the inner
// forecaster gives a band (the band goes through the demand formula too).
func (d demandForecaster) ForecastBand(ctx context.Context, h optimize.History, steps int) (optimize.Band, error) {
	bf, ok := d.inner.(optimize.BandForecaster)
	if !ok {
		f, err := d.Forecast(ctx, h, steps)
		return optimize.Band{Plan: f}, err
	}
	b, err := bf.ForecastBand(ctx, h, steps)
	if err != nil {
		return b, err
	}
	d.seen(b.Plan)
	if d.demand != nil {
		b.Plan, b.Lower, b.Upper = d.demand(d.policy, b.Plan, d.latest), d.demand(d.policy, b.Lower, d.latest), d.demand(d.policy, b.Upper, d.latest)
	}
	return b, nil
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
// sine/cosine pair per Fourier term of each seasonality the history covers
// (covered: a cycle seen less than once cannot be told from a trend, and
// its terms would be fitted to noise), and a 0/1 indicator per scheduled
// event. Nil when there are none.
func knownRegressors(t Target, first time.Time, n int, covered time.Duration) [][]float64 {
	var seasons []time.Duration
	for _, d := range t.Seasonality {
		if covered >= d {
			seasons = append(seasons, d)
		}
	}
	t.Seasonality = seasons
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

// latestValues is the last recorded value of each of the policy's checks.
func latestValues(p Policy, cols map[string][]float64) map[string]float64 {
	latest := map[string]float64{}
	for _, c := range p.Checks {
		if col := cols[store.SeriesName(p.Key, c.Name)]; len(col) > 0 {
			latest[c.Name] = col[len(col)-1]
		}
	}
	return latest
}
