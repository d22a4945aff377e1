package backtest

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/nomadscalerd/nomadscalerd/model"
	"github.com/nomadscalerd/nomadscalerd/optimize"
	"github.com/nomadscalerd/nomadscalerd/predict"
	"github.com/nomadscalerd/nomadscalerd/reconciler"
)

// PredictiveConfig is the policy the predictive strategy runs: a
// `target "nomadscaler"` policy exactly as the daemon parses it.
type PredictiveConfig struct {
	Policy reconciler.Policy
	// Solver plans each forecast; nil means the exact optimize.DPSolver,
	// as the daemon plans groups.
	Solver optimize.Solver
	// MinHealthy is the replayed group's update block's min_healthy_time
	// (see predict.Input): how long a scale-up's deployment blocks the
	// next change after its replicas start.
	MinHealthy time.Duration
	// SelfTune replays the daemon's self-tuning too, when the policy has
	// self_tune on: once a tune_interval, with at least
	// reconciler.MinTuneHistory recorded, PolicyTuner replays the last
	// tune_window of demand and the tuned policy gets a new decider and
	// forecaster, as the daemon's does. Off, the policy runs as written.
	SelfTune bool
}

// NomadMinHealthy is the min_healthy_time Nomad gives a service group
// whose job sets none.
const NomadMinHealthy = 10 * time.Second

// DefaultPredictiveConfig is a policy that sets nothing but its bounds,
// for a group of a job that sets no update block: the daemon's defaults
// for everything else.
func DefaultPredictiveConfig(minReplicas, maxReplicas int) PredictiveConfig {
	return PredictiveConfig{Policy: reconciler.DefaultPolicy(minReplicas, maxReplicas), MinHealthy: NomadMinHealthy}
}

// Predictive is nomadscalerd's strategy as the daemon runs it: the
// policy's decider (predict.Decider: receding-horizon plans, the reactive
// floor, re-plans when demand leaves the band, a measured startup delay)
// planning through reconciler.PolicyPlanner with the policy's forecaster.
// It evaluates when the daemon's worker would wake: at the decider's next
// wake or after the policy's evaluation_interval, whichever is first, or
// at once when a second of demand lifts the floor above the count asked
// for (predict.FloorAbove); a
// scale-down waits out the policy's cooldown as the daemon's does. The
// simulated clock stands in for the wall clock.
type Predictive struct {
	pol        reconciler.Policy
	minHealthy time.Duration
	dec        *predict.Decider
	ds         predict.Settings
	fc         *model.Forecaster
	planner    reconciler.PolicyPlanner
	epoch      time.Time
	clock      time.Time
	// past is the demand before the replay (the history the daemon would
	// have recorded) followed by the replay's seconds as they pass.
	prior  int
	past   []float64
	window int

	wake         int // the next second the worker runs
	cooldownTill int

	// Self-tuning (PredictiveConfig.SelfTune): the policy as written, the
	// settings the replay is built from, the next second a tuning is due
	// and the tunings adopted.
	written  reconciler.Policy
	solver   optimize.Solver
	log      *slog.Logger
	selfTune bool
	tuneAt   int
	tunings  []reconciler.Tuning
	// keep is how much of the past the policy reads: its history_window,
	// and when it tunes itself its tune_window (the daemon keeps both).
	keep int

	// lead > 0 records peaks: every second, the plan's highest count
	// within lead seconds (what a predictive node pool reads).
	lead  int
	peaks []int
}

// RecordPeaks makes the replay record, every second, the current plan's
// highest count within lead seconds, never below the count asked for: the
// peaks a predictive node pool provisions for (see SimulatePool).
func (p *Predictive) RecordPeaks(lead int) { p.lead, p.peaks = lead, nil }

// Peaks are the recorded peaks, one a second of the replay.
func (p *Predictive) Peaks() []int { return p.peaks }

// NewPredictive builds the strategy for a replay whose second 0 is unix
// second first (the phase of any seasonality), with prior the demand of the
// seconds just before it (nil for none). log may be nil.
func NewPredictive(cfg Config, pcfg PredictiveConfig, prior []float64, first int, log *slog.Logger) (*Predictive, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	pol := pcfg.Policy
	pol.Min, pol.Max = cfg.Min, cfg.Max
	// The replay serves cfg.Capacity a replica: a policy that does not say
	// plans with it, and one that says otherwise would be scored against
	// capacity it did not plan for.
	switch {
	case !pol.Target.Wrote("capacity_per_replica") && pol.Target.TargetValue == 0:
		pol.Target.CapacityPerReplica = cfg.Capacity
	case pol.Target.CapacityPerReplica != cfg.Capacity:
		return nil, fmt.Errorf("the policy's capacity_per_replica %g is not the replay's %g (--capacity-per-replica)", pol.Target.CapacityPerReplica, cfg.Capacity)
	}
	window := int(pol.Target.HistoryWindow.Seconds())
	selfTune := pcfg.SelfTune && pol.Target.SelfTune && pol.Max > pol.Min
	keep := window
	if selfTune {
		keep = max(window, int(pol.Target.TuneWindow.Seconds()))
	}
	if len(prior) > keep {
		prior = prior[len(prior)-keep:]
	}
	p := &Predictive{pol: pol, written: pol, minHealthy: pcfg.MinHealthy, epoch: time.Unix(int64(first), 0).UTC(), window: window,
		selfTune: selfTune, keep: keep, solver: pcfg.Solver, log: log}
	p.prior = len(prior)
	p.past = append([]float64(nil), prior...)
	if p.solver == nil {
		p.solver = optimize.DPSolver{}
	}
	if err := p.build(pol); err != nil {
		return nil, err
	}
	return p, nil
}

