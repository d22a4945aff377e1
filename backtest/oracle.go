package backtest

import (
	"context"
	"fmt"

	"github.com/nomadscalerd/nomadscalerd/optimize"
)

// problem is the planner's instance for demand under cfg, starting from
// current serving replicas. The simulated service has no ramp limit, so
// neither does the plan: a step of up to Max replicas a second is allowed.
func problem(cfg Config, demand []float64, current int) optimize.Problem {
	p := optimize.DefaultProblem()
	p.Demand = demand
	p.CapacityPerReplica = cfg.Capacity
	p.ReplicaCost = cfg.Cost.ReplicaCost
	p.Penalty = cfg.Cost.UnmetPenalty
	p.StartupCost = cfg.Cost.ScaleUpCost
	p.ShutdownCost = cfg.Cost.ScaleDownCost
	p.ExtraPenalty = cfg.Cost.EmptyPenalty
	p.MaxScaleUp, p.MaxScaleDown = cfg.Max, cfg.Max
	p.MinReplicas, p.MaxReplicas = cfg.Min, cfg.Max
	p.CurrentReplicas = current
	p.StartupDelay = cfg.StartupDelay
	return p
}

// Oracle is the optimizer's exact dynamic program given the true demand of
// the whole replay, solved at second 0 and followed: the lowest cost any
// strategy can reach under the simulator's cost model (which prices the
// plan exactly, as long as Cost charges scalings per replica).
//
// The dynamic program holds a bounded number of states (seconds times
// replica counts), so a replay longer than StateBudget allows is planned in
// segments, each solved with Lookahead seconds (an hour) of true demand beyond it and cut at a
// second from which the plan does not scale up for a startup delay (so no
// replica is in flight across the cut). Segments make the plan very nearly,
// not provably, optimal.
type Oracle struct {
	cfg     Config
	demand  []float64
	solver  optimize.Solver
	desired []int
	// StateBudget caps the states of one solve; Lookahead is the seconds
	// of true demand a segment is solved with beyond its end.
	StateBudget, Lookahead int
}

// NewOracle plans for demand, the whole replay, with solver (the exact
// optimize.DPSolver when nil).
func NewOracle(cfg Config, demand []float64, solver optimize.Solver) *Oracle {
	if solver == nil {
		solver = optimize.DPSolver{}
	}
	return &Oracle{cfg: cfg, demand: demand, solver: solver, StateBudget: 40_000_000, Lookahead: 3600}
}

// Name implements Strategy.
func (*Oracle) Name() string { return "oracle" }

// Decide implements Strategy.
func (o *Oracle) Decide(ctx context.Context, obs Observation) (Decision, error) {
	if o.desired == nil {
		desired, err := o.plan(ctx, obs.ServingNow)
		if err != nil {
			return Decision{}, fmt.Errorf("oracle plan: %w", err)
		}
		o.desired = desired
		return Decision{Desired: o.desired[obs.Now], Evaluated: true}, nil
	}
	return Decision{Desired: o.desired[obs.Now]}, nil
}

func (o *Oracle) plan(ctx context.Context, current int) ([]int, error) {
	T, d := len(o.demand), o.cfg.StartupDelay
	width := o.cfg.Max - o.cfg.Min + 1
	segment := max(o.StateBudget/width-o.Lookahead, o.Lookahead, 2*d+1)
	desired := make([]int, 0, T)
	for from := 0; from < T; {
		end := min(T, from+segment+o.Lookahead)
		plan, err := o.solver.Solve(ctx, problem(o.cfg, o.demand[from:end], current))
		if err != nil {
			return nil, err
		}
		if len(plan.Desired) != end-from || len(plan.Serving) != end-from {
			return nil, fmt.Errorf("plan covers %d of %d seconds", len(plan.Desired), end-from)
		}
		if end == T {
			return append(desired, plan.Desired...), nil
		}
		cut := flatFrom(plan.Serving, segment, d)
		desired = append(desired, plan.Desired[:cut]...)
		current = plan.Serving[cut-1]
		from += cut
	}
	return desired, nil
}

// flatFrom is the first second at or after from such that serving does not
// rise over the following d+1 seconds, or from when there is none.
func flatFrom(serving []int, from, d int) int {
	run := 0 // seconds without a rise ending at t
	for t := from; t < len(serving); t++ {
		if serving[t] > serving[t-1] {
			run = 0
			continue
		}
		run++
		if run > d {
			return t - d
		}
	}
	return from
}
