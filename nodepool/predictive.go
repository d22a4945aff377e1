package nodepool

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"
)

// PredictiveConfig is the pool's `predictive { lead_time = "3m" }` block.
type PredictiveConfig struct {
	LeadTime string `hcl:"lead_time,optional"`
}

// DefaultLeadTime is how far ahead a predictive pool reads the plans when
// lead_time is unset: about what a cloud node takes to boot and join.
const DefaultLeadTime = "3m"

// PlannedGroup is a job group's plan as a pool sees it.
type PlannedGroup struct {
	Namespace, Job, Group string
	// Current is the group's count now; Peak the plan's highest count
	// within the pool's lead time.
	Current, Peak int
	// Resources are what one replica is allocated.
	Resources Resources
}

// PlannedAllocations is what the plans will add within the lead time: per
// group, its peak above its current count, as queued work of the group's
// size. Groups whose plans do not rise add nothing.
func PlannedAllocations(gs []PlannedGroup) []QueuedGroup {
	var out []QueuedGroup
	for _, g := range gs {
		if n := g.Peak - g.Current; n > 0 && (g.Resources.CPUMHz > 0 || g.Resources.MemoryMiB > 0) {
			out = append(out, QueuedGroup{Job: g.Job, Group: g.Group, Count: n, Resources: g.Resources})
		}
	}
	slices.SortFunc(out, func(a, b QueuedGroup) int { return cmp.Or(cmp.Compare(a.Job, b.Job), cmp.Compare(a.Group, b.Group)) })
	return out
}

// FitPlanned packs planned allocations first-fit-decreasing into the free
// capacity of nodes (as Nomad's bin-packing scheduler would place them)
// and returns what does not fit, grouped as it came, and the free
// capacity left on each node.
func FitPlanned(free []Resources, planned []QueuedGroup) (left []QueuedGroup, rest []Resources) {
	rest = slices.Clone(free)
	type one struct {
		q   int
		res Resources
	}
	var items []one
	for qi, q := range planned {
		for range max(q.Count, 0) {
			items = append(items, one{qi, q.Resources})
		}
	}
	slices.SortStableFunc(items, func(a, b one) int {
		return cmp.Or(cmp.Compare(b.res.CPUMHz, a.res.CPUMHz), cmp.Compare(b.res.MemoryMiB, a.res.MemoryMiB))
	})
	unplaced := make([]int, len(planned))
	for _, it := range items {
		placed := false
		for i := range rest {
			if it.res.FitsIn(rest[i]) {
				rest[i] = rest[i].Sub(it.res)
				placed = true
				break
			}
		}
		if !placed {
			unplaced[it.q]++
		}
	}
	for qi, n := range unplaced {
		if n > 0 {
			q := planned[qi]
			q.Count = n
			left = append(left, q)
		}
	}
	return left, rest
}

// JobReader reads a job's definition (its node pool, datacenters and task
// resources).
type JobReader interface {
	JobState(ctx context.Context, namespace, id string) (*nomadapi.Job, *nomadapi.JobSummary, error)
}

// PeakPlans is a PlanSource over the groups' planned peaks (the
// reconciler's, without resources): it reads each rising group's job to
// know whether the pool may host it and what one replica is allocated,
// caching the job for jobTTL so a pool interval costs no request per
// policy.
type PeakPlans struct {
	peaks func(from, to time.Time) []PlannedGroup
	jobs  JobReader
	now   func() time.Time

	mu    sync.Mutex
	cache map[string]cachedJob
}

type cachedJob struct {
	job *nomadapi.Job
	at  time.Time
}

const jobTTL = time.Minute

var _ PlanSource = (*PeakPlans)(nil)

// NewPeakPlans builds the source; now is the clock the job cache ages by.
func NewPeakPlans(peaks func(from, to time.Time) []PlannedGroup, jobs JobReader, now func() time.Time) *PeakPlans {
	return &PeakPlans{peaks: peaks, jobs: jobs, now: now, cache: map[string]cachedJob{}}
}

// PlannedGroups implements PlanSource. Only groups whose plans rise are
// read: the others add nothing to a pool.
func (s *PeakPlans) PlannedGroups(ctx context.Context, sel Selector, from, to time.Time) ([]PlannedGroup, error) {
	var out []PlannedGroup
	var errs []error
	for _, g := range s.peaks(from, to) {
		if g.Peak <= g.Current {
			continue
		}
		job, err := s.job(ctx, g.Namespace, g.Job)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !JobTargetsPool(job, sel) {
			continue
		}
		g.Resources = groupResources(job, g.Group)
		out = append(out, g)
	}
	return out, errors.Join(errs...)
}

func (s *PeakPlans) job(ctx context.Context, namespace, id string) (*nomadapi.Job, error) {
	key := namespace + "/" + id
	now := s.now()
	s.mu.Lock()
	c, ok := s.cache[key]
	s.mu.Unlock()
	if ok && now.Sub(c.at) < jobTTL {
		return c.job, nil
	}
	job, _, err := s.jobs.JobState(ctx, namespace, id)
	if err != nil {
		return nil, fmt.Errorf("job %s: %w", key, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range s.cache { // bounded: stale entries go on every miss
		if now.Sub(v.at) >= jobTTL {
			delete(s.cache, k)
		}
	}
	s.cache[key] = cachedJob{job: job, at: now}
	return job, nil
}

// groupResources is what one replica of the job's group is allocated.
func groupResources(job *nomadapi.Job, group string) Resources {
	for _, tg := range job.TaskGroups {
		if tg != nil && tg.Name != nil && *tg.Name == group {
			return taskGroupResources(tg)
		}
	}
	return Resources{}
}

// taskGroupResources is the sum of the group's tasks' CPU and memory: what
// one replica is allocated.
func taskGroupResources(tg *nomadapi.TaskGroup) Resources {
	var r Resources
	for _, t := range tg.Tasks {
		if t == nil || t.Resources == nil {
			continue
		}
		if t.Resources.CPU != nil {
			r.CPUMHz += int64(*t.Resources.CPU)
		}
		if t.Resources.MemoryMB != nil {
			r.MemoryMiB += int64(*t.Resources.MemoryMB)
		}
	}
	return r
}

// PlanHorizon is how far ahead the job groups' plans must reach for the
// predictive pools among pools to see anything: the longest lead time, plus
// the plans' own re-planning interval (10 s) so a plan made just before a
// pool reads it still covers the lead time. 0 without a predictive pool.
func PlanHorizon(pools []Pool) time.Duration {
	var lead time.Duration
	for _, p := range pools {
		lead = max(lead, p.LeadTime)
	}
	if lead == 0 {
		return 0
	}
	return lead + 10*time.Second
}
