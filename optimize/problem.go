package optimize

import (
	"errors"
	"fmt"
	"math"
)

// Defaults of the seed's formulation.
const (
	DefaultPenalty            = 1.0
	DefaultStartupCost        = 0.5
	DefaultShutdownCost       = 0.3
	DefaultMaxScaleUp         = 2
	DefaultMaxScaleDown       = 2
	DefaultReplicaCost        = 1.0
	DefaultCapacityPerReplica = 10.0
	// DefaultExtraPenalty is charged per second in which demand is positive
	// and no replica serves. It is ten times the default replica cost so
	// that scaling to zero under load is never cheaper than one replica
	// unless the SLA penalty alone already says so.
	DefaultExtraPenalty = 10.0
)

// Problem is one planning instance for one task group: the demand to cover
// per second and the costs and limits of the seed's formulation. Build it
// with DefaultProblem and override fields; every field is used as given.
type Problem struct {
	// Demand is the load per second, Demand[t] for second t of the plan.
	Demand []float64 `json:"demand"`
	// CapacityPerReplica is the load one serving replica covers.
	CapacityPerReplica float64 `json:"capacity_per_replica"`
	// ReplicaCost is the cost of one replica for one second (see ReplicaCost).
	ReplicaCost float64 `json:"replica_cost"`
	// Penalty is charged per unit of uncovered demand per second (sla).
	Penalty float64 `json:"penalty"`
	// StartupCost and ShutdownCost are charged per replica started/stopped.
	StartupCost  float64 `json:"startup_cost"`
	ShutdownCost float64 `json:"shutdown_cost"`
	// ExtraPenalty is charged per second with positive demand and no
	// serving replica (no_rep).
	ExtraPenalty float64 `json:"extra_penalty"`
	// MaxScaleUp and MaxScaleDown limit the change per second.
	MaxScaleUp   int `json:"max_scale_up"`
	MaxScaleDown int `json:"max_scale_down"`
	MinReplicas  int `json:"min_replicas"`
	MaxReplicas  int `json:"max_replicas"`
	// CurrentReplicas is the count serving just before the plan starts.
	// It may lie outside [MinReplicas, MaxReplicas]; see the package doc.
	CurrentReplicas int `json:"current_replicas"`
	// StartupDelay is the number of seconds between requesting a replica
	// and it serving.
	StartupDelay int `json:"startup_delay"`
}

// DefaultProblem returns a Problem with the seed's defaults and no demand.
func DefaultProblem() Problem {
	return Problem{
		CapacityPerReplica: DefaultCapacityPerReplica,
		ReplicaCost:        DefaultReplicaCost,
		Penalty:            DefaultPenalty,
		StartupCost:        DefaultStartupCost,
		ShutdownCost:       DefaultShutdownCost,
		ExtraPenalty:       DefaultExtraPenalty,
		MaxScaleUp:         DefaultMaxScaleUp,
		MaxScaleDown:       DefaultMaxScaleDown,
		MinReplicas:        0,
		MaxReplicas:        10,
	}
}

// ReplicaCost prices one replica for one second from its allocated CPU and
// memory. With no prices (both zero) it returns DefaultReplicaCost, the
// seed's unit cost.
func ReplicaCost(cpuMHz, memMiB, pricePerMHzSecond, pricePerMiBSecond float64) float64 {
	if pricePerMHzSecond == 0 && pricePerMiBSecond == 0 {
		return DefaultReplicaCost
	}
	return cpuMHz*pricePerMHzSecond + memMiB*pricePerMiBSecond
}

// Validate reports the first reason p cannot be planned.
func (p Problem) Validate() error {
	switch {
	case len(p.Demand) == 0:
		return errors.New("demand is empty")
	case !(p.CapacityPerReplica > 0) || math.IsInf(p.CapacityPerReplica, 0):
		return errors.New("capacity_per_replica must be positive and finite")
	case p.MinReplicas < 0 || p.MaxReplicas < 0 || p.CurrentReplicas < 0:
		return errors.New("replica counts must not be negative")
	case p.MinReplicas > p.MaxReplicas:
		return fmt.Errorf("min_replicas %d exceeds max_replicas %d", p.MinReplicas, p.MaxReplicas)
	case p.MaxScaleUp < 0 || p.MaxScaleDown < 0:
		return errors.New("max_scale_up and max_scale_down must not be negative")
	case p.StartupDelay < 0:
		return errors.New("startup_delay must not be negative")
	}
	for _, c := range []struct {
		name string
		v    float64
	}{
		{"replica_cost", p.ReplicaCost}, {"penalty", p.Penalty}, {"startup_cost", p.StartupCost},
		{"shutdown_cost", p.ShutdownCost}, {"extra_penalty", p.ExtraPenalty},
	} {
		// Negative costs would make simultaneous start and stop profitable,
		// which the net-change dynamic program cannot represent.
		if !(c.v >= 0) || math.IsInf(c.v, 0) {
			return fmt.Errorf("%s must be non-negative and finite", c.name)
		}
	}
	for t, d := range p.Demand {
		if !(d >= 0) || math.IsInf(d, 0) {
			return fmt.Errorf("demand[%d] = %v is not a non-negative number", t, d)
		}
	}
	return nil
}

