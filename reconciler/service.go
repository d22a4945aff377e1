package reconciler

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nomadscalerd/nomadscalerd/optimize"
	"github.com/nomadscalerd/nomadscalerd/store"
)

// SeedPlanner plans the seed's way: cache_size seconds of counts from a
// policy's history; satisfied by *HistoryPlanner.
type SeedPlanner interface {
	Plan(ctx context.Context, p Policy, current int, now time.Time) (optimize.Plan, error)
}

var _ SeedPlanner = (*HistoryPlanner)(nil)

// OptimizeService answers the seed's POST /optimize from a policy's stored
// history, through the same planner the reconciler uses.
type OptimizeService struct {
	Controller *Controller
	Planner    SeedPlanner
	// TestData serves from the bundled sample series instead (the seed's
	// only_test_data).
	TestData bool
	Solver   optimize.Solver
	Now      func() time.Time
	// CacheSize is the daemon's --cache-size (the seed's CACHE_SIZE): the
	// length of a test-data answer to a request without cache_size; 0 means
	// optimize.DefaultCacheSize. A policy's answer uses the policy's
	// cache_size, which defaults to it.
	CacheSize int
}

// Optimize implements api.Optimizer.
func (s *OptimizeService) Optimize(ctx context.Context, r optimize.Request) (optimize.Response, error) {
	now := time.Now()
	if s.Now != nil {
		now = s.Now()
	}
	if s.TestData {
		if r.CacheSizeAbsent && s.CacheSize > 0 {
			r.CacheSize = s.CacheSize
		}
		p := r.Apply(optimize.DefaultProblem())
		pl := optimize.NewPlanner(optimize.FixedForecaster(optimize.SampleRequests()), s.Solver, nil, nil)
		plan, err := pl.Plan(ctx, optimize.PlanRequest{Problem: p, Horizon: r.CacheSize, Start: now})
		if err != nil {
			return optimize.Response{}, err
		}
		return optimize.Response{Desired: clampAll(plan.Desired, r.MinReplicas, r.MaxReplicas)}, nil
	}
	p, err := s.policyFor(r.Check)
	if err != nil {
		return optimize.Response{}, err
	}
	if r.CacheSizeAbsent && p.Target.CacheSize > 0 {
		// The seed's cache_size is optional: without it the answer is as
		// long as the policy's cache_size (the daemon's CACHE_SIZE unless
		// the policy sets its own), not the built-in 10.
		r.CacheSize = p.Target.CacheSize
	}
	p.Min, p.Max = r.MinReplicas, r.MaxReplicas
	p.Target.CacheSize = r.CacheSize
	p.Target.ForecastHorizon = max(p.Target.ForecastHorizon, r.CacheSize)
	plan, err := s.Planner.Plan(ctx, p, r.CurrentReplicas, now)
	// A policy removed while it was planned (a fit takes seconds) may have
	// been forgotten before the plan built its forecaster or set its
	// gauges, which nothing would drop again: a planner that keeps such
	// things per policy forgets them once the policy is no longer active.
	// The controller unschedules a policy before the pool forgets it, so
	// one still active here is forgotten after what this plan kept.
	if !s.Controller.Active(p.Key) {
		if f, ok := s.Planner.(interface{ Forget(string) }); ok {
			f.Forget(p.Key)
		}
	}
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, optimize.ErrNoHistory) {
		// The policy is active and records its checks, but has no sample
		// yet (it is new, the database was lost, or its source has had
		// nothing to measure): its history is too short, a 503 to ask
		// again, not the 404 of a check no policy records.
		err = fmt.Errorf("%w: %s has recorded nothing yet: %v", optimize.ErrShortHistory, p.Key, err)
	}
	if err != nil {
		return optimize.Response{}, err
	}
	out := clampAll(plan.Desired, r.MinReplicas, r.MaxReplicas)
	for len(out) < r.CacheSize && len(out) > 0 {
		out = append(out, out[len(out)-1])
	}
	return optimize.Response{Desired: out[:r.CacheSize]}, nil
}

// policyFor finds the one active policy a request's check names: the
// policy's key (namespace/job/group, what the nomadscaler plugin sends),
// else its job, else (without metric_app_name) its group. The seed's body
// names the group too (check.group), which picks among a job's scaled
// groups; a name that still fits several policies is refused rather than
// answered with the plan of whichever sorts first, another group's.
func (s *OptimizeService) policyFor(c optimize.Check) (Policy, error) {
	name := c.MetricAppName
	if name == "" {
		name = c.Group
	}
	if name == "" {
		// Without a name no policy's history answers: a client's mistake,
		// not a series that was looked for and not found.
		return Policy{}, fmt.Errorf("%w: check.metric_app_name or check.group must name the job, group or policy whose history to plan from", optimize.ErrInvalidRequest)
	}
	var found []Policy
	for _, p := range s.Controller.Policies() {
		if p.Key == name {
			return p, nil
		}
		if p.Job == name || (c.MetricAppName == "" && p.Group == name) {
			found = append(found, p)
		}
	}
	if len(found) > 1 && c.MetricAppName != "" && c.Group != "" {
		var inGroup []Policy
		for _, p := range found {
			if p.Group == c.Group {
				inGroup = append(inGroup, p)
			}
		}
		if len(inGroup) > 0 {
			found = inGroup
		}
	}
	switch len(found) {
	case 0:
		return Policy{}, fmt.Errorf("%w for %q: no active policy records it", optimize.ErrNoHistory, name)
	case 1:
		return found[0], nil
	}
	keys := make([]string, len(found))
	for i, p := range found {
		keys[i] = p.Key
	}
	return Policy{}, fmt.Errorf("%w: %q names %d policies (%s): send namespace/job/group as check.metric_app_name", optimize.ErrInvalidRequest, name, len(found), strings.Join(keys, ", "))
}

func clampAll(xs []int, lo, hi int) []int {
	out := make([]int, len(xs))
	for i, x := range xs {
		out[i] = clamp(x, lo, hi)
	}
	return out
}
