package nodepool

import (
	"context"
	"testing"
	"time"
)

// A predictive pool's launch for planned allocations and its launch for
// headroom are chosen one after the other in one decision; the second
// must see the instance types the first already took, or together they
// launch more of a type than its max.
func TestHeadroomLaunchedBesidePlannedAllocationsKeepsEachInstanceTypeWithinItsMax(t *testing.T) {
	p := testPool()
	p.Min = 0
	p.LeadTime = 3 * time.Minute
	p.InstanceTypes[0].Max = 3 // small: 4 units each, the cheapest per unit
	p.Headroom = Headroom{Unit: unit, Units: 4}
	full := unitsNode("a", 0)
	// Eight planned allocations of one unit: two small nodes.
	planned := []QueuedGroup{{Job: "web", Group: "api", Count: 8, Resources: unit}}
	d, err := Decide(context.Background(), GreedyChooser{}, DecideInput{Pool: p, Nodes: []Node{full}, Now: testTime, Planned: planned})
	if err != nil {
		t.Fatal(err)
	}
	small := 0
	for _, l := range d.ScaleOut {
		if l.InstanceType == "small" {
			small += l.Count
		}
	}
	if small+1 > p.InstanceTypes[0].Max {
		t.Fatalf("launches %+v: %d small nodes beside the 1 running, past the type's max %d (reason %q)",
			d.ScaleOut, small, p.InstanceTypes[0].Max, d.Reason)
	}
	if LaunchCount(d.ScaleOut) < 3 {
		t.Fatalf("launches %+v, want the planned work's two nodes and one for headroom (reason %q)", d.ScaleOut, d.Reason)
	}
}

// Planned allocations are placed on the free capacity of nodes still
// initializing before anything is launched for them; that capacity is then
// theirs, and headroom is kept on top of it. Counted again as pending
// headroom, it hid the shortfall and nothing was launched.
func TestHeadroomIsNotCountedOnAnInitializingNodeThePlannedAllocationsFill(t *testing.T) {
	p := testPool()
	p.Min = 0
	p.LeadTime = 3 * time.Minute
	p.Headroom = Headroom{Unit: unit, Units: 2}
	booting := Node{ID: "b", Name: "name-b", NodePool: "web", InstanceType: "small", Status: NodeStatusInitializing,
		Total: Resources{CPUMHz: 4000, MemoryMiB: 2048}} // 4 units
	// Four planned allocations of one unit fill the booting node.
	planned := []QueuedGroup{{Job: "web", Group: "api", Count: 4, Resources: unit}}
	d, err := Decide(context.Background(), GreedyChooser{}, DecideInput{Pool: p, Nodes: []Node{unitsNode("a", 0), booting},
		Now: testTime, Planned: planned})
	if err != nil {
		t.Fatal(err)
	}
	wantNoHeadroomLeftAndALaunchForIt(t, d)
}

// wantNoHeadroomLeftAndALaunchForIt fails t unless the planned
// allocations took every unit the pool had or had coming, and d launches
// a node for the headroom.
func wantNoHeadroomLeftAndALaunchForIt(t *testing.T, d Decision) {
	t.Helper()
	if d.Headroom.Free+d.Headroom.Pending != 0 || LaunchCount(d.ScaleOut) == 0 || d.ScaleOutReason != ScaleOutHeadroom {
		t.Fatalf("headroom %+v, launches %+v (%s): want 0 units free or pending and a launch for headroom (reason %q)",
			d.Headroom, d.ScaleOut, d.ScaleOutReason, d.Reason)
	}
}

// The same for a node launched and not joined yet: planned allocations
// that fit on it are packed there rather than launched for, so its units
// are theirs and not pending headroom.
func TestHeadroomIsNotCountedOnALaunchingNodeThePlannedAllocationsFill(t *testing.T) {
	p := testPool()
	p.Min = 0
	p.LeadTime = 3 * time.Minute
	p.Headroom = Headroom{Unit: unit, Units: 2}
	launched := Entry{ID: "web/scale_out/1", Pool: "web", Kind: KindScaleOut, Phase: PhaseLaunched, At: testTime.Add(-time.Minute),
		InstanceType: "small", Count: 1, KnownNodes: []string{"a"}} // 4 units on their way
	planned := []QueuedGroup{{Job: "web", Group: "api", Count: 4, Resources: unit}}
	d, err := Decide(context.Background(), GreedyChooser{}, DecideInput{Pool: p, Nodes: []Node{unitsNode("a", 0)},
		Pending: []Entry{launched}, Now: testTime, Planned: planned})
	if err != nil {
		t.Fatal(err)
	}
	wantNoHeadroomLeftAndALaunchForIt(t, d)
}

