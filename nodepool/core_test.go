package nodepool

import (
	"fmt"
	"testing"
	"time"
)

// nodeWithFreeUnits builds a ready node whose free capacity is exactly the
// given number of 1000 MHz / 512 MiB units.
func nodeWithFreeUnits(id string, units int64) Node {
	total := Resources{CPUMHz: 8000, MemoryMiB: 8192}
	free := Resources{CPUMHz: units * 1000, MemoryMiB: units * 512}
	return Node{ID: id, Name: id, Status: NodeStatusReady, Eligible: true, Total: total, Allocated: total.Sub(free)}
}

func TestHeadroomSeedExampleScalesOutOnlyWhenBelowRequiredUnits(t *testing.T) {
	unit := Resources{CPUMHz: 1000, MemoryMiB: 512}
	cases := []struct {
		name      string
		free      []int64
		wantFree  int
		wantShort int
	}{
		{"2+3+5 meets 10", []int64{2, 3, 5}, 10, 0},
		{"2+3+4 is one short", []int64{2, 3, 4}, 9, 1},
		{"empty pool is all short", nil, 0, 10},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var nodes []Node
			for i, u := range c.free {
				nodes = append(nodes, nodeWithFreeUnits(fmt.Sprint("n", i), u))
			}
			got := FreeUnits(nodes, unit)
			if got != c.wantFree {
				t.Fatalf("free units = %d, want %d", got, c.wantFree)
			}
			if short := max(10-got, 0); short != c.wantShort {
				t.Fatalf("shortfall = %d, want %d", short, c.wantShort)
			}
		})
	}
}

func TestUnitsInTakesTheScarcerDimensionPerNode(t *testing.T) {
	unit := Resources{CPUMHz: 1000, MemoryMiB: 512}
	cases := []struct {
		free Resources
		want int
	}{
		{Resources{CPUMHz: 5000, MemoryMiB: 1024}, 2},
		{Resources{CPUMHz: 999, MemoryMiB: 100000}, 0},
		{Resources{CPUMHz: 3500, MemoryMiB: 2047}, 3},
		{Resources{CPUMHz: -10, MemoryMiB: 2048}, 0},
	}
	for _, c := range cases {
		if got := UnitsIn(c.free, unit); got != c.want {
			t.Errorf("UnitsIn(%+v) = %d, want %d", c.free, got, c.want)
		}
	}
	if got := UnitsIn(Resources{CPUMHz: 5000, MemoryMiB: 10}, Resources{CPUMHz: 1000}); got != 5 {
		t.Errorf("a memory-free unit should count cpu only, got %d", got)
	}
}

func TestFreeUnitsIgnoresNodesThatCannotTakeWork(t *testing.T) {
	unit := Resources{CPUMHz: 1000, MemoryMiB: 512}
	ready := nodeWithFreeUnits("a", 4)
	draining := nodeWithFreeUnits("b", 4)
	draining.Draining = true
	ineligible := nodeWithFreeUnits("c", 4)
	ineligible.Eligible = false
	down := nodeWithFreeUnits("d", 4)
	down.Status = NodeStatusDown
	if got := FreeUnits([]Node{ready, draining, ineligible, down}, unit); got != 4 {
		t.Fatalf("free units = %d, want only the ready node's 4", got)
	}
}

