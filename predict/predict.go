// Package predict owns the receding-horizon decision of a predictive
// policy: which replica count to run now, from a plan that is re-made every
// few seconds (and at once when demand leaves the forecast band), with a
// reactive floor under it so the count never falls below what recently
// observed demand needs. It also learns how long a new replica takes to
// serve. It is pure: the clock, the history and the plan maker come from the
// caller, so the daemon's reconciler and the backtest run the same code.
package predict

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/nomadscalerd/nomadscalerd/optimize"
)

// Settings is how a policy serves its plans. DefaultSettings are the
// daemon's defaults; the policy's target block overrides them.
type Settings struct {
	// Capacity is the demand one replica serves (capacity_per_replica).
	Capacity float64
	// Min and Max bound every count served.
	Min, Max int
	// ReplanInterval is the longest a plan is served before a new one is
	// made from fresher history (replan_interval).
	ReplanInterval time.Duration
	// MinReplanGap is the shortest time between two plans, however often
	// demand leaves the band: re-planning costs a forecast and a solve.
	MinReplanGap time.Duration
	// ReplanPhase is how much sooner than ReplanInterval the second plan
	// is made, so that policies whose first plans came together (a
	// daemon's start) re-plan at different moments: the daemon gives each
	// policy its own, from its key. Plans that fall due on the interval
	// keep their phase: one made late (its worker was busy) is followed
	// by the next at the time the phase says, not an interval after the
	// late one, or a backlog served at once would re-plan at once ever
	// after. 0 keeps the first plan's phase.
	ReplanPhase time.Duration
	// CacheSize is how many of a plan's first seconds are replayed in a
	// loop (seconds_elapsed % cache_size, the seed's cache) when a new plan
	// cannot be made (cache_size); 0 replays the whole plan.
	CacheSize int
	// FloorWindow is how much recent demand the floor reads (floor_window).
	FloorWindow time.Duration
	// FloorMargin multiplies the floor's demand level (floor_margin): 1
	// means exactly enough replicas for the level, 0 turns the floor off.
	// The default 1.05 leaves room for the noise around a level the trend
	// below already follows.
	FloorMargin float64
	// FloorTrend makes the floor's level the recent demand's straight-line
	// trend a startup delay ahead when it rises (floor_trend): a replica
	// asked for now serves only then, and a floor at the window's mean
	// lags a rise by half the window plus the startup delay. A falling
	// trend keeps the mean: the floor never runs ahead of a fall. A step
	// up (a level shift: see shiftLevel) takes the floor to the new level
	// at once.
	FloorTrend bool
	// BandWindow is how many of the latest seconds are compared with the
	// plan's forecast band.
	BandWindow time.Duration
	// BandSlack widens the band by this fraction of its upper edge before
	// an observation counts as outside it.
	BandSlack float64
	// WrongAfter is how many band exits in a row mark the model as wrong:
	// the next plan refits it instead of reusing its parameters.
	WrongAfter int
	// WrongFor is how long the exits in a row must have kept coming,
	// from the first, before they mark the model as wrong. A burst
	// leaves the band for a few seconds and is no sign of a wrong model,
	// and a model refitted on a burst's fall forecasts the fall going on,
	// or its echo: on the demo's cold replay such refits flapped, and on
	// the NASA week exits-driven refits (every one of them within a
	// burst) left 1.9% more requests unmet than none. A model that is
	// wrong keeps missing: demand that stays under a forecast for a
	// minute is a wrong level, not a burst.
	WrongFor time.Duration
	// Disruption is what a change of the count costs beyond the replica's
	// start: Nomad runs a deployment for it that blocks the next change
	// (the group's update block: min_healthy_time and the health checks).
	// A scale-down keeps the highest count the plan wants within the
	// startup delay plus Disruption, so a plan never takes a replica away
	// only to ask for it again before a new one could serve.
	Disruption time.Duration
	// DownWindow is the scale-down stabilization (scale_down_window), as
	// Kubernetes' HPA has it: a scale-down goes no lower than the highest
	// count decided within this long. It trades replica-seconds for fewer
	// scale-downs undone soon after; 0 (the default) turns it off, the
	// hysteresis below is what keeps re-plans from flapping.
	DownWindow time.Duration
	// FlapWindow keeps a replica the plan asks back for within it
	// (flap_window): a scale-down is not made while the plan's count
	// rises above it again within FlapWindow, and every plan covers that
	// long. Each change is a Nomad deployment, and a replica taken away
	// and asked back within FlapWindow is a flap as `demo compare` and the
	// backtest count them; the hold below only looks as far as a replica
	// takes to serve again, which with a short startup delay let a plan
	// take a replica away 15 seconds before a burst it forecast. 0 turns
	// it off.
	FlapWindow time.Duration
	// DownHysteresis is how far, in replicas' capacity, the demand a plan
	// was solved for must fall below a count's capacity before the count
	// is scaled down to it (scale_down_hysteresis). A plan asks for n
	// replicas while its demand is within n's capacity; re-plans that
	// move the forecast by a little around that edge would otherwise
	// take a replica away and ask for it back. 0 turns it off.
	DownHysteresis float64
	// Noise is the headroom for the scatter of single seconds that a
	// count keeps while there is no plan (see Cold); a plan keeps its own.
	Noise Noise
}

