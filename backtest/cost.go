package backtest

import "github.com/nomadscalerd/nomadscalerd/optimize"

// unmetEpsilon ignores shortfalls that are floating-point noise.
const unmetEpsilon = 1e-9

// Tally is what a replay counts, second by second, to price it.
type Tally struct {
	ReplicaSeconds   int64
	Unmet            float64
	ViolationSeconds int
	// EmptySeconds are seconds with demand but no serving replica.
	EmptySeconds int
	// UpActions and DownActions count the changes of the requested count;
	// UpReplicas and DownReplicas the replicas they added or removed.
	UpActions, DownActions   int
	UpReplicas, DownReplicas int
}

func (t *Tally) add(requested, serving int, demand, capacity float64) {
	t.ReplicaSeconds += int64(requested)
	if short := demand - float64(serving)*capacity; short > unmetEpsilon {
		t.Unmet += short
		t.ViolationSeconds++
	}
	if serving == 0 && demand > unmetEpsilon {
		t.EmptySeconds++
	}
}

// CostModel prices a replay with the planner's objective: replica-seconds,
// unmet requests, scaling changes and seconds with demand but no replica.
type CostModel struct {
	ReplicaCost   float64 // per replica-second
	UnmetPenalty  float64 // per unmet request
	ScaleUpCost   float64 // per scale-up
	ScaleDownCost float64 // per scale-down
	EmptyPenalty  float64 // per second with demand and no serving replica
	// PerReplica charges ScaleUpCost and ScaleDownCost for every replica
	// added or removed rather than once a change.
	PerReplica bool
}

// DefaultCostModel is the planner's objective with its default weights.
// The objective charges a started replica's StartupDelay seconds as part of
// its start cost; the simulator counts them as the replica-seconds they are.
func DefaultCostModel() CostModel {
	return CostModel{
		ReplicaCost:   optimize.DefaultReplicaCost,
		UnmetPenalty:  optimize.DefaultPenalty,
		ScaleUpCost:   optimize.DefaultStartupCost,
		ScaleDownCost: optimize.DefaultShutdownCost,
		EmptyPenalty:  optimize.DefaultExtraPenalty,
		PerReplica:    true,
	}
}

// Price is the cost of a tally.
func (m CostModel) Price(t Tally) float64 {
	ups, downs := t.UpActions, t.DownActions
	if m.PerReplica {
		ups, downs = t.UpReplicas, t.DownReplicas
	}
	return m.ReplicaCost*float64(t.ReplicaSeconds) +
		m.UnmetPenalty*t.Unmet +
		m.ScaleUpCost*float64(ups) +
		m.ScaleDownCost*float64(downs) +
		m.EmptyPenalty*float64(t.EmptySeconds)
}