// An idle node of a predictive pool is drained only if the nodes that
// stay keep the headroom on top of the planned allocations and the drained
// node's own. Drain selection counted the headroom without the planned
// allocations, so a node was drained and the next decision launched one
// for the headroom the drain had taken: a node churned for nothing.
func TestAPredictivePoolDoesNotDrainANodeWhoseCapacityTheHeadroomNeedsBesideThePlans(t *testing.T) {
	p := testPool()
	p.Min = 0
	p.ScaleDownMaxFraction = 1
	p.LeadTime = 3 * time.Minute
	p.Headroom = Headroom{Unit: unit, Units: 4}
	// Three idle nodes with 7 free units each (one used): 21 free.
	nodes := []Node{unitsNode("a", 7), unitsNode("b", 7), unitsNode("c", 7)}
	idle := IdleState{Nodes: map[string]NodeIdle{}}
	for _, n := range nodes {
		idle.Nodes[n.ID] = NodeIdle{Periods: p.Idle.Periods}
	}
	// Twelve planned units leave 9 free, 4 of them headroom: draining a
	// node (7 free and 1 to move) would leave 1.
	planned := []QueuedGroup{{Job: "web", Group: "api", Count: 12, Resources: unit}}
	d, err := Decide(context.Background(), GreedyChooser{}, DecideInput{Pool: p, Nodes: nodes, Idle: idle, Now: testTime, Planned: planned})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Drains) == 0 {
		return
	}
	// What the drain leads to: the drained node in flight, its allocation
	// moved onto a node that stays.
	drained := d.Drains[0].NodeID
	var after []Node
	moved := false
	for _, n := range nodes {
		switch {
		case n.ID == drained:
			n.Eligible, n.Draining = false, true
		case !moved:
			n.Allocated, moved = n.Allocated.Add(unit), true
		}
		after = append(after, n)
	}
	next, err := Decide(context.Background(), GreedyChooser{}, DecideInput{Pool: p, Nodes: after, Idle: idle, Now: testTime.Add(10 * time.Second),
		Planned: planned, Pending: []Entry{{ID: "web/drain/1", Pool: "web", Kind: KindDrain, Phase: PhaseDraining, At: testTime, NodeID: drained}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Fatalf("drained %v (reason %q), and the next decision launches %+v for headroom (reason %q)", d.Drains, d.Reason, next.ScaleOut, next.Reason)
}

// One decision can launch two instance types at once (two journal
// entries knowing the same nodes). The node that joins first belongs to
// the entry of its own type: claimed by the other, the launch still on its
// way was counted as the small type instead of the large one, the pending
// headroom came out 12 units short, and another node was launched.
func TestANodeThatJoinsIsCountedAgainstTheLaunchOfItsOwnInstanceType(t *testing.T) {
	p := testPool()
	p.Min = 0
	p.Headroom = Headroom{Unit: unit, Units: 12}
	known := []string{"a"}
	large := Entry{ID: "web/scale_out/1/0", Pool: "web", Kind: KindScaleOut, Phase: PhaseLaunched, At: testTime.Add(-time.Minute),
		InstanceType: "large", Count: 1, KnownNodes: known} // 16 units
	small := Entry{ID: "web/scale_out/1/1", Pool: "web", Kind: KindScaleOut, Phase: PhaseLaunched, At: testTime.Add(-time.Minute),
		InstanceType: "small", Count: 1, KnownNodes: known} // 4 units
	booting := Node{ID: "s", Name: "name-s", NodePool: "web", InstanceType: "small", Status: NodeStatusInitializing,
		Total: Resources{CPUMHz: 4000, MemoryMiB: 2048}}
	d, err := Decide(context.Background(), GreedyChooser{}, DecideInput{Pool: p, Nodes: []Node{unitsNode("a", 0), booting},
		Pending: []Entry{large, small}, Now: testTime})
	if err != nil {
		t.Fatal(err)
	}
	if d.Headroom.Pending != 20 || len(d.ScaleOut) != 0 {
		t.Fatalf("headroom %+v, launches %+v: want 20 units pending (the large node launching, the small one booting) and no launch (reason %q)",
			d.Headroom, d.ScaleOut, d.Reason)
	}
}