// DefaultSettings are the daemon's defaults (chosen with the backtest; see
// the README's "Does it help?").
func DefaultSettings() Settings {
	return Settings{
		Capacity: 10, Min: 0, Max: math.MaxInt32,
		ReplanInterval: 10 * time.Second, MinReplanGap: 2 * time.Second,
		FloorWindow: 60 * time.Second, FloorMargin: 1.05, FloorTrend: true,
		BandWindow: 5 * time.Second, BandSlack: 0.1, WrongAfter: 3, WrongFor: 20 * time.Second,
		Disruption: 5 * time.Second, DownHysteresis: 0.5, FlapWindow: 30 * time.Second,
	}
}

// Validate reports the first setting that cannot work.
func (s Settings) Validate() error {
	switch {
	case !(s.Capacity > 0):
		return errors.New("capacity must be positive")
	case s.Min < 0 || s.Max < s.Min:
		return fmt.Errorf("bounds [%d, %d] are not a range", s.Min, s.Max)
	case s.ReplanInterval < time.Second:
		return errors.New("replan_interval must be at least 1s")
	case s.ReplanPhase < 0 || s.ReplanPhase >= s.ReplanInterval:
		return fmt.Errorf("the replan phase %s is not within [0, replan_interval %s)", s.ReplanPhase, s.ReplanInterval)
	case s.FloorWindow < time.Second:
		return errors.New("floor_window must be at least 1s")
	case s.FloorMargin < 0 || math.IsInf(s.FloorMargin, 0) || math.IsNaN(s.FloorMargin):
		return errors.New("floor_margin must not be negative")
	case s.BandSlack < 0:
		return errors.New("band slack must not be negative")
	case s.WrongFor < 0:
		return errors.New("the time band exits must keep coming (WrongFor) must not be negative")
	case s.Disruption < 0:
		return errors.New("disruption must not be negative")
	case s.DownHysteresis < 0 || s.DownHysteresis > 1 || math.IsNaN(s.DownHysteresis):
		return errors.New("scale_down_hysteresis must be within 0..1")
	case s.DownWindow < 0:
		return errors.New("scale_down_window must not be negative")
	case s.FlapWindow < 0:
		return errors.New("flap_window must not be negative")
	case s.CacheSize < 0:
		return errors.New("cache_size must not be negative")
	}
	return nil
}

// Floor is the fewest replicas that serve the recent demand level, times
// margin, over capacity, rounded up. The level is the mean of recent
// (samples one second apart), or, when lead > 0 and recent rises, its
// least-squares line lead seconds past its last sample, anchored no higher
// than the latest seconds; when lead > 0 it is also at least the level of
// a step up the latest seconds show (shiftLevel). No demand, or a zero
// margin, is no floor.
func Floor(recent []float64, capacity, margin, lead float64) int {
	if len(recent) == 0 || margin <= 0 || capacity <= 0 {
		return 0
	}
	// A hair of tolerance so that exactly k*capacity needs k, not k+1.
	return ceilCount(level(recent, lead)*margin/capacity - 1e-9)
}

