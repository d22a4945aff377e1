package reconciler

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nomadscalerd/nomadscalerd/migrations"
	"github.com/nomadscalerd/nomadscalerd/store"
)

// Tuning is what a policy's self-tuning chose: the settings that were
// cheapest when its own recent history was replayed through the backtest
// path, and the costs measured on that replay.
type Tuning struct {
	At             time.Time     `json:"at"`
	ForecastMargin float64       `json:"forecast_margin"`
	ModelStep      time.Duration `json:"model_step"`
	// Cost is the chosen settings' cost on the replay; PolicyCost that of
	// the policy's own settings on the same replay.
	Cost       float64 `json:"cost"`
	PolicyCost float64 `json:"policy_cost"`
	// Unmet and PolicyUnmet are the requests the chosen and the policy's
	// own settings left unmet on the replay.
	Unmet       float64 `json:"unmet"`
	PolicyUnmet float64 `json:"policy_unmet"`
	// Seconds is how much history was replayed; Candidates how many
	// settings were tried.
	Seconds    int `json:"seconds"`
	Candidates int `json:"candidates"`
}

// Tuner replays a policy's recorded demand (one value per second from
// first) with candidate settings and returns the cheapest; the backtest
// package provides it (wired in cmd).
type Tuner interface {
	Tune(ctx context.Context, p Policy, demand []float64, first time.Time, startupDelay time.Duration) (Tuning, error)
}

// Tuned is p with its tuning applied: the tuned keys replace the defaults,
// never what the policy sets itself.
func (p Policy) Tuned(t Tuning) Policy {
	if !p.Target.SelfTune || t.At.IsZero() {
		return p
	}
	if !p.Target.set["forecast_margin"] && t.ForecastMargin > 0 {
		p.Target.ForecastMargin = t.ForecastMargin
	}
	if !p.Target.set["model_step"] && t.ModelStep > 0 {
		p.Target.ModelStep = t.ModelStep
	}
	return p
}

// TuningKey is where a policy's tuning is stored in the state bucket.
func TuningKey(key string) string { return "tuning/" + key }

// TuningOf returns the stored tuning of a policy.
func (r *Reconciler) TuningOf(key string) (Tuning, bool) {
	r.mu.Lock()
	t, ok := r.tunings[key]
	r.mu.Unlock()
	if ok {
		return t, !t.At.IsZero()
	}
	if err := r.d.State.GetJSON(migrations.BucketState, TuningKey(key), &t); err != nil && !errors.Is(err, store.ErrNotFound) {
		r.d.Log.Warn("read tuning", "policy", key, "err", err)
	}
	r.mu.Lock()
	r.tunings[key] = t
	r.mu.Unlock()
	return t, !t.At.IsZero()
}

// effective is the policy as the reconciler runs it: with its tuning.
func (r *Reconciler) effective(p Policy) Policy {
	if !p.Target.SelfTune {
		return p
	}
	t, _ := r.TuningOf(p.Key)
	return p.Tuned(t)
}

// MinTuneHistory is the least recorded history a tuning replays: an hour
// to warm the model up and an hour to measure.
const MinTuneHistory = 2 * time.Hour

// TunerOptions pace RunTuner.
type TunerOptions struct {
	// Check is how often every policy is looked at for a due tuning.
	Check time.Duration
	// CPUShare is the share of one core tuning may take (0 < share <= 1;
	// 0 means 1): after a tuning that took d, the tuner rests
	// d*(1/share-1). A tuning replays hours of a policy's history with a
	// dozen candidate settings, seconds of CPU each: a thousand policies
	// due at once (a start with history, a new tune_interval) would
	// otherwise keep a core busy for hours.
	CPUShare float64
	// Sleep waits d or until ctx ends (nil: a timer); tests replace it.
	Sleep func(ctx context.Context, d time.Duration) error
	// Active, when set, says whether a policy is still scheduled
	// (Controller.Active). A pass tunes the policies listed at its start
	// and can last hours at a small CPUShare: a policy removed since is
	// skipped, and what was cached for one removed during its tuning is
	// dropped, as Forget dropped the rest.
	Active func(key string) bool
}

// TunePause is how long the tuner rests after a tuning that took took, so
// that it uses share of a core.
func TunePause(took time.Duration, share float64) time.Duration {
	if share <= 0 || share >= 1 || took <= 0 {
		return 0
	}
	return time.Duration(float64(took) * (1/share - 1))
}

