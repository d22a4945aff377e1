package optimize

import (
	"context"
	"errors"
	"log/slog"
)

// FallbackSolver runs Primary and, when it fails, falls back in the seed's
// order: the incumbent Primary returned with a time-limit error, then the
// exact Secondary, then the straight-line interpolation. Every fallback is
// counted in optimizer_fallbacks_total{reason} and logged.
type FallbackSolver struct {
	Primary   Solver
	Secondary Solver
	Metrics   *Metrics
	Log       *slog.Logger
}

// NewFallbackSolver returns the production chain: HiGHS with options o,
// then the DP, then interpolation.
func NewFallbackSolver(o MIPOptions, m *Metrics, log *slog.Logger) *FallbackSolver {
	return &FallbackSolver{Primary: HiGHSSolver{Options: o}, Secondary: DPSolver{}, Metrics: m, Log: log}
}

// Solve implements Solver. It fails only for an invalid Problem.
func (f *FallbackSolver) Solve(ctx context.Context, p Problem) (Plan, error) {
	if err := p.Validate(); err != nil {
		return Plan{}, err
	}
	log := f.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	plan, err := f.Primary.Solve(ctx, p)
	if err == nil {
		return plan, nil
	}
	if errors.Is(err, ErrTimeLimit) && len(plan.Serving) == len(p.Demand) {
		f.Metrics.fallback(FallbackIncumbent)
		log.Warn("optimizer fell back", "reason", FallbackIncumbent, "err", err, "objective", plan.Objective)
		return plan, nil
	}
	if f.Secondary != nil {
		f.Metrics.fallback(FallbackDP)
		log.Warn("optimizer fell back", "reason", FallbackDP, "err", err)
		plan, err2 := f.Secondary.Solve(context.WithoutCancel(ctx), p)
		if err2 == nil {
			return plan, nil
		}
		err = errors.Join(err, err2)
	}
	f.Metrics.fallback(FallbackInterpolation)
	log.Warn("optimizer fell back", "reason", FallbackInterpolation, "err", err)
	return InterpolationSolver{}.Solve(ctx, p)
}