// ceilCount rounds a replica count up, saturating at math.MaxInt32 (the
// largest count a policy takes) instead of wrapping past int's range.
func ceilCount(x float64) int {
	switch {
	case math.IsNaN(x):
		return 0
	case x >= math.MaxInt32:
		return math.MaxInt32
	}
	return int(math.Ceil(x))
}

// level is the floor's demand level of recent (see Floor); recent is not
// empty.
func level(recent []float64, lead float64) float64 {
	level, slope := line(recent)
	if lead > 0 && len(recent) > 2 && slope > 0 {
		// The line is anchored at the latest seconds, not only at its
		// own end: after a burst the window's line still rises while
		// demand is already back down, and a rise that has ended is
		// no reason to hold replicas.
		mid := float64(len(recent)-1) / 2
		k := min(len(recent), floorAnchor)
		latest := 0.0
		for _, v := range recent[len(recent)-k:] {
			latest += usable(v)
		}
		latest = latest/float64(k) + slope*float64(k-1)/2
		level = max(level, min(level+slope*mid, latest)+slope*lead)
	}
	if lead > 0 {
		// A step is not a trend: the window's line takes half a window
		// to reach a new level that its latest seconds already show.
		level = max(level, shiftLevel(recent))
	}
	return level
}

// FloorAbove reports whether the floor of recent (the latest seconds of
// demand, one apart) under s, with delay the startup delay the decider
// plans with, asks for more than count. A policy's worker evaluates every
// evaluation_interval; a sample for which this holds wakes it at once,
// since the decision it would make then is already known to be a
// scale-up, and every second of a step up waited out is a second of unmet
// demand on top of the startup delay. A count at the policy's max has
// nothing to wake for.
func FloorAbove(s Settings, delay time.Duration, recent []float64, count int) bool {
	if count >= s.Max {
		return false
	}
	lead := 0.0
	if s.FloorTrend {
		lead = delay.Seconds()
	}
	return Floor(tail(recent, seconds(s.FloorWindow)), s.Capacity, s.FloorMargin, lead) > count
}

// shiftSeconds and shiftZ define a level shift: the latest shiftSeconds
// all more than shiftZ standard deviations above the mean of the
// window's seconds before them. Two normal seconds that far out happen by
// chance about once in half a million pairs; a real step shows in two
// seconds instead of the half window the line takes.
const (
	shiftSeconds = 2
	shiftZ       = 3.0
)

// shiftLevel is the mean of recent's latest shiftSeconds when they are a
// level shift above the seconds before them (see shiftSeconds), else 0.
// A window shorter than four times shiftSeconds tells nothing.
func shiftLevel(recent []float64) float64 {
	n := len(recent)
	if n < 4*shiftSeconds {
		return 0
	}
	before := recent[:n-shiftSeconds]
	m := 0.0
	for _, v := range before {
		m += usable(v)
	}
	m /= float64(len(before))
	ss := 0.0
	for _, v := range before {
		ss += (usable(v) - m) * (usable(v) - m)
	}
	limit := m + shiftZ*math.Sqrt(ss/float64(len(before)-1))
	sum := 0.0
	for _, v := range recent[n-shiftSeconds:] {
		if usable(v) <= limit {
			return 0
		}
		sum += usable(v)
	}
	return sum / shiftSeconds
}

// line is the least-squares line through recent's usable samples, one
// second apart: its value at the window's middle (the mean) and its slope
// per second (0 for fewer than two samples).
func line(recent []float64) (mean, slope float64) {
	n := float64(len(recent))
	mid := (n - 1) / 2
	var sum, sxy, sxx float64
	for _, v := range recent {
		sum += usable(v)
	}
	mean = sum / n
	for i, v := range recent {
		x := float64(i) - mid
		sxy += x * (usable(v) - mean)
		sxx += x * x
	}
	if sxx > 0 {
		slope = sxy / sxx
	}
	return mean, slope
}