// RunTuner tunes each self-tuning policy once per its tune_interval, one
// policy at a time and within o.CPUShare of a core, until ctx ends. It
// runs on every replica: the result only changes how this replica plans.
func (r *Reconciler) RunTuner(ctx context.Context, policies func() []Policy, tuner Tuner, o TunerOptions) error {
	sleep := o.Sleep
	if sleep == nil {
		sleep = func(ctx context.Context, d time.Duration) error {
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-t.C:
				return nil
			}
		}
	}
	for {
		for _, p := range policies() {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if o.Active != nil && !o.Active(p.Key) {
				continue
			}
			start := r.d.Now()
			err := r.TuneOnce(ctx, p, tuner)
			// Checked after: a policy still active now is forgotten, if
			// removed later, after what TuneOnce cached (the controller
			// unschedules a policy before the pool forgets it); dropping
			// the cache of one removed and added again meanwhile costs a
			// read.
			if o.Active != nil && !o.Active(p.Key) {
				r.dropTuningCache(p.Key)
			}
			if errors.Is(err, errNotDue) {
				continue
			}
			if err != nil && ctx.Err() == nil {
				r.d.Log.Warn("self-tuning failed", "policy", p.Key, "err", err)
			}
			if pause := TunePause(r.d.Now().Sub(start), o.CPUShare); pause > 0 {
				if err := sleep(ctx, pause); err != nil {
					return err
				}
			}
		}
		if err := sleep(ctx, o.Check); err != nil {
			return err
		}
	}
}

var errNotDue = errors.New("tuning not due")

// dropTuningCache drops what TuningOf and TuneOnce keep in memory for key;
// the stored tuning stays, for DropStateWithoutHistory.
func (r *Reconciler) dropTuningCache(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.tunings, key)
	delete(r.tuneWaits, key)
}

// tuneWait is when a policy's recorded history may first be long enough
// to tune, for the settings it was measured with.
type tuneWait struct {
	until       time.Time
	fingerprint string
}

// TuneOnce tunes p if it is due: it replays the policy's recorded demand
// over its tune_window and stores and adopts the cheapest settings.
func (r *Reconciler) TuneOnce(ctx context.Context, p Policy, tuner Tuner) error {
	if !p.Target.SelfTune || p.Max <= p.Min {
		// A fixed count (max 0 included) has no settings to choose
		// between: every candidate runs the same replicas.
		return errNotDue
	}
	now := r.d.Now()
	if last, ok := r.TuningOf(p.Key); ok && now.Sub(last.At) < p.Target.TuneInterval {
		return errNotDue
	}
	r.mu.Lock()
	w, waiting := r.tuneWaits[p.Key]
	r.mu.Unlock()
	if waiting && now.Before(w.until) && p.matches(w.fingerprint) {
		return errNotDue
	}
	demand, err := r.d.Planner.Recent(ctx, p, now, p.Target.TuneWindow)
	if errors.Is(err, store.ErrNotFound) {
		// No point recorded yet (a new policy, or a shard just taken
		// over): too little history, not a failure to warn about once a
		// minute per policy.
		return errNotDue
	}
	if err != nil {
		return err
	}
	if have := time.Duration(len(demand)) * time.Second; have < MinTuneHistory {
		// The recorder adds history at most a second a second, so it
		// cannot reach MinTuneHistory before the rest has passed: until
		// then the policy is not due without loading its window again
		// (a minute's check of every new policy loaded up to hours of
		// points each, half of the daemon's history reads at 1,000).
		// An edited policy may read other series: it is looked at anew.
		r.mu.Lock()
		r.tuneWaits[p.Key] = tuneWait{until: now.Add(MinTuneHistory - have), fingerprint: p.fingerprint()}
		r.mu.Unlock()
		return errNotDue
	}
	delay := p.Target.StartupDelay
	r.mu.Lock()
	if d, ok := r.delays[p.Key]; ok {
		delay = d
	}
	r.mu.Unlock()
	first := now.Add(-time.Duration(len(demand)) * time.Second)
	t, err := tuner.Tune(ctx, p, demand, first, delay)
	if err != nil {
		// Not again before a tune_interval: a replay that fails fails
		// the same way on the same history, and a retry every check read
		// hours of history per policy and logged a warning each time.
		r.mu.Lock()
		r.tuneWaits[p.Key] = tuneWait{until: now.Add(p.Target.TuneInterval), fingerprint: p.fingerprint()}
		r.mu.Unlock()
		return fmt.Errorf("tune: %w", err)
	}
	t.At = now
	if err := r.d.State.PutJSON(migrations.BucketState, TuningKey(p.Key), t); err != nil {
		return fmt.Errorf("store tuning: %w", err)
	}
	r.mu.Lock()
	r.tunings[p.Key] = t
	r.mu.Unlock()
	r.d.Log.Info("self-tuned", "policy", p.Key, "forecast_margin", t.ForecastMargin, "model_step", t.ModelStep,
		"cost", t.Cost, "policy_cost", t.PolicyCost, "replayed", time.Duration(t.Seconds)*time.Second, "candidates", t.Candidates)
	return nil
}
