package predict

import (
	"slices"
	"time"
)

// DelayEstimator learns how long a requested replica takes to run, from
// the group's own scale-ups: the time from asking for a count to seeing
// that many replicas running. Nomad's placement, the task's start and its
// health checks are all in it, which no constant in a policy captures.
type DelayEstimator struct {
	fixed   bool
	initial time.Duration
	pending []pendingUp
	samples []time.Duration
}

type pendingUp struct {
	at    time.Time
	level int
}

// delaySamples is how many recent scale-ups the estimate is the median of.
const delaySamples = 9

// maxPending bounds how long a scale-up that never completes is waited for.
const maxPending = 30 * time.Minute

// NewDelayEstimator starts from initial; a fixed estimator (the policy set
// startup_delay) never moves from it.
func NewDelayEstimator(initial time.Duration, fixed bool) *DelayEstimator {
	return &DelayEstimator{fixed: fixed, initial: max(initial, 0)}
}

// Delay is the current estimate: the median of the recent scale-ups, or
// the initial value until one was measured.
func (e *DelayEstimator) Delay() time.Duration {
	if e.fixed || len(e.samples) == 0 {
		return e.initial
	}
	s := slices.Clone(e.samples)
	slices.Sort(s)
	return s[len(s)/2]
}

// Samples is how many scale-ups were measured.
func (e *DelayEstimator) Samples() int { return len(e.samples) }

// Requested notes that the count was raised from current to level at now.
func (e *DelayEstimator) Requested(now time.Time, current, level int) {
	if e.fixed || level <= current {
		return
	}
	e.pending = append(e.pending, pendingUp{at: now, level: level})
}

// Observe reads the group at now: a pending scale-up whose count now runs
// is measured; one that was never applied, or was undone, is dropped.
func (e *DelayEstimator) Observe(now time.Time, current, running int) {
	kept := e.pending[:0]
	for _, p := range e.pending {
		switch {
		case p.level > current || now.Sub(p.at) > maxPending || now.Before(p.at):
			// Not applied (dry run, cooldown, blocked) or scaled back down,
			// or the clock went back: nothing to measure.
		case running >= p.level:
			e.samples = append(e.samples, now.Sub(p.at))
			if len(e.samples) > delaySamples {
				e.samples = e.samples[1:]
			}
		default:
			kept = append(kept, p)
		}
	}
	e.pending = kept
}
