package backtest

import (
	"context"
	"math"
)

// windowMean is the mean demand of the last window seconds before
// obs.Now (fewer at the replay's start): the request rate a reactive
// autoscaler's `rate(...[window])` query reads. ok is false before the
// first second.
func windowMean(obs Observation, window int) (mean float64, ok bool) {
	from := max(obs.Now-window, 0)
	if from >= obs.Now {
		return 0, false
	}
	for _, d := range obs.Demand[from:obs.Now] {
		mean += d
	}
	return mean / float64(obs.Now-from), true
}

// TargetValue is nomad-autoscaler's target-value strategy on a
// request-rate metric, as an operator writes it and as the live
// comparison's peer runs it: `sum(rate(requests[W])) / clamp_min(running,
// 1)`, the window's mean demand per running replica. Every Interval
// seconds (unless in cooldown after a scaling) it asks for
// ceil(count * metric / (Target * Capacity)) replicas when the ratio
// leaves 1 ± Threshold, with count the group's running replicas (what
// nomad-autoscaler's Nomad target reports), clamped to [Min, Max]; a
// count the clamp leaves unchanged is no action and starts no cooldown,
// as upstream skips it.
type TargetValue struct {
	Capacity  float64
	Interval  int     // seconds between evaluations
	Window    int     // seconds of metric averaged
	Target    float64 // utilisation aimed at
	Threshold float64 // relative deadband around Target
	Cooldown  int     // seconds without evaluation after a scaling
	Min, Max  int     // the policy's bounds; Max 0 is none

	lastAction int
	acted      bool
}

// NewTargetValue is target-value with the defaults the backtest compares
// against: every 10 s, 60 s of metric, target 0.75, threshold 0.01,
// cooldown 30 s.
func NewTargetValue(capacity float64) *TargetValue {
	return &TargetValue{Capacity: capacity, Interval: 10, Window: 60, Target: 0.75, Threshold: 0.01, Cooldown: 30}
}

// Name implements Strategy.
func (*TargetValue) Name() string { return "target-value" }

// Decide implements Strategy.
func (s *TargetValue) Decide(_ context.Context, obs Observation) (Decision, error) {
	hold := Decision{Desired: obs.Requested}
	if obs.Now == 0 || obs.Now%s.Interval != 0 {
		return hold, nil
	}
	if s.acted && obs.Now < s.lastAction+s.Cooldown {
		return hold, nil
	}
	hold.Evaluated = true
	rate, ok := windowMean(obs, s.Window)
	if !ok {
		return hold, nil
	}
	// The query divides by clamp_min(running, 1), and nomad-autoscaler
	// scales from zero as if from one.
	count := max(obs.ServingNow, 1)
	factor := rate / float64(count) / s.Capacity / s.Target
	if factor >= 1-s.Threshold && factor <= 1+s.Threshold {
		return hold, nil
	}
	want := max(int(math.Ceil(float64(count)*factor)), s.Min)
	if s.Max > 0 {
		want = min(want, s.Max)
	}
	if want == obs.Requested {
		return hold, nil
	}
	s.lastAction, s.acted = obs.Now, true
	return Decision{Desired: want, Evaluated: true}, nil
}

// HPA is the Kubernetes horizontal pod autoscaler with its default
// behaviour on a per-pod load metric: every Interval seconds it computes
// the replica count that brings the utilisation of the serving replicas
// (the mean load of the last Window seconds spread over them) to Target (no change within
// Tolerance; replicas not serving yet count as idle when scaling up and
// are left out when scaling down, as the HPA treats pods not yet ready),
// scales down only to the highest recommendation of the last
// DownStabilisation seconds, and scales up by at most max(UpPods,
// UpPercent% of the current count) a period.
type HPA struct {
	Capacity          float64
	Interval          int
	Window            int
	Target            float64
	Tolerance         float64
	DownStabilisation int
	UpPods            int
	UpPercent         float64
	Min, Max          int

	recs []hpaRec
}

type hpaRec struct{ at, replicas int }

// NewHPA is the HPA with Kubernetes' defaults: sync every 15 s, target
// 0.75, tolerance 0.1, scale-down stabilisation 300 s, scale-up at most
// max(4 pods, 100%) per 15 s. It reads 60 s of metric, like TargetValue.
func NewHPA(capacity float64, minReplicas, maxReplicas int) *HPA {
	return &HPA{
		Capacity: capacity, Interval: 15, Window: 60, Target: 0.75, Tolerance: 0.1,
		DownStabilisation: 300, UpPods: 4, UpPercent: 100, Min: minReplicas, Max: maxReplicas,
	}
}

// Name implements Strategy.
func (*HPA) Name() string { return "hpa" }

// Decide implements Strategy.
func (s *HPA) Decide(_ context.Context, obs Observation) (Decision, error) {
	current := obs.Requested
	if obs.Now == 0 || obs.Now%s.Interval != 0 {
		return Decision{Desired: current}, nil
	}
	desired := s.recommend(obs)
	desired = min(max(desired, s.Min), s.Max)

	// Stabilise: a scale-down goes no lower than the highest recommendation
	// within the window (this one included); a scale-up is immediate.
	cutoff := obs.Now - s.DownStabilisation
	kept := s.recs[:0]
	for _, r := range s.recs {
		if r.at > cutoff {
			kept = append(kept, r)
		}
	}
	s.recs = append(kept, hpaRec{at: obs.Now, replicas: desired})
	down := desired
	for _, r := range s.recs {
		down = max(down, r.replicas)
	}
	want := max(current, desired)
	want = min(want, down)

	// Rate-limit scale-ups. Evaluations are one period apart, so the count
	// at the start of the period is the current count.
	if want > current {
		limit := max(current+s.UpPods, int(math.Ceil(float64(current)*(1+s.UpPercent/100))))
		want = min(want, limit)
	}
	return Decision{Desired: min(max(want, s.Min), s.Max), Evaluated: true}, nil
}

// recommend is the HPA replica calculator for a plain per-pod metric.
// Each ready pod's metric is its share of the mean load of the window, as
// a per-pod request rate averaged over the window reads once the pods that
// just became ready take their share.
func (s *HPA) recommend(obs Observation) int {
	current := obs.Requested
	ready := obs.ServingNow
	load, ok := windowMean(obs, s.Window)
	if ready == 0 || !ok {
		return current
	}
	metric := load / (float64(ready) * s.Capacity)
	ratio := metric / s.Target
	missing := current - ready
	if missing <= 0 {
		if math.Abs(ratio-1) <= s.Tolerance {
			return current
		}
		return int(math.Ceil(ratio * float64(ready)))
	}
	// Pods not ready yet: left out when the ready ones say scale down,
	// counted as idle when they say scale up (Kubernetes' replica
	// calculator; it counts ready pods without a metric at target on a
	// scale-down, which the simulation has none of).
	if ratio < 1 {
		if math.Abs(ratio-1) <= s.Tolerance {
			return current
		}
		return min(int(math.Ceil(ratio*float64(ready))), current)
	}
	newRatio := metric * float64(ready) / (s.Target * float64(current))
	if math.Abs(newRatio-1) <= s.Tolerance || newRatio < 1 {
		return current
	}
	return max(int(math.Ceil(newRatio*float64(current))), current)
}