// Noise is the headroom a count keeps for the scatter of single seconds
// around their level, as a plan's forecast band keeps it
// (model.ForecastConfig's NoiseMargin, NoiseQuantile, NoiseCap and
// NoiseCapShare): Margin standard deviations, but never more than Cap
// (requests/s) above Quantile standard deviations, unless that is less
// than CapShare of the level. A zero Noise keeps none.
type Noise struct {
	Margin, Quantile, Cap, CapShare float64
}

// Of is the headroom, in requests/s, for seconds scattering by sd around
// level.
func (n Noise) Of(sd, level float64) float64 {
	h := math.Max(n.Margin, 0) * sd
	if n.Cap > 0 && n.Quantile < n.Margin {
		h = math.Min(h, math.Max(math.Max(n.Quantile, 0)*sd+n.Cap, n.CapShare*level))
	}
	return h
}

// Cold is the count to run while there is no plan to serve (a new policy's
// first minutes, or a model that cannot be fitted): what the recent
// demand level needs, as the floor reads it, plus the headroom a plan
// would keep for the scatter of its seconds. Without it a policy serves
// the floor alone until its first plan, and on noisy traffic leaves more
// requests unmet in those minutes than a reactive rule's fixed headroom
// does. No demand is no count.
func Cold(recent []float64, capacity, lead float64, noise Noise) int {
	if len(recent) == 0 || capacity <= 0 {
		return 0
	}
	lv := level(recent, lead)
	// The scatter is around the window's straight line, so that a ramp
	// within the window does not count as noise.
	mean, slope := line(recent)
	mid := float64(len(recent)-1) / 2
	ss := 0.0
	for i, v := range recent {
		r := usable(v) - mean - slope*(float64(i)-mid)
		ss += r * r
	}
	sd := 0.0
	if len(recent) > 2 {
		sd = math.Sqrt(ss / float64(len(recent)-2))
	}
	return ceilCount((lv+noise.Of(sd, lv))/capacity - 1e-9)
}

// floorAnchor is how many of the latest seconds anchor the floor's
// trend: few enough to see a burst end, enough to average a second's
// noise.
const floorAnchor = 5

// usable is a demand sample as the floor counts it: negative or infinite
// samples (a counter reset, a broken query) count as no demand.
func usable(v float64) float64 {
	if v > 0 && !math.IsInf(v, 0) {
		return v
	}
	return 0
}

// hysteresisShare caps the scale-down hysteresis at this share of the demand.
const hysteresisShare = 0.1

// Hysteresis is the count to scale down to from current when a plan asks
// for planned (< current) and the demand it was solved for peaks at peak
// within the hold: no lower than that peak plus margin replicas' capacity
// (at most a tenth of the peak) needs, and never above current. A plan's count follows its demand to the
// edge of a replica's capacity; the margin keeps a forecast that moves a
// little around that edge from taking a replica away and asking for it back
// at the next re-plan.
func Hysteresis(planned, current int, peak, capacity, margin float64) int {
	if planned >= current || margin <= 0 || capacity <= 0 || peak <= 0 {
		// No demand at all needs no margin: a group may scale to zero.
		return planned
	}
	// At a replica or two a half-replica margin would be a third of the
	// level: on smooth, small traffic (WorldCup98 at 12 requests/s) it
	// cost 19% more replica-seconds. A tenth of the demand is the
	// tolerance Kubernetes' HPA keeps.
	m := math.Min(margin*capacity, hysteresisShare*peak)
	// A hair of tolerance so that exactly k-margin capacities need k.
	need := ceilCount((peak+m)/capacity - 1e-9)
	return min(max(planned, need), current)
}

// PlanFunc makes a fresh plan starting at now for a group whose count is
// current, assuming a replica serves startupDelay seconds after it is
// requested; refit asks for the model's parameters to be re-estimated.
type PlanFunc func(ctx context.Context, r PlanRequest) (optimize.Plan, error)

