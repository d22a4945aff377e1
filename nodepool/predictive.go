package nodepool

import (
	"cmp"
	"slices"
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
