package optimize

import (
	"context"
	"errors"
	"fmt"
	"math"
)

// HiGHSSolver solves a Problem as the seed's MILP with SolveMIP.
type HiGHSSolver struct {
	// Options bound each solve; the zero value asks for a proven optimum
	// without a time limit.
	Options MIPOptions
}

// Columns per second in the MILP, in this order.
const (
	colServing = iota // s[t]: serving count, integer
	colUp             // inc[t]: increase of s at t, integer
	colDown           // dec[t]: decrease of s at t, integer
	colSLA            // sla[t]: uncovered demand, continuous
	colNoRep          // no_rep[t]: 1 when demand > 0 and s[t] = 0, binary
	colsPerSecond
)

// buildMIP writes p as the seed's MILP on the serving count:
//
//	min sum_t rc*s + penalty*sla + (startup + d*rc)*inc + shutdown*dec + extra*no_rep
//	s[t] - s[t-1] - inc[t] + dec[t] = 0            (s[-1] = current)
//	cap*s[t] + sla[t] >= demand[t]
//	dec[t] - s[t-1] <= 0                            (dec[0] <= current as a bound)
//	s[t] + no_rep[t] >= 1           when demand[t] > 0 (no_rep fixed to 0 otherwise)
//	0 <= inc[t] <= max_scale_up (0 for t < d), 0 <= dec[t] <= max_scale_down
//	lo[t] <= s[t] <= hi[t], sla >= 0, no_rep in {0,1}
//
// s + no_rep >= 1 linearises "no_rep = 1 when no replica serves under
// load": s is a non-negative integer, so s = 0 forces no_rep = 1 and s >= 1
// leaves it free, and its non-negative cost drives it to 0.
func buildMIP(p Problem) MIP {
	T := len(p.Demand)
	n := T * colsPerSecond
	m := MIP{
		Cost:     make([]float64, n),
		ColLower: make([]float64, n),
		ColUpper: make([]float64, n),
		Integer:  make([]bool, n),
		Rows:     make([]Row, 0, 4*T),
	}
	lo, hi := p.bounds()
	col := func(t, k int) int { return t*colsPerSecond + k }
	for t := 0; t < T; t++ {
		s, inc, dec, sla, norep := col(t, colServing), col(t, colUp), col(t, colDown), col(t, colSLA), col(t, colNoRep)
		m.Cost[s], m.Cost[inc], m.Cost[dec] = p.ReplicaCost, p.upCost(), p.ShutdownCost
		m.Cost[sla], m.Cost[norep] = p.Penalty, p.ExtraPenalty
		m.ColLower[s], m.ColUpper[s] = float64(lo[t]), float64(hi[t])
		if p.canIncrease(t) {
			m.ColUpper[inc] = float64(p.MaxScaleUp)
		}
		m.ColUpper[dec] = float64(p.MaxScaleDown)
		m.ColUpper[sla] = math.Inf(1)
		m.Integer[s], m.Integer[inc], m.Integer[dec], m.Integer[norep] = true, true, true, true

		balance := Row{Index: []int{s, inc, dec}, Value: []float64{1, -1, 1}}
		if t == 0 {
			balance.Lower, balance.Upper = float64(p.CurrentReplicas), float64(p.CurrentReplicas)
			m.ColUpper[dec] = math.Min(m.ColUpper[dec], float64(p.CurrentReplicas))
		} else {
			prev := col(t-1, colServing)
			balance.Index, balance.Value = append(balance.Index, prev), append(balance.Value, -1)
			m.Rows = append(m.Rows, Row{Lower: math.Inf(-1), Upper: 0, Index: []int{dec, prev}, Value: []float64{1, -1}})
		}
		m.Rows = append(m.Rows, balance)
		m.Rows = append(m.Rows, Row{Lower: p.Demand[t], Upper: math.Inf(1), Index: []int{s, sla}, Value: []float64{p.CapacityPerReplica, 1}})
		if p.Demand[t] > 0 {
			m.ColUpper[norep] = 1
			m.Rows = append(m.Rows, Row{Lower: 1, Upper: math.Inf(1), Index: []int{s, norep}, Value: []float64{1, 1}})
		}
	}
	return m
}

// Solve implements Solver. When the time limit stops HiGHS with a feasible
// point, Solve returns that plan (Solver "highs_incumbent") together with
// an error wrapping ErrTimeLimit; without one, an empty plan and the error.
func (h HiGHSSolver) Solve(ctx context.Context, p Problem) (Plan, error) {
	if err := p.Validate(); err != nil {
		return Plan{}, fmt.Errorf("highs: %w", err)
	}
	sol, err := SolveMIP(ctx, buildMIP(p), h.Options)
	name := "highs"
	switch {
	case errors.Is(err, ErrTimeLimit) && sol.X != nil:
		name = "highs_incumbent"
	case err != nil:
		return Plan{}, fmt.Errorf("highs: %w", err)
	}
	serving := make([]int, len(p.Demand))
	for t := range serving {
		serving[t] = int(sol.X[t*colsPerSecond+colServing])
	}
	plan := Plan{
		Serving:     serving,
		Desired:     desiredFromServing(p, serving),
		MinReplicas: p.MinReplicas,
		MaxReplicas: p.MaxReplicas,
		Solver:      name,
	}
	plan.Objective = Objective(p, plan)
	if err != nil {
		return plan, fmt.Errorf("highs: %w", err)
	}
	return plan, nil
}

// InterpolationSolver is the seed's last-resort plan: a straight line from
// CurrentReplicas to ceil(max demand / capacity), clamped to
// [MinReplicas, MaxReplicas], reached at the end of the horizon. It ignores
// ramp limits and the startup delay and never fails on a valid Problem.
type InterpolationSolver struct{}

// Solve implements Solver.
func (InterpolationSolver) Solve(_ context.Context, p Problem) (Plan, error) {
	if err := p.Validate(); err != nil {
		return Plan{}, fmt.Errorf("interpolation: %w", err)
	}
	peak := 0.0
	for _, d := range p.Demand {
		peak = math.Max(peak, d)
	}
	// Compared as a float first: a count past int's range would wrap.
	target := p.MaxReplicas
	if need := math.Ceil(peak / p.CapacityPerReplica); need < float64(p.MaxReplicas) {
		target = clamp(int(need), p.MinReplicas, p.MaxReplicas)
	}
	T := len(p.Demand)
	x := make([]int, T)
	for t := range x {
		v := float64(p.CurrentReplicas) + float64(target-p.CurrentReplicas)*float64(t+1)/float64(T)
		x[t] = clamp(int(math.Round(v)), p.MinReplicas, p.MaxReplicas)
	}
	plan := Plan{Serving: x, Desired: x, MinReplicas: p.MinReplicas, MaxReplicas: p.MaxReplicas, Solver: "interpolation"}
	plan.Objective = Objective(p, plan)
	return plan, nil
}
