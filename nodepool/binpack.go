package nodepool

import (
	"cmp"
	"context"
	"fmt"
	"slices"
)

// FailureReason is why Nomad could not place a queued allocation, as read
// from a blocked evaluation's failed task group metrics.
type FailureReason string

// The failure reasons the pool scales out for. Exhausted ports means the
// group's static ports are taken on every node, so each new node can host at
// most one of its allocations. No eligible nodes means constraints excluded
// every node; new nodes of the pool only help when it has no schedulable
// node at all.
const (
	ReasonCPU             FailureReason = "cpu"
	ReasonMemory          FailureReason = "memory"
	ReasonPorts           FailureReason = "ports"
	ReasonNoEligibleNodes FailureReason = "no_eligible_nodes"
)

// QueuedGroup is the queued allocations of one task group of a blocked
// evaluation: Count allocations, each needing Resources.
type QueuedGroup struct {
	Job       string
	Group     string
	Count     int
	Resources Resources
	Reason    FailureReason
}

// Unplaceable is queued work that new nodes of the pool cannot host.
type Unplaceable struct {
	Job       string    `json:"job"`
	Group     string    `json:"group"`
	Count     int       `json:"count"`
	Resources Resources `json:"resources"`
	Why       string    `json:"why"`
}

// Bin is one planned new node and what was packed onto it.
type Bin struct {
	InstanceType string
	Spot         bool
	Capacity     Resources
	Used         Resources
	Allocs       int
	// Pending bins are nodes launched earlier that have not joined yet, or
	// have joined and not settled; queued work packs into them first and
	// they are not launched again.
	Pending   bool
	exclusive map[string]bool
	price     float64
}

// BlockedPlan is what to launch for blocked work.
type BlockedPlan struct {
	Launches    []Launch
	Bins        []Bin
	Unplaceable []Unplaceable
}

// BlockedInput is everything PlanBlocked looks at.
type BlockedInput struct {
	Queued []QueuedGroup
	// Types are the pool's instance types with how many more of each may
	// launch; Provides is ignored (set from Resources).
	Types        []CapacityType
	MaxNodes     int // negative: no cap
	SpotMaxShare float64
	// PoolSchedulable is the number of schedulable nodes in the pool.
	PoolSchedulable int
	// Pending are launches still on their way (not counted in MaxNodes or
	// Available any more).
	Pending []Launch
	// Joining are nodes a scale-out launched that have joined but are not
	// ready yet, or became ready so recently that Nomad may not have placed
	// the queued work on them: their free capacity is packed into first.
	Joining []Node
}

type item struct {
	key       string
	q         int // index into Queued
	res       Resources
	exclusive bool
}

// PlanBlocked packs the queued allocations first-fit-decreasing into new
// nodes. Each round asks the chooser for the cheapest nodes covering the
// summed CPU and memory still unpacked, packs into all bins so far, and
// repeats with what did not fit (fragmentation, exclusive ports); a round
// that packs nothing opens the cheapest node that fits the largest item.
// Work no instance type could ever hold, or that the limits leave no room
// for, is returned as unplaceable rather than retried.
func PlanBlocked(ctx context.Context, ch Chooser, in BlockedInput) (BlockedPlan, error) {
	var plan BlockedPlan
	types := slices.Clone(in.Types)
	var maxCap Resources
	for i := range types {
		types[i].Provides = []int64{types[i].Resources.CPUMHz, types[i].Resources.MemoryMiB}
		maxCap.CPUMHz = max(maxCap.CPUMHz, types[i].Resources.CPUMHz)
		maxCap.MemoryMiB = max(maxCap.MemoryMiB, types[i].Resources.MemoryMiB)
	}
	unplaced := map[int]int{}
	why := map[int]string{}
	var items []item
	for qi, q := range in.Queued {
		if q.Count <= 0 {
			continue
		}
		switch {
		case q.Reason == ReasonNoEligibleNodes && in.PoolSchedulable > 0:
			unplaced[qi], why[qi] = q.Count, "constraints exclude every node of the pool; new nodes would be excluded too"
			continue
		case !fitsAnyType(q.Resources, types):
			unplaced[qi], why[qi] = q.Count, fmt.Sprintf("needs %d MHz and %d MiB, more than any instance type offers", q.Resources.CPUMHz, q.Resources.MemoryMiB)
			continue
		}
		for range q.Count {
			items = append(items, item{key: q.Job + "/" + q.Group, q: qi, res: q.Resources, exclusive: q.Reason == ReasonPorts})
		}
	}
	size := func(r Resources) float64 {
		return max(float64(r.CPUMHz)/float64(max(maxCap.CPUMHz, 1)), float64(r.MemoryMiB)/float64(max(maxCap.MemoryMiB, 1)))
	}
	slices.SortStableFunc(items, func(a, b item) int { return cmp.Compare(size(b.res), size(a.res)) })

	maxNodes := in.MaxNodes
	spot := 0
	for _, n := range in.Joining {
		plan.Bins = append(plan.Bins, Bin{InstanceType: n.InstanceType, Capacity: n.Free(), Pending: true, exclusive: map[string]bool{}})
	}
	for _, l := range in.Pending {
		for range l.Count {
			b := newBin(types, l.InstanceType, l.Spot, l.UnitPrice)
			b.Pending = true
			plan.Bins = append(plan.Bins, b)
		}
	}
	if len(plan.Bins) > 0 {
		items = pack(plan.Bins, items)
	}
	newBins := func() int {
		n := 0
		for _, b := range plan.Bins {
			if !b.Pending {
				n++
			}
		}
		return n
	}
	for round := 0; len(items) > 0 && round <= len(items)+1; round++ {
		var need Resources
		for _, it := range items {
			need = need.Add(it.res)
		}
		p := CapacityProblem{
			Dims: []string{"cpu_mhz", "memory_mib"}, Need: []int64{need.CPUMHz, need.MemoryMiB},
			Types: types, MaxNodes: remainingCap(maxNodes, newBins()), SpotMaxShare: in.SpotMaxShare,
			PriorNodes: newBins(), PriorSpot: spot,
		}
		choice, err := ch.Choose(ctx, p)
		if err != nil {
			return BlockedPlan{}, fmt.Errorf("choose nodes for blocked work: %w", err)
		}
		for _, l := range choice.Launches {
			for range l.Count {
				plan.Bins = append(plan.Bins, newBin(types, l.InstanceType, l.Spot, l.UnitPrice))
				consume(types, l.InstanceType)
				if l.Spot {
					spot++
				}
			}
		}
		left := pack(plan.Bins, items)
		if len(left) == len(items) {
			// The aggregate choice packed nothing: open the cheapest node
			// that holds the largest item, if the limits allow one.
			t := cheapestFitting(types, items[0].res, remainingCap(maxNodes, newBins()))
			if t < 0 {
				break
			}
			plan.Bins = append(plan.Bins, newBin(types, types[t].Name, false, types[t].Price))
			consume(types, types[t].Name)
			left = pack(plan.Bins, items)
		}
		items = left
	}
	for _, it := range items {
		unplaced[it.q]++
		why[it.q] = "pool maximum or instance type limits leave no room"
	}
	for qi := range in.Queued {
		if n := unplaced[qi]; n > 0 {
			q := in.Queued[qi]
			plan.Unplaceable = append(plan.Unplaceable, Unplaceable{Job: q.Job, Group: q.Group, Count: n, Resources: q.Resources, Why: why[qi]})
		}
	}
	// Aggregate choices can overshoot; empty nodes are not launched.
	plan.Bins = slices.DeleteFunc(plan.Bins, func(b Bin) bool { return b.Allocs == 0 && !b.Pending })
	fixSpotShare(plan.Bins, types, in.SpotMaxShare)
	plan.Launches = binLaunches(plan.Bins)
	return plan, nil
}