// build makes the decider and forecaster of pol, as the daemon makes them
// for a policy whose settings changed (its delay is measured anew).
func (p *Predictive) build(pol reconciler.Policy) error {
	p.pol = pol
	p.fc = model.NewForecaster(pol.ForecastConfig(), func() time.Time { return p.clock })
	p.planner = reconciler.PolicyPlanner{Policy: pol, Forecaster: p.fc, Solver: p.solver, Log: p.log}
	p.ds = pol.DeciderSettings()
	dec, err := predict.NewDecider(p.ds, pol.DelayEstimator(), p.plan)
	if err != nil {
		return err
	}
	p.dec = dec
	return nil
}

// Tunings are the self-tunings the replay adopted, in order.
func (p *Predictive) Tunings() []reconciler.Tuning { return p.tunings }

// tune runs the daemon's self-tuning at second now when it is due: the
// replay of the last tune_window of demand through PolicyTuner, adopted as
// reconciler.Policy.Tuned adopts it. A tuning that fails is not retried
// before a tune_interval, as in the daemon.
func (p *Predictive) tune(ctx context.Context, now int) error {
	t := p.written.Target
	if !p.selfTune || now < p.tuneAt {
		return nil
	}
	have := len(p.past)
	if need := int(reconciler.MinTuneHistory.Seconds()); have < need {
		p.tuneAt = now + need - have
		return nil
	}
	p.tuneAt = now + int(t.TuneInterval.Seconds())
	from := max(0, have-int(t.TuneWindow.Seconds()))
	first := p.epoch.Add(time.Duration(from-p.prior) * time.Second)
	tuning, err := PolicyTuner{}.Tune(ctx, p.written, p.past[from:], first, p.dec.StartupDelay())
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		p.log.Warn("self-tuning failed", "at", now, "err", err)
		return nil
	}
	tuning.At = p.epoch.Add(time.Duration(now) * time.Second)
	p.tunings = append(p.tunings, tuning)
	tuned := p.written.Tuned(tuning)
	if tuned.Target.ForecastMargin == p.pol.Target.ForecastMargin && tuned.Target.ModelStep == p.pol.Target.ModelStep {
		return nil
	}
	return p.build(tuned)
}

// Name implements Strategy.
func (*Predictive) Name() string { return "predictive" }

func (p *Predictive) plan(ctx context.Context, r predict.PlanRequest) (optimize.Plan, error) {
	if r.Refit {
		p.fc.Refit()
	}
	lo := max(0, len(p.past)-p.window)
	first := p.epoch.Add(time.Duration(lo-p.prior) * time.Second)
	return p.planner.Plan(ctx, first, p.past[lo:], r)
}

// Decide implements Strategy.
func (p *Predictive) Decide(ctx context.Context, obs Observation) (Decision, error) {
	// Catch up with the seconds that passed since the last call.
	p.past = append(p.past, obs.Demand[len(p.past)-p.prior:]...)
	if len(p.past) > 2*p.keep+86400 {
		// Keep memory bounded on long replays.
		drop := len(p.past) - p.keep
		p.past = append(p.past[:0], p.past[drop:]...)
		p.prior -= drop
	}
	if err := p.tune(ctx, obs.Now); err != nil {
		return Decision{}, err
	}
	hold := Decision{Desired: obs.Requested}
	if p.lead > 0 {
		defer func() {
			now := p.epoch.Add(time.Duration(obs.Now) * time.Second)
			peak := max(obs.Requested, p.dec.Plan().MaxBetween(now, now.Add(time.Duration(p.lead)*time.Second)))
			p.peaks = append(p.peaks, peak)
		}()
	}
	// A second of demand that lifts the floor above the count asked for
	// wakes the worker, as a sample does the daemon's.
	if obs.Now < p.wake && !predict.FloorAbove(p.ds, p.dec.StartupDelay(), p.past, obs.Requested) {
		return hold, nil
	}
	p.clock = p.epoch.Add(time.Duration(obs.Now) * time.Second)
	d := p.dec.Decide(ctx, predict.Input{Now: p.clock, Current: obs.Requested, Running: obs.ServingNow, Recent: p.past, MinHealthy: p.minHealthy})
	wake := int(d.NextWake.Sub(p.epoch) / time.Second)
	p.wake = min(max(wake, obs.Now+1), obs.Now+int(p.pol.EvaluationInterval.Seconds()))
	want := d.Count
	if want < obs.Requested && obs.Now < p.cooldownTill {
		want = obs.Requested
		p.wake = min(p.wake, p.cooldownTill)
	}
	if want != obs.Requested {
		p.cooldownTill = obs.Now + int(math.Ceil(p.pol.ScaleDownCooldown(d.HoldDown).Seconds()))
	}
	return Decision{Desired: want, Evaluated: true}, nil
}