// upCost is the cost of one unit of increase of the serving count: the
// start itself plus the StartupDelay seconds the replica is paid for
// before it serves.
func (p Problem) upCost() float64 {
	return p.StartupCost + float64(p.StartupDelay)*p.ReplicaCost
}

// ramps are MaxScaleUp and MaxScaleDown as the bounds and the DP use them:
// no larger than the largest count, max(MaxReplicas, CurrentReplicas).
// Every serving count lies in [0, that], so no step can change it by more
// and a larger limit never binds; but a huge one ("no limit" written as a
// big number) overflowed the bounds' products and the DP's sums, and the DP
// found no reachable count where HiGHS planned.
func (p Problem) ramps() (up, down int) {
	span := max(p.MaxReplicas, p.CurrentReplicas)
	return min(p.MaxScaleUp, span), min(p.MaxScaleDown, span)
}

// canIncrease reports whether the serving count may grow at second t:
// nothing requested before the plan starts can arrive.
func (p Problem) canIncrease(t int) bool { return t >= p.StartupDelay && p.MaxScaleUp > 0 }

// bounds returns the effective serving-count bounds per second. They are
// [MinReplicas, MaxReplicas] once reachable; before that, the bound that
// CurrentReplicas violates moves toward the range as fast as the ramp
// limits allow, so every instance is feasible.
func (p Problem) bounds() (lo, hi []int) {
	T := len(p.Demand)
	lo, hi = make([]int, T), make([]int, T)
	rampUp, rampDown := p.ramps()
	for t := 0; t < T; t++ {
		up := 0
		if steps := t + 1 - p.StartupDelay; steps > 0 {
			up = rampUp * steps
		}
		down := rampDown * (t + 1)
		lo[t] = max(0, min(p.MinReplicas, p.CurrentReplicas+up))
		hi[t] = max(p.MaxReplicas, p.CurrentReplicas-down)
	}
	return lo, hi
}

// stageCost is the per-second cost of serving s replicas at second t,
// without the cost of changing the count.
func (p Problem) stageCost(t, s int) float64 {
	c := p.ReplicaCost * float64(s)
	if short := p.Demand[t] - p.CapacityPerReplica*float64(s); short > 0 {
		c += p.Penalty * short
	}
	if s == 0 && p.Demand[t] > 0 {
		c += p.ExtraPenalty
	}
	return c
}

// Objective evaluates the seed's objective on plan.Serving. Every solver's
// result is scored with it, so objectives of different solvers compare
// exactly.
func Objective(p Problem, plan Plan) float64 {
	total := 0.0
	prev := p.CurrentReplicas
	up := p.upCost()
	for t, s := range plan.Serving {
		if t >= len(p.Demand) {
			break
		}
		if s > prev {
			total += up * float64(s-prev)
		} else {
			total += p.ShutdownCost * float64(prev-s)
		}
		total += p.stageCost(t, s)
		prev = s
	}
	return total
}

// CheckPlan reports the first constraint plan.Serving violates, or nil.
func CheckPlan(p Problem, plan Plan) error {
	if len(plan.Serving) != len(p.Demand) {
		return fmt.Errorf("plan serves %d seconds, problem has %d", len(plan.Serving), len(p.Demand))
	}
	lo, hi := p.bounds()
	prev := p.CurrentReplicas
	for t, s := range plan.Serving {
		switch {
		case s < lo[t] || s > hi[t]:
			return fmt.Errorf("second %d: %d replicas outside [%d, %d]", t, s, lo[t], hi[t])
		case s > prev && !p.canIncrease(t):
			return fmt.Errorf("second %d: increase before the startup delay %d", t, p.StartupDelay)
		case s-prev > p.MaxScaleUp:
			return fmt.Errorf("second %d: scale up by %d exceeds %d", t, s-prev, p.MaxScaleUp)
		case prev-s > p.MaxScaleDown:
			return fmt.Errorf("second %d: scale down by %d exceeds %d", t, prev-s, p.MaxScaleDown)
		}
		prev = s
	}
	return nil
}

// desiredFromServing turns a serving trajectory into the counts to request:
// a replica serving from t+d must be requested at t, so
// x[t] = s[t] + (increases of s in (t, t+d]), clamped to [min, max].
func desiredFromServing(p Problem, serving []int) []int {
	T := len(serving)
	inc := make([]int, T)
	prev := p.CurrentReplicas
	for t, s := range serving {
		if s > prev {
			inc[t] = s - prev
		}
		prev = s
	}
	x := make([]int, T)
	pending := 0 // increases in (t, t+d]
	for t := 1; t <= p.StartupDelay && t < T; t++ {
		pending += inc[t]
	}
	for t := 0; t < T; t++ {
		x[t] = clamp(serving[t]+pending, p.MinReplicas, p.MaxReplicas)
		if p.StartupDelay == 0 {
			continue
		}
		if t+1 < T {
			pending -= inc[t+1]
		}
		if k := t + 1 + p.StartupDelay; k < T {
			pending += inc[k]
		}
	}
	return x
}

func clamp(v, lo, hi int) int {
	return max(lo, min(hi, v))
}
