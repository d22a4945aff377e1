// Package backtest owns the replay of a request-rate trace through scaling
// strategies on a simulated clock: the simulator and its cost accounting,
// the reactive baselines (nomad-autoscaler's target-value and Kubernetes'
// HPA) it compares nomadscalerd's predictive planner against, and the
// adapters that run the daemon's own forecaster and planner as a strategy.
package backtest

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"
)

// Config is the simulated service: how much one replica serves, how long a
// replica takes to start, the bounds every strategy is held to, and the
// cost model the results are priced with.
type Config struct {
	// Capacity is the requests per second one serving replica absorbs.
	Capacity float64
	// StartupDelay is the seconds between requesting a replica (when it
	// starts to cost) and its serving.
	StartupDelay int
	// Min and Max bound the requested replica count.
	Min, Max int
	// Initial is the number of replicas already serving at second 0. Zero
	// means just enough for the first second's demand, within Min and Max,
	// so no strategy starts from a cold or an oversized fleet.
	Initial int
	// Cost prices the run.
	Cost CostModel
	// TargetValue is the policy of the target-value baseline; zero fields
	// keep NewTargetValue's, so a replay can compare against the
	// nomad-autoscaler policy an operator runs.
	TargetValue TargetValueSettings
}

// TargetValueSettings are the parts of a nomad-autoscaler target-value
// policy the baseline takes: its target utilisation, the metric's window
// (a `rate(...[W])` query) and the cooldown, in seconds.
type TargetValueSettings struct {
	Target   float64
	Window   int
	Cooldown int
}

// DefaultConfig is the backtest's default service: 10 requests/s a
// replica, 30 s to start, between 1 and 100 replicas.
func DefaultConfig() Config {
	return Config{Capacity: 10, StartupDelay: 30, Min: 1, Max: 100, Cost: DefaultCostModel()}
}

func (c Config) validate() error {
	switch {
	case c.Capacity <= 0:
		return fmt.Errorf("capacity per replica %v: must be positive", c.Capacity)
	case c.StartupDelay < 0:
		return fmt.Errorf("startup delay %d: must not be negative", c.StartupDelay)
	case c.Min < 0 || c.Max < c.Min || c.Max == 0:
		return fmt.Errorf("replica bounds [%d, %d]: need 0 <= min <= max and max > 0", c.Min, c.Max)
	case c.TargetValue.Target < 0 || c.TargetValue.Window < 0 || c.TargetValue.Cooldown < 0:
		return fmt.Errorf("target-value settings %+v: must not be negative", c.TargetValue)
	}
	return nil
}

func (c Config) clamp(n int) int { return min(max(n, c.Min), c.Max) }

// initial is the fleet at second 0.
func (c Config) initial(demand []float64) int {
	if c.Initial > 0 {
		return c.clamp(c.Initial)
	}
	if len(demand) == 0 {
		return c.clamp(0)
	}
	return c.clamp(int(math.Ceil(demand[0] / c.Capacity)))
}

// Observation is what a strategy may see at the start of second Now: only
// the past, never the current or a future second's demand.
type Observation struct {
	Now int
	// Demand and Serving are the demand and the serving replicas of seconds
	// [0, Now). Strategies must not modify or retain them.
	Demand  []float64
	Serving []int
	// Requested is the replica count now asked for (and paid for);
	// ServingNow how many of them serve in second Now.
	Requested  int
	ServingNow int
}

// Decision is a strategy's answer for one second.
type Decision struct {
	// Desired is the replica count to run from now on; the simulator holds
	// it within the configured bounds.
	Desired int
	// Evaluated says the strategy ran its evaluation this second (rather
	// than holding between evaluations); only those seconds are timed for
	// DecisionMsP99.
	Evaluated bool
}

// Strategy decides replica counts second by second.
type Strategy interface {
	Name() string
	Decide(ctx context.Context, obs Observation) (Decision, error)
}

// FlapWindow is how soon, in seconds, a scale-up after a scale-down makes
// the pair a flap: Nomad runs a deployment for each, and the replica taken
// away is asked for again before anything was saved.
const FlapWindow = 30

// ScalingChanges counts the changes of counts (one a second) at seconds from
// `from` on, and the flaps among them: decreases undone by an increase
// within window seconds, each decrease once. `demo compare` counts live runs
// with it too, so a backtest's flaps and a live run's are the same measure.
func ScalingChanges(counts []int, from, window int) (changes, flaps int) {
	var downs []int // seconds of decreases since the last increase, ascending
	for i := 1; i < len(counts); i++ {
		if counts[i] == counts[i-1] {
			continue
		}
		if counts[i] < counts[i-1] {
			downs = append(downs, i)
		} else {
			for _, d := range downs {
				if i-d <= window && d >= from {
					flaps++
				}
			}
			downs = downs[:0]
		}
		if i >= from {
			changes++
		}
	}
	return changes, flaps
}

