package optimize

import (
	"context"
	"fmt"
	"math"
)

// DPSolver solves a Problem exactly as a shortest path over (second,
// serving count).
//
// Only counts reachable from CurrentReplicas within the ramp limits and
// inside the effective bounds are states, and the change cost is linear in
// the step size, so each layer is relaxed with two sliding-window minima
// (one for increases, one for decreases) in O(width) instead of
// O(width*(MaxScaleUp+MaxScaleDown)). Total time is O(T*W) for a horizon of
// T seconds and W <= MaxReplicas-MinReplicas+1 counts per second.
type DPSolver struct{}

// Solve implements Solver.
func (DPSolver) Solve(ctx context.Context, p Problem) (Plan, error) {
	if err := p.Validate(); err != nil {
		return Plan{}, fmt.Errorf("dp: %w", err)
	}
	serving, err := solveDP(ctx, p)
	if err != nil {
		return Plan{}, err
	}
	plan := Plan{
		Serving:     serving,
		Desired:     desiredFromServing(p, serving),
		MinReplicas: p.MinReplicas,
		MaxReplicas: p.MaxReplicas,
		Solver:      "dp",
	}
	plan.Objective = Objective(p, plan)
	return plan, nil
}

// dpLayer is one second's states: counts lo..lo+len(cost)-1.
type dpLayer struct {
	lo   int
	pred []int32 // predecessor count per state
}

func solveDP(ctx context.Context, p Problem) ([]int, error) {
	T := len(p.Demand)
	blo, bhi := p.bounds()
	a, b := p.upCost(), p.ShutdownCost

	layers := make([]dpLayer, T)
	prevLo, prevCost := p.CurrentReplicas, []float64{0}
	var cost []float64
	// Deques of candidate predecessor offsets, reused across layers.
	var upQ, downQ []int
	for t := 0; t < T; t++ {
		if t%256 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("dp: %w", err)
			}
		}
		up := 0
		if p.canIncrease(t) {
			up = p.MaxScaleUp
		}
		prevHi := prevLo + len(prevCost) - 1
		lo := max(blo[t], prevLo-p.MaxScaleDown)
		hi := min(bhi[t], prevHi+up)
		if lo > hi {
			// Cannot happen for a valid Problem: bounds() only tightens as
			// fast as the ramp allows.
			return nil, fmt.Errorf("dp: no reachable count at second %d", t)
		}
		w := hi - lo + 1
		cost = resize(cost, w)
		pred := make([]int32, w)

		// Increases: best over p in [s-up, s] of prevCost(p) + a*(s-p)
		// = a*s + min(prevCost(p) - a*p). Decreases: best over p in
		// [s, s+down] of prevCost(p) + b*(p-s) = -b*s + min(prevCost(p) + b*p).
		upQ, downQ = upQ[:0], downQ[:0]
		upHead, downHead := 0, 0
		nextUp := max(prevLo, lo-up) // next predecessor to push into upQ
		nextDown := max(prevLo, lo)  // next predecessor to push into downQ
		upKey := func(q int) float64 { return prevCost[q-prevLo] - a*float64(q) }
		downKey := func(q int) float64 { return prevCost[q-prevLo] + b*float64(q) }
		for s := lo; s <= hi; s++ {
			for ; nextUp <= min(s, prevHi); nextUp++ {
				k := upKey(nextUp)
				for len(upQ) > upHead && upKey(upQ[len(upQ)-1]) >= k {
					upQ = upQ[:len(upQ)-1]
				}
				upQ = append(upQ, nextUp)
			}
			for upHead < len(upQ) && upQ[upHead] < s-up {
				upHead++
			}
			for ; nextDown <= min(s+p.MaxScaleDown, prevHi); nextDown++ {
				k := downKey(nextDown)
				for len(downQ) > downHead && downKey(downQ[len(downQ)-1]) > k {
					downQ = downQ[:len(downQ)-1]
				}
				downQ = append(downQ, nextDown)
			}
			for downHead < len(downQ) && downQ[downHead] < s {
				downHead++
			}
			best, from := math.Inf(1), -1
			if upHead < len(upQ) {
				q := upQ[upHead]
				best, from = upKey(q)+a*float64(s), q
			}
			if downHead < len(downQ) {
				q := downQ[downHead]
				if c := downKey(q) - b*float64(s); c < best {
					best, from = c, q
				}
			}
			if from < 0 {
				return nil, fmt.Errorf("dp: count %d unreachable at second %d", s, t)
			}
			cost[s-lo] = best + p.stageCost(t, s)
			pred[s-lo] = int32(from)
		}
		layers[t] = dpLayer{lo: lo, pred: pred}
		prevLo = lo
		prevCost, cost = cost, prevCost
	}

	bestS, bestC := prevLo, math.Inf(1)
	for i, c := range prevCost {
		if c < bestC {
			bestS, bestC = prevLo+i, c
		}
	}
	serving := make([]int, T)
	s := bestS
	for t := T - 1; t >= 0; t-- {
		serving[t] = s
		s = int(layers[t].pred[s-layers[t].lo])
	}
	return serving, nil
}

func resize(b []float64, n int) []float64 {
	if cap(b) < n {
		return make([]float64, n)
	}
	return b[:n]
}