// PlanRequest is one call of a PlanFunc.
type PlanRequest struct {
	Now          time.Time
	Current      int
	StartupDelay time.Duration
	// Horizon is the shortest plan that covers the startup delay, what is
	// served until the next plan, the scale-down hold and the time a
	// scale-up's deployment blocks the next change.
	Horizon int
	Refit   bool
}

// Input is what the decider sees at one evaluation.
type Input struct {
	Now time.Time
	// Current is the count the group is asked to run (Nomad's desired
	// count); Running how many of its replicas run.
	Current, Running int
	// Recent is the observed demand per second up to now, oldest first: at
	// least FloorWindow and BandWindow seconds of it when there are.
	Recent []float64
	// MinHealthy is the group's update block's min_healthy_time: a
	// scale-up starts a Nomad deployment that blocks the next change until
	// the new replicas have run healthy this long, so a scale-up asks at
	// once for the plan's highest count until then. 0 when the group runs
	// no deployments or it is not known.
	MinHealthy time.Duration
}

// Decision is what to run now and why.
type Decision struct {
	// Count is the replica count to run from now on, within the bounds.
	Count int
	// Planned is the plan's value for now (before the floor); Floor the
	// reactive floor.
	Planned, Floor int
	// Plan is the plan served; Replanned says it was made by this call,
	// and Why why (or why the plan could not be made: PlanErr).
	Plan      optimize.Plan
	Replanned bool
	Why       string
	PlanErr   error
	// Source says what set Count: "plan", "floor" (before the first
	// plan: with the headroom of Cold), "hold" (nothing
	// observed or planned yet), "cached" (the seed's
	// cache semantics, after a failed re-plan), "bounds" or "stabilized"
	// (a scale-down held up to a count decided within DownWindow).
	Source string
	// NextWake is when the decision can next change without new events:
	// the plan's next change, the next re-plan, whichever is first.
	NextWake time.Time
	// StartupDelay is the delay the plan assumed.
	StartupDelay time.Duration
	// HoldDown is how long a replica taken away now would take to serve
	// again: the startup delay plus Disruption.
	HoldDown time.Duration
}

// Decider serves one policy's plans; it is not safe for concurrent use.
type Decider struct {
	s     Settings
	plan  PlanFunc
	delay *DelayEstimator

	cur      optimize.Plan
	failed   bool // the last re-plan failed: cur is served as the seed's cache
	lastPlan time.Time
	// planDue is when the replan interval next falls due (ReplanPhase).
	planDue time.Time
	exits   int
	// firstExit is when the latest run of band exits in a row began.
	firstExit time.Time
	// minHealthy is the latest Input's MinHealthy.
	minHealthy time.Duration
	// decided are the counts decided within the latest DownWindow, oldest
	// first, before stabilization.
	decided []decided
}

type decided struct {
	at    time.Time
	count int
}

// NewDecider builds a decider. delay tells the startup delay to plan for
// (see DelayEstimator); plan makes plans.
func NewDecider(s Settings, delay *DelayEstimator, plan PlanFunc) (*Decider, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if delay == nil {
		delay = NewDelayEstimator(0, false)
	}
	return &Decider{s: s, plan: plan, delay: delay}, nil
}

// Plan is the plan being served (empty before the first).
func (d *Decider) Plan() optimize.Plan { return d.cur }

// RecentWindow is how much recent demand Decide reads (Input.Recent): the
// floor's window and the band check's, whichever is longer.
func (d *Decider) RecentWindow() time.Duration { return max(d.s.FloorWindow, d.s.BandWindow) }

// StartupDelay is the startup delay the decider plans with now.
func (d *Decider) StartupDelay() time.Duration { return d.delay.Delay() }