func TestUpdateIdleCountsConsecutivePeriodsAndResetsOnBusy(t *testing.T) {
	p := IdlePolicy{CPUBelow: 0.4, MemoryBelow: 0.4, Periods: 5, Period: time.Minute}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	idle := Observation{NodeID: "n", CPU: 0.1, Memory: 0.1}
	busyCPU := Observation{NodeID: "n", CPU: 0.5, Memory: 0.1}
	busyMem := Observation{NodeID: "n", CPU: 0.1, Memory: 0.4}
	type step struct {
		at      time.Duration
		obs     []Observation
		periods int
		isIdle  bool
		present bool
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"five minutes idle makes a node idle", []step{
			{0, []Observation{idle}, 0, false, true},
			{time.Minute, []Observation{idle}, 1, false, true},
			{2 * time.Minute, []Observation{idle}, 2, false, true},
			{3 * time.Minute, []Observation{idle}, 3, false, true},
			{4 * time.Minute, []Observation{idle}, 4, false, true},
			{5 * time.Minute, []Observation{idle}, 5, true, true},
		}},
		{"sub-period samples do not add periods", []step{
			{0, []Observation{idle}, 0, false, true},
			{20 * time.Second, []Observation{idle}, 0, false, true},
			{40 * time.Second, []Observation{idle}, 0, false, true},
			{70 * time.Second, []Observation{idle}, 1, false, true},
		}},
		{"busy cpu resets the streak", []step{
			{0, []Observation{idle}, 0, false, true},
			{3 * time.Minute / 2, []Observation{idle}, 1, false, true},
			{2 * time.Minute, []Observation{busyCPU}, 0, false, false},
			{3 * time.Minute, []Observation{idle}, 0, false, true},
		}},
		{"memory at the threshold is busy", []step{
			{0, []Observation{busyMem}, 0, false, false},
		}},
		{"a node that disappears loses its streak", []step{
			{0, []Observation{idle}, 0, false, true},
			{time.Minute, nil, 0, false, false},
			{2 * time.Minute, []Observation{idle}, 0, false, true},
		}},
		{"a gap of more than two periods restarts the streak", []step{
			{0, []Observation{idle}, 0, false, true},
			{time.Minute, []Observation{idle}, 1, false, true},
			{10 * time.Minute, []Observation{idle}, 0, false, true},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var s IdleState
			for i, st := range c.steps {
				before := fmt.Sprint(s)
				next := UpdateIdle(s, p, st.obs, t0.Add(st.at))
				if fmt.Sprint(s) != before {
					t.Fatalf("step %d: UpdateIdle modified its input", i)
				}
				s = next
				ni, ok := s.Nodes["n"]
				if ok != st.present || ni.Periods != st.periods || s.IsIdle("n", p) != st.isIdle {
					t.Fatalf("step %d: present=%v periods=%d idle=%v, want %v %d %v",
						i, ok, ni.Periods, s.IsIdle("n", p), st.present, st.periods, st.isIdle)
				}
			}
		})
	}
}

func TestDrainCapNeverExceedsTenPercentOfPool(t *testing.T) {
	cases := []struct{ size, want int }{
		{1, 1}, {3, 1}, {9, 1}, {10, 1}, {25, 2}, {100, 10},
	}
	for _, c := range cases {
		if got := DrainCap(c.size, 0.10); got != c.want {
			t.Errorf("DrainCap(%d) = %d, want %d", c.size, got, c.want)
		}
	}
}

// idlePool makes size idle nodes n000..; node i has i% cpu allocated.
func idlePool(size int, now time.Time, p IdlePolicy) ([]Node, IdleState) {
	var nodes []Node
	state := IdleState{Nodes: map[string]NodeIdle{}}
	for i := range size {
		id := fmt.Sprintf("n%03d", i)
		n := Node{ID: id, Name: id, Status: NodeStatusReady, Eligible: true,
			Total:     Resources{CPUMHz: 10000, MemoryMiB: 10000},
			Allocated: Resources{CPUMHz: int64(i % 30 * 10)}}
		nodes = append(nodes, n)
		state.Nodes[id] = NodeIdle{IdleSince: now.Add(-time.Hour), LastSeen: now, Periods: p.Periods}
	}
	return nodes, state
}

func TestSelectDrainsHonoursTheCapAtEveryPoolSize(t *testing.T) {
	p := DrainPolicy{Min: 0, MaxFraction: 0.10, Idle: IdlePolicy{Periods: 5}}
	now := time.Now()
	for _, c := range []struct{ size, already, want int }{
		{1, 0, 1}, {3, 0, 1}, {9, 0, 1}, {10, 0, 1}, {25, 0, 2}, {100, 0, 10},
		{25, 1, 1}, {100, 4, 6}, {100, 10, 0}, {10, 1, 0},
	} {
		t.Run(fmt.Sprintf("size %d with %d draining", c.size, c.already), func(t *testing.T) {
			nodes, state := idlePool(c.size, now, p.Idle)
			for i := range c.already {
				nodes[i].Draining = true
			}
			got, _ := SelectDrains(DrainInput{Nodes: nodes, Idle: state, Policy: p})
			if len(got) != c.want {
				t.Fatalf("chose %d drains, want %d", len(got), c.want)
			}
		})
	}
}

func TestSelectDrainsCountsJournalledDrainsAgainstTheCap(t *testing.T) {
	p := DrainPolicy{MaxFraction: 0.10, Idle: IdlePolicy{Periods: 5}}
	nodes, state := idlePool(25, time.Now(), p.Idle)
	// One node is past draining (ineligible, waiting for termination).
	nodes[3].Eligible = false
	got, _ := SelectDrains(DrainInput{Nodes: nodes, Idle: state, Policy: p, InFlight: map[string]bool{"n003": true}})
	if len(got) != 1 {
		t.Fatalf("chose %d drains, want 1 (cap 2, one in flight)", len(got))
	}
}

