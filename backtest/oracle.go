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
// the whole replay, solved once at second 0 and followed: the lowest cost
// any strategy can reach under the simulator's cost model (which it prices
// exactly, as long as Cost charges scalings per replica).
type Oracle struct {
	cfg     Config
	demand  []float64
	solver  optimize.Solver
	desired []int
}

// NewOracle plans for demand, the whole replay, with solver (the exact
// optimize.DPSolver when nil).
func NewOracle(cfg Config, demand []float64, solver optimize.Solver) *Oracle {
	if solver == nil {
		solver = optimize.DPSolver{}
	}
	return &Oracle{cfg: cfg, demand: demand, solver: solver}
}

// Name implements Strategy.
func (*Oracle) Name() string { return "oracle" }

// Decide implements Strategy.
func (o *Oracle) Decide(ctx context.Context, obs Observation) (Decision, error) {
	if o.desired == nil {
		plan, err := o.solver.Solve(ctx, problem(o.cfg, o.demand, obs.ServingNow))
		if err != nil {
			return Decision{}, fmt.Errorf("oracle plan: %w", err)
		}
		if len(plan.Desired) != len(o.demand) {
			return Decision{}, fmt.Errorf("oracle plan covers %d of %d seconds", len(plan.Desired), len(o.demand))
		}
		o.desired = plan.Desired
		return Decision{Desired: o.desired[obs.Now], Evaluated: true}, nil
	}
	return Decision{Desired: o.desired[obs.Now]}, nil
}