// Decide evaluates the policy at in.Now.
func (d *Decider) Decide(ctx context.Context, in Input) Decision {
	d.delay.Observe(in.Now, in.Current, in.Running)
	s := d.s
	lead := 0.0
	if s.FloorTrend {
		lead = d.delay.Delay().Seconds()
	}
	dec := Decision{Floor: Floor(tail(in.Recent, seconds(s.FloorWindow)), s.Capacity, s.FloorMargin, lead), StartupDelay: d.delay.Delay(), HoldDown: d.holdDown()}

	d.minHealthy = in.MinHealthy
	why := d.replanDue(in)
	if why != "" {
		// Served until the next plan, each served second looks a hold
		// ahead (and a count asked for then serves a startup delay later),
		// or, for a scale-up, as far as its deployment blocks the next.
		horizon := seconds(s.ReplanInterval) + max(seconds(d.holdDown())+seconds(d.delay.Delay()), seconds(d.upHold()), seconds(s.FlapWindow)) + 1
		refit := d.exits >= max(s.WrongAfter, 1) && in.Now.Sub(d.firstExit) >= s.WrongFor
		plan, err := d.plan(ctx, PlanRequest{Now: in.Now, Current: in.Current, StartupDelay: d.delay.Delay(), Horizon: horizon, Refit: refit})
		if err == nil && len(plan.Desired) == 0 {
			err = errors.New("the plan is empty")
		}
		d.lastPlan = in.Now
		d.planDue = d.nextDue(in.Now)
		if err != nil {
			dec.PlanErr = err
			d.failed = true
		} else {
			d.cur, d.failed, dec.Replanned = plan, false, true
			if refit {
				d.exits = 0
			}
		}
		dec.Why = why
	}
	dec.Plan = d.cur

	switch {
	case len(d.cur.Desired) == 0 && len(in.Recent) == 0:
		// Nothing planned and nothing observed yet: no evidence for any
		// count, so keep the current one. A policy attached to a running
		// group must not scale it to its minimum before its first sample.
		dec.Planned, dec.Source = in.Current, "hold"
	case len(d.cur.Desired) == 0:
		// No plan yet (or none could ever be made): the floor keeps the
		// headroom for single seconds that a plan would keep.
		dec.Floor = max(dec.Floor, Cold(tail(in.Recent, seconds(s.FloorWindow)), s.Capacity, lead, s.Noise))
		dec.Planned, dec.Source = 0, "floor"
	case d.failed:
		// Planning failed: serve the cached plan as the seed's cache does,
		// its first CacheSize seconds at seconds_elapsed % cache_size.
		cached := d.cur
		if n := s.CacheSize; n > 0 && len(cached.Desired) > n {
			cached.Desired = cached.Desired[:n]
		}
		dec.Planned, _ = cached.Value(in.Now)
		dec.Source = "cached"
	default:
		// Every change starts a Nomad deployment that blocks the next one
		// until the new replicas run, and a replica taken away takes as
		// long to come back: so serve the plan's highest count over that
		// time, not its value for this second. A plan never scales down
		// to scale up again within it, and a rise is asked for in one
		// action, early enough.
		dec.Planned, dec.Source = d.served(in.Now, in.Current), "plan"
	}
	dec.Count = dec.Planned
	if dec.Source == "plan" && dec.Count < in.Current {
		if peak, ok := d.cur.DemandMaxBetween(in.Now, in.Now.Add(d.holdDown())); ok {
			dec.Planned = Hysteresis(dec.Planned, in.Current, peak, s.Capacity, s.DownHysteresis)
			dec.Count = dec.Planned
		}
	}
	if dec.Floor > dec.Count {
		dec.Count, dec.Source = dec.Floor, "floor"
	}
	if c := clamp(dec.Count, s.Min, s.Max); c != dec.Count {
		dec.Count, dec.Source = c, "bounds"
	}
	heldUntil := d.stabilize(in, &dec)
	if dec.Count > in.Current {
		d.delay.Requested(in.Now, in.Current, dec.Count)
	}
	dec.NextWake = d.nextWake(in.Now, in.Current, in.Current != in.Running || dec.Count != in.Current)
	if !heldUntil.IsZero() && heldUntil.Before(dec.NextWake) {
		dec.NextWake = heldUntil
	}
	return dec
}

