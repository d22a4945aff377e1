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

// maxDPStates bounds the DP's memory (4 bytes per state): a 3,600 s plan
// over 1,000 counts is 3.6 M states.
const maxDPStates = 50_000_000

func solveDP(ctx context.Context, p Problem) ([]int, error) {
	T := len(p.Demand)
	blo, bhi := p.bounds()
	a, b := p.upCost(), p.ShutdownCost
	rampUp, rampDown := p.ramps()

	// Layer t holds the reachable counts layerLo[t]..layerHi[t], with
	// predecessors in pred[layerOff[t]:layerOff[t+1]]. Every count in the
	// range is reachable: the previous layer is an interval and each step
	// may move by any amount in [-MaxScaleDown, up].
	layerLo, layerHi := make([]int, T), make([]int, T)
	layerOff := make([]int, T+1)
	lo, hi := p.CurrentReplicas, p.CurrentReplicas
	for t := 0; t < T; t++ {
		up := 0
		if p.canIncrease(t) {
			up = rampUp
		}
		lo, hi = max(blo[t], lo-rampDown), min(bhi[t], hi+up)
		if lo > hi {
			// Cannot happen for a valid Problem: bounds() only tightens as
			// fast as the ramp allows.
			return nil, fmt.Errorf("dp: no reachable count at second %d", t)
		}
		layerLo[t], layerHi[t] = lo, hi
		layerOff[t+1] = layerOff[t] + hi - lo + 1
	}
	if layerOff[T] > maxDPStates {
		return nil, fmt.Errorf("dp: %d states exceed the limit of %d", layerOff[T], maxDPStates)
	}
	pred := make([]int32, layerOff[T])
	maxW := 1
	for t := 0; t < T; t++ {
		maxW = max(maxW, layerHi[t]-layerLo[t]+1)
	}
	// Buffers sized for the widest layer, reused across layers.
	prevCost, cost := make([]float64, 1, maxW), make([]float64, 0, maxW)
	upKey, downKey := make([]float64, 0, maxW), make([]float64, 0, maxW)
	upQ, downQ := make([]int, 0, maxW), make([]int, 0, maxW) // deques of predecessor indices
	prevLo := p.CurrentReplicas
	for t := 0; t < T; t++ {
		if t%256 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("dp: %w", err)
			}
		}
		up := 0
		if p.canIncrease(t) {
			up = rampUp
		}
		prevHi := prevLo + len(prevCost) - 1
		lo, hi := layerLo[t], layerHi[t]
		cost = resize(cost, hi-lo+1)
		lp := pred[layerOff[t]:layerOff[t+1]]

		// Increases: best over q in [s-up, s] of prevCost(q) + a*(s-q)
		// = a*s + min(prevCost(q) - a*q). Decreases: best over q in
		// [s, s+down] of prevCost(q) + b*(q-s) = -b*s + min(prevCost(q) + b*q).
		upKey, downKey = resize(upKey, len(prevCost)), resize(downKey, len(prevCost))
		for i, c := range prevCost {
			q := float64(prevLo + i)
			upKey[i], downKey[i] = c-a*q, c+b*q
		}
		upQ, downQ = upQ[:0], downQ[:0]
		upHead, downHead := 0, 0
		nextUp := max(prevLo, lo-up) - prevLo // next predecessor index for upQ
		nextDown := max(prevLo, lo) - prevLo  // next predecessor index for downQ
		lastPrev := prevHi - prevLo
		for s := lo; s <= hi; s++ {
			rel := s - prevLo // s as an index into the previous layer
			for ; nextUp <= min(rel, lastPrev); nextUp++ {
				k := upKey[nextUp]
				for len(upQ) > upHead && upKey[upQ[len(upQ)-1]] >= k {
					upQ = upQ[:len(upQ)-1]
				}
				upQ = append(upQ, nextUp)
			}
			for upHead < len(upQ) && upQ[upHead] < rel-up {
				upHead++
			}
			for ; nextDown <= min(rel+rampDown, lastPrev); nextDown++ {
				k := downKey[nextDown]
				for len(downQ) > downHead && downKey[downQ[len(downQ)-1]] > k {
					downQ = downQ[:len(downQ)-1]
				}
				downQ = append(downQ, nextDown)
			}
			for downHead < len(downQ) && downQ[downHead] < rel {
				downHead++
			}
			best, from := math.Inf(1), -1
			if upHead < len(upQ) {
				q := upQ[upHead]
				best, from = upKey[q]+a*float64(s), q
			}
			if downHead < len(downQ) {
				q := downQ[downHead]
				if c := downKey[q] - b*float64(s); c < best {
					best, from = c, q
				}
			}
			if from < 0 {
				return nil, fmt.Errorf("dp: count %d unreachable at second %d", s, t)
			}
			cost[s-lo] = best + p.stageCost(t, s)
			lp[s-lo] = int32(prevLo + from)
		}
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
		s = int(pred[layerOff[t]+s-layerLo[t]])
	}
	return serving, nil
}

func resize(b []float64, n int) []float64 {
	if cap(b) < n {
		return make([]float64, n)
	}
	return b[:n]
}
