package backtest

import (
	"context"
	"testing"
)

// A group steps from 8 replicas (one node) to 40 (five nodes) at second
// 600 and stays there.
func stepCounts() []int {
	counts := make([]int, 1800)
	for t := range counts {
		counts[t] = 8
		if t >= 600 {
			counts[t] = 40
		}
	}
	return counts
}

func TestAReactivePoolLeavesAStepPendingForANodesBootTime(t *testing.T) {
	cfg := DefaultPoolSimConfig()
	r, err := SimulatePool(context.Background(), "reactive", stepCounts(), nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// 32 replicas wait for four nodes that boot in 180 s.
	if want := int64(32 * cfg.Boot); r.PendingAllocationSeconds != want {
		t.Fatalf("pending %d allocation-seconds, want %d (32 replicas for the %d s boot)", r.PendingAllocationSeconds, want, cfg.Boot)
	}
	if r.Launches != 4 || r.PeakNodes != 5 {
		t.Fatalf("launched %d nodes, peak %d; want 4 launched, 5 at the peak", r.Launches, r.PeakNodes)
	}
}

func TestAPredictivePoolThatSeesTheStepALeadTimeAheadHasNothingPending(t *testing.T) {
	cfg := DefaultPoolSimConfig()
	cfg.LeadTime = 200
	counts := stepCounts()
	peaks := make([]int, len(counts))
	for t := range peaks {
		peaks[t] = counts[t]
		if t+cfg.LeadTime >= 600 {
			peaks[t] = 40
		}
	}
	p, err := SimulatePool(context.Background(), "predictive", counts, peaks, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if p.PendingAllocationSeconds != 0 {
		t.Fatalf("pending %d allocation-seconds, want 0: the nodes were launched before the step", p.PendingAllocationSeconds)
	}
	r, err := SimulatePool(context.Background(), "reactive", counts, nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// The early nodes cost at most the lead time (plus the interval the
	// launch waits for) each.
	if extra := p.NodeHours - r.NodeHours; extra <= 0 || extra > 4*float64(cfg.LeadTime+cfg.Interval)/3600 {
		t.Fatalf("predictive pool %.3f node-hours against reactive %.3f: want more, by at most 4 nodes x the lead time", p.NodeHours, r.NodeHours)
	}
}

func TestAPoolDrainsIdleNodesAfterDemandFallsButNeverBelowItsMinimum(t *testing.T) {
	cfg := DefaultPoolSimConfig()
	counts := make([]int, 3600)
	for t := range counts {
		counts[t] = 40
		if t >= 600 {
			counts[t] = 1
		}
	}
	r, err := SimulatePool(context.Background(), "reactive", counts, nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r.Drains != 4 {
		t.Fatalf("drained %d nodes, want 4 (5 down to the minimum 1, one a round under the 10%% cap)", r.Drains)
	}
}

func TestPoolSimulationRejectsPeaksOfAnotherLength(t *testing.T) {
	if _, err := SimulatePool(context.Background(), "x", []int{1, 2}, []int{1}, DefaultPoolSimConfig()); err == nil {
		t.Fatal("peaks of another length accepted")
	}
}