// Result is one strategy's replay.
type Result struct {
	Strategy         string  `json:"strategy"`
	ReplicaSeconds   int64   `json:"replica_seconds"`
	UnmetRequests    float64 `json:"unmet_requests"`
	ViolationSeconds int     `json:"violation_seconds"`
	ScaleActions     int     `json:"scale_actions"`
	// Flaps are scale-downs undone by a scale-up within FlapWindow
	// seconds, as `demo compare` counts them live.
	Flaps         int     `json:"flaps"`
	Cost          float64 `json:"cost"`
	DecisionMsP99 float64 `json:"decision_ms_p99"`

	// Tally is the break-down the cost was computed from.
	Tally Tally `json:"-"`
	// Requested and Serving are the replica counts of every second, kept
	// for plots.
	Requested []int `json:"-"`
	Serving   []int `json:"-"`
}

// Run replays demand (one value per second) through the strategy. A
// replica requested at second t costs from t and serves from t +
// StartupDelay; a removal is immediate and takes replicas that do not serve
// yet first. progress, if not nil, is called now and then with the seconds
// done.
func Run(ctx context.Context, cfg Config, demand []float64, s Strategy, progress func(done int)) (Result, error) {
	if err := cfg.validate(); err != nil {
		return Result{}, err
	}
	n := len(demand)
	res := Result{
		Strategy:  s.Name(),
		Requested: make([]int, n),
		Serving:   make([]int, n),
	}
	// readyAt holds each live replica's first serving second, in request
	// order, so it is sorted and the replicas not yet serving are its tail.
	initial := cfg.initial(demand)
	readyAt := make([]int, initial)
	var decisionTimes []time.Duration
	for t := 0; t < n; t++ {
		if t%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return Result{}, fmt.Errorf("backtest %s: %w", s.Name(), err)
			}
			if progress != nil {
				progress(t)
			}
		}
		obs := Observation{
			Now:        t,
			Demand:     demand[:t:t],
			Serving:    res.Serving[:t:t],
			Requested:  len(readyAt),
			ServingNow: servingAt(readyAt, t),
		}
		began := time.Now()
		d, err := s.Decide(ctx, obs)
		took := time.Since(began)
		if err != nil {
			return Result{}, fmt.Errorf("backtest %s at second %d: %w", s.Name(), t, err)
		}
		if d.Evaluated {
			decisionTimes = append(decisionTimes, took)
		}
		want := cfg.clamp(d.Desired)
		switch have := len(readyAt); {
		case want > have:
			for range want - have {
				readyAt = append(readyAt, t+cfg.StartupDelay)
			}
		case want < have:
			readyAt = readyAt[:want]
		}
		res.Requested[t] = len(readyAt)
		res.Serving[t] = servingAt(readyAt, t)
	}
	res.Tally = res.Between(cfg, demand, 0, n)
	if progress != nil {
		progress(n)
	}
	// The fleet before second 0 leads, so a change at second 0 counts.
	_, res.Flaps = ScalingChanges(append([]int{initial}, res.Requested...), 0, FlapWindow)
	res.ReplicaSeconds = res.Tally.ReplicaSeconds
	res.UnmetRequests = res.Tally.Unmet
	res.ViolationSeconds = res.Tally.ViolationSeconds
	res.ScaleActions = res.Tally.UpActions + res.Tally.DownActions
	res.Cost = cfg.Cost.Price(res.Tally)
	res.DecisionMsP99 = p99Millis(decisionTimes)
	return res, nil
}

// Between tallies seconds [from, to) of r, a replay of demand under cfg:
// what that part of the replay cost. Between(cfg, demand, 0, len(demand))
// is r.Tally.
func (r Result) Between(cfg Config, demand []float64, from, to int) Tally {
	var t Tally
	prev := cfg.initial(demand)
	if from > 0 {
		prev = r.Requested[from-1]
	}
	for s := from; s < to; s++ {
		r.tallySecond(&t, cfg, demand, s, prev)
		prev = r.Requested[s]
	}
	return t
}

// tallySecond adds second s of r to t, prev being the count requested the
// second before: a change of the count is counted at the second it was
// made.
func (r Result) tallySecond(t *Tally, cfg Config, demand []float64, s, prev int) {
	t.add(r.Requested[s], r.Serving[s], demand[s], cfg.Capacity)
	switch d := r.Requested[s] - prev; {
	case d > 0:
		t.UpActions++
		t.UpReplicas += d
	case d < 0:
		t.DownActions++
		t.DownReplicas -= d
	}
}

// servingAt counts the replicas of readyAt that serve in second t.
func servingAt(readyAt []int, t int) int {
	n, _ := slices.BinarySearch(readyAt, t+1)
	return n
}

// p99Millis is the nearest-rank 99th percentile in milliseconds.
func p99Millis(ds []time.Duration) float64 {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	i := int(math.Ceil(0.99*float64(len(ds)))) - 1
	return float64(ds[max(i, 0)]) / float64(time.Millisecond)
}
