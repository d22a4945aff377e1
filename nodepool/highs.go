package nodepool

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"time"

	"github.com/nomadscalerd/nomadscalerd/optimize"
)

// MIPChooser solves the capacity problem as an integer program with HiGHS:
// one integer column per instance type for on-demand nodes and one for spot
// nodes, minimising price subject to covering every dimension, per-type
// maxima, the pool's node cap and the spot share. When HiGHS fails, times
// out without an incumbent or finds the need uncoverable, Fallback answers.
type MIPChooser struct {
	TimeLimit time.Duration
	Fallback  Chooser
	Logger    *slog.Logger
}

// NewMIPChooser returns a MIPChooser with a one-second limit and the greedy
// fallback.
func NewMIPChooser(logger *slog.Logger) MIPChooser {
	return MIPChooser{TimeLimit: time.Second, Fallback: GreedyChooser{}, Logger: logger}
}

// Choose implements Chooser.
func (c MIPChooser) Choose(ctx context.Context, p CapacityProblem) (Choice, error) {
	fallback := func(why string, err error) (Choice, error) {
		if c.Logger != nil {
			c.Logger.Warn("capacity mip fell back to greedy", "why", why, "err", err)
		}
		fb := c.Fallback
		if fb == nil {
			fb = GreedyChooser{}
		}
		return fb.Choose(ctx, p)
	}
	if covered(p.Need) {
		return Choice{Covered: true, Method: "highs"}, nil
	}
	m := p.mip()
	sol, err := optimize.SolveMIP(ctx, m, optimize.MIPOptions{TimeLimit: c.TimeLimit})
	switch {
	case errors.Is(err, optimize.ErrTimeLimit) && sol.X != nil:
		// An incumbent is a feasible answer; good enough to launch.
	case errors.Is(err, optimize.ErrInfeasible):
		return fallback("need cannot be covered within the limits", err)
	case err != nil:
		return fallback("solver failed", err)
	}
	counts := map[option]int{}
	for t := range p.Types {
		counts[option{t, false}] = int(math.Round(sol.X[2*t]))
		counts[option{t, true}] = int(math.Round(sol.X[2*t+1]))
	}
	var chosen []option
	for t := range p.Types {
		for _, s := range []bool{false, true} {
			for range counts[option{t, s}] {
				chosen = append(chosen, option{t, s})
			}
		}
	}
	return Choice{Launches: p.launches(chosen), Covered: true, Method: "highs"}, nil
}

// mip builds the integer program; column 2t is on-demand nodes of type t,
// column 2t+1 spot nodes of type t.
func (p CapacityProblem) mip() optimize.MIP {
	n := 2 * len(p.Types)
	m := optimize.MIP{
		Cost: make([]float64, n), ColLower: make([]float64, n), ColUpper: make([]float64, n), Integer: make([]bool, n),
	}
	maxPrice := 1.0
	for _, ty := range p.Types {
		maxPrice = max(maxPrice, ty.Price, ty.SpotPrice)
	}
	// A tiny per-node cost keeps free instance types from being launched
	// for nothing and prefers fewer nodes between equal prices.
	eps := 1e-7 * maxPrice
	for t, ty := range p.Types {
		m.Cost[2*t], m.Cost[2*t+1] = ty.Price+eps, ty.SpotPrice+eps
		m.Integer[2*t], m.Integer[2*t+1] = true, true
		m.ColUpper[2*t], m.ColUpper[2*t+1] = math.Inf(1), math.Inf(1)
		if ty.SpotPrice <= 0 || p.SpotMaxShare <= 0 {
			m.ColUpper[2*t+1] = 0
		}
		if ty.Available >= 0 {
			m.ColUpper[2*t] = min(m.ColUpper[2*t], float64(ty.Available))
			m.ColUpper[2*t+1] = min(m.ColUpper[2*t+1], float64(ty.Available))
			m.Rows = append(m.Rows, optimize.Row{Lower: math.Inf(-1), Upper: float64(ty.Available),
				Index: []int{2 * t, 2*t + 1}, Value: []float64{1, 1}})
		}
	}
	for d, need := range p.Need {
		if need <= 0 {
			continue
		}
		r := optimize.Row{Lower: float64(need), Upper: math.Inf(1)}
		for t, ty := range p.Types {
			r.Index = append(r.Index, 2*t, 2*t+1)
			r.Value = append(r.Value, float64(ty.Provides[d]), float64(ty.Provides[d]))
		}
		m.Rows = append(m.Rows, r)
	}
	if p.MaxNodes >= 0 {
		r := optimize.Row{Lower: math.Inf(-1), Upper: float64(p.MaxNodes)}
		for j := range n {
			r.Index, r.Value = append(r.Index, j), append(r.Value, 1)
		}
		m.Rows = append(m.Rows, r)
	}
	if p.SpotMaxShare > 0 && p.SpotMaxShare < 1 {
		// PriorSpot + spot <= share * (PriorNodes + all)
		r := optimize.Row{Lower: math.Inf(-1), Upper: p.SpotMaxShare*float64(p.PriorNodes) - float64(p.PriorSpot) + 1e-9}
		for t := range p.Types {
			r.Index = append(r.Index, 2*t, 2*t+1)
			r.Value = append(r.Value, -p.SpotMaxShare, 1-p.SpotMaxShare)
		}
		m.Rows = append(m.Rows, r)
	}
	return m
}
