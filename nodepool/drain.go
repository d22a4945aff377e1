package nodepool

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"slices"
)

// DrainCap is how many nodes of a pool of poolSize may drain at once:
// the configured fraction rounded down, but at least one so small pools can
// still shrink.
func DrainCap(poolSize int, fraction float64) int {
	// The epsilon keeps 0.1*10 from flooring to 0 on binary rounding.
	return max(1, int(math.Floor(fraction*float64(poolSize)+1e-9)))
}

// DrainPolicy is the part of a pool's configuration that limits drains.
type DrainPolicy struct {
	Min         int
	MaxFraction float64
	Idle        IdlePolicy
	Headroom    Headroom
}

// DrainInput is everything drain selection looks at.
type DrainInput struct {
	Nodes  []Node // the pool's nodes
	Idle   IdleState
	Policy DrainPolicy
	// SelfNodeID is the node running nomadscalerd, never drained.
	SelfNodeID string
	// InFlight holds nodes with a drain or termination under way in the
	// journal; they count against the cap like draining nodes.
	InFlight map[string]bool
}

// DrainChoice is one node chosen for draining and why.
type DrainChoice struct {
	Node   Node
	Reason string
}

// SelectDrains picks the idle nodes to drain now, least loaded first. It
// never exceeds the drain cap (counting drains already under way), never
// leaves fewer than Min active nodes, never drops the pool below its
// headroom and never picks the node running nomadscalerd. The string
// explains why nothing (more) was chosen.
func SelectDrains(in DrainInput) ([]DrainChoice, string) {
	size, draining := 0, 0
	var active []Node
	for _, n := range in.Nodes {
		if n.Status == NodeStatusDown {
			continue
		}
		size++
		switch {
		case n.Draining || in.InFlight[n.ID]:
			draining++
		case n.Schedulable():
			active = append(active, n)
		}
	}
	limit := DrainCap(size, in.Policy.MaxFraction)
	if draining >= limit {
		return nil, fmt.Sprintf("%d of %d nodes already draining (cap %d)", draining, size, limit)
	}

	var candidates []Node
	for _, n := range active {
		if n.ID != in.SelfNodeID && in.Idle.IsIdle(n.ID, in.Policy.Idle) {
			candidates = append(candidates, n)
		}
	}
	if len(candidates) == 0 {
		return nil, "no idle nodes"
	}
	slices.SortStableFunc(candidates, func(a, b Node) int {
		return cmp.Or(cmp.Compare(a.load(), b.load()), cmp.Compare(a.ID, b.ID))
	})

	h := in.Policy.Headroom
	free := FreeUnits(active, h.Unit)
	var spare Resources // free capacity of the nodes that stay
	// room is each active node's free capacity, as the drained nodes'
	// allocations are placed into it.
	room := make(map[string]Resources, len(active))
	for _, n := range active {
		spare = spare.Add(n.Free())
		room[n.ID] = n.Free()
	}
	remaining := len(active)
	var chosen []DrainChoice
	why := ""
	for _, n := range candidates {
		if draining+len(chosen) >= limit {
			why = fmt.Sprintf("drain cap %d of %d nodes reached", limit, size)
			break
		}
		if remaining-1 < in.Policy.Min {
			why = fmt.Sprintf("pool at its minimum of %d active nodes", in.Policy.Min)
			break
		}
		// The drained node's free capacity disappears and its allocations
		// land on the others, eating into their free capacity and units.
		afterSpare := spare.Sub(n.Free()).Sub(n.Allocated)
		afterRoom, fits := placeAllocated(active, room, n)
		if afterSpare.CPUMHz < 0 || afterSpare.MemoryMiB < 0 || !fits {
			why = fmt.Sprintf("remaining nodes could not absorb the allocations of %s", n.Name)
			continue
		}
		afterFree := free - UnitsIn(n.Free(), h.Unit) - unitsConsumed(n.Allocated, h.Unit)
		if h.Enabled() && afterFree < h.Units {
			why = fmt.Sprintf("draining %s would leave %d headroom units, below the required %d", n.Name, afterFree, h.Units)
			continue
		}
		c, m := n.Utilization()
		chosen = append(chosen, DrainChoice{Node: n, Reason: fmt.Sprintf(
			"idle for %d periods (cpu %.0f%%, memory %.0f%% allocated)",
			in.Idle.Nodes[n.ID].Periods, 100*c, 100*m)})
		spare, free, remaining, room = afterSpare, afterFree, remaining-1, afterRoom
	}
	return chosen, why
}

// placeAllocated places what n has allocated into the free room of the
// other active nodes still in room, and returns their room after it and
// whether it fit. A pool's sums of free CPU and free memory can both cover
// a node's allocations while no node has both (one with CPU free, another
// with memory free). The allocations are placed as one block: their
// separate sizes are not in the node's view, and a block that fits is
// work with somewhere to go, at the price of refusing some drains that
// splitting would allow.
func placeAllocated(active []Node, room map[string]Resources, n Node) (map[string]Resources, bool) {
	if n.Allocated.CPUMHz <= 0 && n.Allocated.MemoryMiB <= 0 {
		after := maps.Clone(room)
		delete(after, n.ID)
		return after, true
	}
	var ids []string
	var free []Resources
	for _, o := range active { // in the pool's order: the same choice every time
		if r, ok := room[o.ID]; ok && o.ID != n.ID {
			ids = append(ids, o.ID)
			free = append(free, r)
		}
	}
	left, rest := FitPlanned(free, []QueuedGroup{{Job: "drained", Group: n.ID, Count: 1, Resources: n.Allocated}})
	if len(left) > 0 {
		return room, false
	}
	after := make(map[string]Resources, len(ids))
	for i, id := range ids {
		after[id] = rest[i]
	}
	return after, true
}