// stabilize remembers dec.Count and holds a scale-down at the highest count
// decided within DownWindow (never above the current count). It returns
// when the first of the counts holding it up leaves the window, or zero
// when nothing is held.
func (d *Decider) stabilize(in Input, dec *Decision) (heldUntil time.Time) {
	w := d.s.DownWindow
	if w <= 0 {
		return time.Time{}
	}
	keep := d.decided[:0]
	for _, r := range d.decided {
		// A clock that went backwards (a restarted replay) forgets the rest.
		if in.Now.Sub(r.at) < w && !r.at.After(in.Now) {
			keep = append(keep, r)
		}
	}
	d.decided = append(keep, decided{at: in.Now, count: dec.Count})
	if dec.Count >= in.Current {
		return time.Time{}
	}
	held := dec.Count
	for _, r := range d.decided {
		if r.count > dec.Count {
			held = max(held, r.count)
			if heldUntil.IsZero() {
				heldUntil = r.at.Add(w)
			}
		}
	}
	if held = min(held, in.Current); held != dec.Count {
		dec.Count, dec.Source = held, "stabilized"
	}
	return heldUntil
}

// holdDown is how long a replica taken away now would take to serve
// again, and how long after a change the next one can take effect.
func (d *Decider) holdDown() time.Duration { return d.delay.Delay() + d.s.Disruption }

// upHold is how long a scale-up now blocks the next change: its replicas
// start, then Nomad's deployment waits for them to run healthy for the
// group's min_healthy_time (never less than holdDown).
func (d *Decider) upHold() time.Duration { return d.delay.Delay() + max(d.s.Disruption, d.minHealthy) }

// windowMax is the plan's highest count over [t, t+holdDown].
func (d *Decider) windowMax(t time.Time) int { return d.cur.MaxBetween(t, t.Add(d.holdDown())) }

// served is the plan's count to run at t from current: its highest count
// over the scale-down hold, or, when that is a scale-up, over the time the
// scale-up's deployment will block the next change, so that a rise within
// it is asked for in this one action. A scale-down the plan itself undoes
// within FlapWindow is not made. nextWake reads the same function, so a
// held scale-down is taken the second the plan's rise leaves the window,
// not at the next re-plan.
func (d *Decider) served(t time.Time, current int) int {
	n := d.windowMax(t)
	if n > current && d.upHold() > d.holdDown() {
		n = max(n, d.cur.MaxBetween(t, t.Add(d.upHold())))
	}
	if n < current && d.s.FlapWindow > 0 {
		// Hysteresis, applied after this, only raises a count toward
		// current, so the order of the two does not change the count.
		if back := d.cur.MaxBetween(t, t.Add(d.s.FlapWindow)); back > n {
			n = min(back, current)
		}
	}
	return n
}

// replanDue says why a new plan is due now, or "" when none is.
func (d *Decider) replanDue(in Input) string {
	if len(d.cur.Desired) == 0 {
		if d.failed && in.Now.Sub(d.lastPlan) < d.s.MinReplanGap {
			return ""
		}
		return "no plan yet"
	}
	if !in.Now.Before(d.planDue) {
		// A plan that is flat wakes the worker only at the interval: the
		// band must be checked here too, or demand that stays outside it
		// is never counted and a wrong model is kept until its timer.
		if out, how := d.outsideBand(in); out {
			d.countExit(in.Now)
			return how
		}
		d.exits = 0
		return "replan interval"
	}
	if d.failed {
		// Retried once a replan interval: a broken model or solver must not
		// be asked (and logged) on every wake.
		return ""
	}
	if in.Now.Sub(d.cur.Start) >= time.Duration(len(d.cur.Desired))*time.Second {
		return "plan ran out"
	}
	if in.Now.Sub(d.lastPlan) < d.s.MinReplanGap {
		return ""
	}
	if out, how := d.outsideBand(in); out {
		d.countExit(in.Now)
		return how
	}
	d.exits = 0
	return ""
}

