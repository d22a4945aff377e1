package nodepool

import (
	"testing"
	"time"
)

// The pool's sums of free CPU and free memory can both cover an idle
// node's allocations while no node that stays has both (one with only CPU
// free, another with only memory free): its work would have nowhere to go.
func TestAnIdleNodeIsNotDrainedWhenNoRemainingNodeHasRoomForAnyOfItsAllocations(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	pol := IdlePolicy{CPUBelow: 0.4, MemoryBelow: 0.4, Periods: 1, Period: time.Minute}
	cap4 := Resources{CPUMHz: 4000, MemoryMiB: 4000}
	nodes := []Node{
		{ID: "x", Name: "x", Status: NodeStatusReady, Eligible: true, Total: cap4, Allocated: Resources{CPUMHz: 1000, MemoryMiB: 1000}},
		// Memory full: no allocation fits here.
		{ID: "y", Name: "y", Status: NodeStatusReady, Eligible: true, Total: cap4, Allocated: Resources{CPUMHz: 1000, MemoryMiB: 4000}},
		// CPU full: no allocation fits here.
		{ID: "z", Name: "z", Status: NodeStatusReady, Eligible: true, Total: cap4, Allocated: Resources{CPUMHz: 4000, MemoryMiB: 1000}},
	}
	idle := IdleState{Nodes: map[string]NodeIdle{"x": {IdleSince: now.Add(-5 * time.Minute), LastSeen: now, Periods: 5}}}
	drains, why := SelectDrains(DrainInput{Nodes: nodes, Idle: idle, Policy: DrainPolicy{MaxFraction: 0.5, Idle: pol}})
	if len(drains) != 0 {
		t.Fatalf("drained %s (%q): its 1000 MHz / 1000 MiB of allocations fit on neither y (0 MiB free) nor z (0 MHz free)", drains[0].Node.ID, why)
	}
}