func TestSelectDrainsPicksLeastLoadedFirstAndSkipsSelf(t *testing.T) {
	p := DrainPolicy{MaxFraction: 0.5, Idle: IdlePolicy{Periods: 5}}
	nodes, state := idlePool(6, time.Now(), p.Idle) // loads 0,10,20,...
	got, _ := SelectDrains(DrainInput{Nodes: nodes, Idle: state, Policy: p, SelfNodeID: "n000"})
	var ids []string
	for _, c := range got {
		ids = append(ids, c.Node.ID)
	}
	if fmt.Sprint(ids) != "[n001 n002 n003]" {
		t.Fatalf("drained %v, want the three least loaded except self n000", ids)
	}
}

func TestSelectDrainsNeverGoesBelowMin(t *testing.T) {
	p := DrainPolicy{Min: 9, MaxFraction: 0.5, Idle: IdlePolicy{Periods: 5}}
	nodes, state := idlePool(10, time.Now(), p.Idle)
	got, why := SelectDrains(DrainInput{Nodes: nodes, Idle: state, Policy: p})
	if len(got) != 1 {
		t.Fatalf("chose %d drains, want 1 (10 nodes, min 9); why=%q", len(got), why)
	}
	p.Min = 10
	if got, _ := SelectDrains(DrainInput{Nodes: nodes, Idle: state, Policy: p}); len(got) != 0 {
		t.Fatalf("chose %d drains at min, want 0", len(got))
	}
}

func TestSelectDrainsOnlyDrainsNodesIdleForEnoughPeriods(t *testing.T) {
	p := DrainPolicy{MaxFraction: 1, Idle: IdlePolicy{Periods: 5}}
	nodes, state := idlePool(4, time.Now(), p.Idle)
	state.Nodes["n000"] = NodeIdle{Periods: 4}
	delete(state.Nodes, "n001")
	got, _ := SelectDrains(DrainInput{Nodes: nodes, Idle: state, Policy: p})
	if len(got) != 2 || got[0].Node.ID != "n002" || got[1].Node.ID != "n003" {
		t.Fatalf("got %+v, want n002 and n003", got)
	}
}

func TestSelectDrainsNeverTakesThePoolBelowHeadroom(t *testing.T) {
	unit := Resources{CPUMHz: 1000, MemoryMiB: 512}
	p := DrainPolicy{MaxFraction: 1, Idle: IdlePolicy{Periods: 1}}
	state := IdleState{Nodes: map[string]NodeIdle{}}
	var nodes []Node
	// Four empty nodes of exactly 8 units each: the pool holds 32.
	for i := range 4 {
		n := Node{ID: fmt.Sprint("n", i), Status: NodeStatusReady, Eligible: true,
			Total: Resources{CPUMHz: 8000, MemoryMiB: 4096}}
		nodes = append(nodes, n)
		state.Nodes[n.ID] = NodeIdle{Periods: 1}
	}
	cases := []struct {
		required, want int
	}{
		{0, 3}, // min 1 keeps one node
		{8, 3},
		{9, 2},
		{24, 1},
		{25, 0},
		{32, 0},
	}
	for _, c := range cases {
		p.Headroom = Headroom{Unit: unit, Units: c.required}
		p.Min = 1
		got, why := SelectDrains(DrainInput{Nodes: nodes, Idle: state, Policy: p})
		if len(got) != c.want {
			t.Errorf("required %d: chose %d drains, want %d (%s)", c.required, len(got), c.want, why)
		}
	}
}

func TestSelectDrainsKeepsRoomForTheDrainedAllocations(t *testing.T) {
	p := DrainPolicy{MaxFraction: 1, Idle: IdlePolicy{Periods: 1}}
	state := IdleState{Nodes: map[string]NodeIdle{"a": {Periods: 1}, "b": {Periods: 1}}}
	mk := func(id string, alloc int64) Node {
		return Node{ID: id, Name: id, Status: NodeStatusReady, Eligible: true,
			Total: Resources{CPUMHz: 1000, MemoryMiB: 1000}, Allocated: Resources{CPUMHz: alloc, MemoryMiB: alloc}}
	}
	// Each is 35% full: either fits on the other, but not both elsewhere.
	got, _ := SelectDrains(DrainInput{Nodes: []Node{mk("a", 350), mk("b", 350)}, Idle: state, Policy: p})
	if len(got) != 1 {
		t.Fatalf("chose %d drains, want 1", len(got))
	}
}
