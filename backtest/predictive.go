package backtest

import (
	"context"
	"log/slog"
	"time"

	"github.com/nomadscalerd/nomadscalerd/model"
	"github.com/nomadscalerd/nomadscalerd/optimize"
)

// PredictiveConfig is how the predictive strategy runs the daemon's path.
type PredictiveConfig struct {
	// Horizon is the plan length in seconds (the seed's cache_size). The
	// plan cache serves it in a loop and asks for a new plan after two
	// passes, so a plan is made every 2*Horizon seconds.
	Horizon int
	// Window is the seconds of history a forecast reads.
	Window int
	// FourierPeriod and FourierTerms give the time-of-day covariates (no
	// covariates when FourierTerms is 0).
	FourierPeriod, FourierTerms int
	Forecast                    model.ForecastConfig
	// Solver plans each forecast; nil means the exact optimize.DPSolver.
	Solver optimize.Solver
}

// DefaultPredictiveConfig: 45-second plans (a new one every 90 s: a plan
// cannot add serving replicas in its first StartupDelay seconds, and the
// cache replays it once, so shorter is fresher), two days of history,
// three daily Fourier pairs, refit hourly, the forecast mean plus 1.75
// standard deviations. On the NASA trace (7 days from second 86400, scale
// 100, 60 s rate window) horizons of 40 to 90 s, margins of 1.25 to 2,
// one-minute or 20-second steps, one or two days of history and 0 or 3
// Fourier pairs all cost within 3% of each other; this setting, with the
// square-root model (0.4% cheaper than without), was among the cheapest
// and leaves the most margin on unmet requests.
func DefaultPredictiveConfig() PredictiveConfig {
	cfg := PredictiveConfig{
		Horizon: 45, Window: 2 * 86400,
		FourierPeriod: 86400, FourierTerms: 3,
		Forecast: model.DefaultForecastConfig(),
	}
	cfg.Forecast.Margin = 1.75
	return cfg
}

// Predictive is nomadscalerd's strategy: the plan cache (optimize.Serve)
// asks the optimize.Planner for a plan when due, and the Planner forecasts
// the history with the model package and solves the plan. The simulated
// clock stands in for the wall clock.
type Predictive struct {
	cfg     Config
	pcfg    PredictiveConfig
	planner *optimize.Planner
	epoch   time.Time
	clock   time.Time
	// past is the demand before the replay (the history the daemon would
	// have recorded) followed by the replay's seconds as they pass; exog
	// the covariate rows of the same seconds and Horizon more.
	prior int
	past  []float64
	exog  [][]float64
	cache optimize.Plan
	log   *slog.Logger
}

// NewPredictive builds the strategy for a replay of n seconds whose first
// second is second first of the time-of-day cycle, with prior the demand
// of the seconds just before the replay (nil for none). log may be nil.
func NewPredictive(cfg Config, pcfg PredictiveConfig, prior []float64, first, n int, log *slog.Logger) *Predictive {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if len(prior) > pcfg.Window {
		prior = prior[len(prior)-pcfg.Window:]
	}
	p := &Predictive{cfg: cfg, pcfg: pcfg, epoch: time.Unix(int64(first), 0).UTC(), log: log}
	p.prior = len(prior)
	p.past = append(make([]float64, 0, len(prior)+n), prior...)
	if pcfg.FourierTerms > 0 {
		p.exog = FourierRows(first-len(prior), len(prior)+n+pcfg.Horizon+pcfg.Forecast.Step+1, pcfg.FourierPeriod, pcfg.FourierTerms)
	}
	solver := pcfg.Solver
	if solver == nil {
		solver = optimize.DPSolver{}
	}
	f := model.NewForecaster(pcfg.Forecast, func() time.Time { return p.clock })
	p.planner = optimize.NewPlanner(f, solver, nil, log)
	return p
}

// Name implements Strategy.
func (*Predictive) Name() string { return "predictive" }

// Decide implements Strategy.
func (p *Predictive) Decide(ctx context.Context, obs Observation) (Decision, error) {
	// Catch up with the seconds that passed since the last call.
	p.past = append(p.past, obs.Demand[len(p.past)-p.prior:]...)
	p.clock = p.epoch.Add(time.Duration(obs.Now) * time.Second)
	evaluated := false
	count, next, err := optimize.Serve(ctx, p.clock, p.cache, func(ctx context.Context) (optimize.Plan, error) {
		evaluated = true
		lo := max(0, len(p.past)-p.pcfg.Window)
		h := optimize.History{Requests: p.past[lo:]}
		if p.exog != nil {
			h.Exog = p.exog[lo : len(p.past)+p.pcfg.Horizon+p.pcfg.Forecast.Step]
		}
		return p.planner.Plan(ctx, optimize.PlanRequest{
			History: h,
			// The daemon sees the job's count, replicas still starting
			// included.
			Problem: problem(p.cfg, nil, obs.Requested),
			Horizon: p.pcfg.Horizon,
			Start:   p.clock,
		})
	})
	if err != nil {
		// As the daemon: keep serving the cached plan, or hold the current
		// count while there is none yet (too little history).
		if len(p.cache.Desired) == 0 {
			count = obs.Requested
		}
		p.log.Debug("predictive plan failed", "second", obs.Now, "err", err)
	}
	p.cache = next
	return Decision{Desired: count, Evaluated: evaluated}, nil
}