// nextDue is when the replan interval falls due after a plan made at now.
// The first plan's successor comes ReplanPhase early; after that the
// interval's plans keep to their phase whatever else is made in between:
// a plan made late is followed by the next slot, and one the band or a
// plan run out called for early does not move the slot it came before.
func (d *Decider) nextDue(now time.Time) time.Time {
	every := d.s.ReplanInterval
	switch {
	case d.planDue.IsZero():
		// Not held to MinReplanGap: policies whose first plans came
		// together would all make their second that long after, together
		// again. One early plan in a policy's life costs a forecast.
		return now.Add(every - d.s.ReplanPhase)
	case now.Before(d.planDue):
		// Called for early: the slot still comes, at most an interval
		// from now, so no plan is served longer than the interval.
		return d.planDue
	default:
		late := now.Sub(d.planDue)
		return d.planDue.Add((late/every + 1) * every)
	}
}

// countExit counts a band exit at now toward the run of exits in a row.
func (d *Decider) countExit(now time.Time) {
	if d.exits == 0 {
		d.firstExit = now
	}
	d.exits++
}

// outsideBand compares the mean demand of the latest BandWindow seconds
// with the plan's forecast band over the same seconds.
func (d *Decider) outsideBand(in Input) (bool, string) {
	p := d.cur
	if len(p.Upper) == 0 || len(in.Recent) == 0 {
		return false, ""
	}
	n := min(seconds(d.s.BandWindow), int(in.Now.Sub(p.Start)/time.Second), len(in.Recent))
	if n < 1 {
		return false, ""
	}
	obs, lo, hi := 0.0, 0.0, 0.0
	for i := 0; i < n; i++ {
		obs += usable(in.Recent[len(in.Recent)-1-i]) // as the floor reads it
		at := in.Now.Add(-time.Duration(i+1) * time.Second)
		l, h := p.BandAt(at)
		lo += l
		hi += h
	}
	obs, lo, hi = obs/float64(n), lo/float64(n), hi/float64(n)
	slack := d.s.BandSlack * math.Max(hi, d.s.Capacity)
	switch {
	case obs > hi+slack:
		return true, fmt.Sprintf("demand %.3g above the forecast band (upper %.3g)", obs, hi)
	case obs < lo-slack:
		return true, fmt.Sprintf("demand %.3g below the forecast band (lower %.3g)", obs, lo)
	}
	return false, ""
}

// nextWake is the next time the decision may change on its own: the
// plan's next change point or the next re-plan, and within a second while
// replicas are still starting (so their delay is measured).
func (d *Decider) nextWake(now time.Time, current int, starting bool) time.Time {
	wake := d.planDue
	if d.failed || len(d.cur.Desired) == 0 {
		wake = now.Add(d.s.MinReplanGap)
	} else {
		// The next second whose served count differs from now's. A
		// scale-down the hysteresis holds waits for the next re-plan
		// rather than the second its peak leaves the hold: waking then
		// was measured (the eleven README traces, the demo's ten phases)
		// at under 0.1% fewer replica-seconds for more flaps (flash-crowd
		// 8 to 11, demo phases 15 to 18) and 14% more unmet requests on
		// the demo.
		cur := d.served(now, current)
		end := d.cur.Start.Add(time.Duration(len(d.cur.Desired)) * time.Second)
		for t := now.Add(time.Second); t.Before(wake) && t.Before(end); t = t.Add(time.Second) {
			if d.served(t, current) != cur {
				wake = t
				break
			}
		}
	}
	if starting && now.Add(time.Second).Before(wake) {
		wake = now.Add(time.Second)
	}
	if !wake.After(now) {
		wake = now.Add(time.Second)
	}
	return wake
}

func tail(v []float64, n int) []float64 {
	if n < len(v) {
		return v[len(v)-n:]
	}
	return v
}

func seconds(d time.Duration) int { return int(math.Ceil(d.Seconds())) }

func clamp(v, lo, hi int) int { return max(lo, min(hi, v)) }