func remainingCap(maxNodes, used int) int {
	if maxNodes < 0 {
		return -1
	}
	return max(maxNodes-used, 0)
}

func fitsAnyType(r Resources, types []CapacityType) bool {
	for _, t := range types {
		if r.FitsIn(t.Resources) {
			return true
		}
	}
	return false
}

func cheapestFitting(types []CapacityType, r Resources, capLeft int) int {
	if capLeft == 0 {
		return -1
	}
	best := -1
	for i, t := range types {
		if t.Available != 0 && r.FitsIn(t.Resources) && (best < 0 || t.Price < types[best].Price) {
			best = i
		}
	}
	return best
}

func newBin(types []CapacityType, name string, spot bool, price float64) Bin {
	for _, t := range types {
		if t.Name == name {
			return Bin{InstanceType: name, Spot: spot, Capacity: t.Resources, exclusive: map[string]bool{}, price: price}
		}
	}
	return Bin{InstanceType: name, Spot: spot, exclusive: map[string]bool{}, price: price}
}

func consume(types []CapacityType, name string) {
	for i := range types {
		if types[i].Name == name && types[i].Available > 0 {
			types[i].Available--
		}
	}
}

// pack places items first-fit into bins and returns the items that fit
// nowhere, in their original order.
func pack(bins []Bin, items []item) []item {
	var left []item
	for _, it := range items {
		placed := false
		for b := range bins {
			bin := &bins[b]
			if it.exclusive && bin.exclusive[it.key] {
				continue
			}
			if bin.Used.Add(it.res).FitsIn(bin.Capacity) {
				bin.Used = bin.Used.Add(it.res)
				bin.Allocs++
				if it.exclusive {
					bin.exclusive[it.key] = true
				}
				placed = true
				break
			}
		}
		if !placed {
			left = append(left, it)
		}
	}
	return left
}

func binLaunches(bins []Bin) []Launch {
	type key struct {
		name string
		spot bool
	}
	idx := map[key]int{}
	var out []Launch
	for _, b := range bins {
		if b.Pending {
			continue
		}
		k := key{b.InstanceType, b.Spot}
		i, ok := idx[k]
		if !ok {
			i = len(out)
			idx[k] = i
			out = append(out, Launch{InstanceType: b.InstanceType, Spot: b.Spot, UnitPrice: b.price})
		}
		out[i].Count++
	}
	return out
}

// fixSpotShare turns spot bins into on-demand ones until the spot share
// holds again; dropping empty bins can break it.
func fixSpotShare(bins []Bin, types []CapacityType, share float64) {
	spot, total := 0, 0
	for _, b := range bins {
		if b.Pending {
			continue
		}
		total++
		if b.Spot {
			spot++
		}
	}
	for i := len(bins) - 1; i >= 0 && float64(spot) > share*float64(total)+1e-9; i-- {
		if !bins[i].Spot || bins[i].Pending {
			continue
		}
		bins[i].Spot = false
		for _, t := range types {
			if t.Name == bins[i].InstanceType {
				bins[i].price = t.Price
			}
		}
		spot--
	}
}
