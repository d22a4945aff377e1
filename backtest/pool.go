package backtest

import (
	"context"
	"fmt"
	"time"

	"github.com/nomadscalerd/nomadscalerd/nodepool"
)

// PoolSimConfig is the node pool a job group's replicas run on in
// SimulatePool.
type PoolSimConfig struct {
	// Replica is what one replica is allocated.
	Replica nodepool.Resources
	// Node is the pool's one instance type.
	Node nodepool.InstanceType
	// Boot is the seconds from a launch to the node being ready.
	Boot int
	// Interval is the seconds between pool reconciles (--pool-interval).
	Interval int
	// LeadTime makes the pool predictive (seconds; 0: reactive).
	LeadTime int
	// Min and Max bound the pool's nodes.
	Min, Max int
}

// DefaultPoolSimConfig is a pool of 4-core, 8 GiB nodes booting in 3
// minutes, for replicas of half a core and 256 MiB (8 to a node), reconciled
// every 10 s as the daemon does.
func DefaultPoolSimConfig() PoolSimConfig {
	return PoolSimConfig{
		Replica:  nodepool.Resources{CPUMHz: 500, MemoryMiB: 256},
		Node:     nodepool.InstanceType{Name: "node", Resources: nodepool.Resources{CPUMHz: 4000, MemoryMiB: 8192}, Price: 1},
		Boot:     180,
		Interval: 10,
		Min:      1,
		Max:      1000,
	}
}

// PoolResult is one pool's replay.
type PoolResult struct {
	Pool string `json:"pool"`
	// PendingAllocationSeconds sums, over seconds, the replicas asked for
	// that no ready node could hold.
	PendingAllocationSeconds int64   `json:"pending_allocation_seconds"`
	NodeHours                float64 `json:"node_hours"`
	Launches                 int     `json:"launches"`
	Drains                   int     `json:"drains"`
	PeakNodes                int     `json:"peak_nodes"`
}

type simNode struct {
	id      string
	readyAt int
	launch  int // index of the launch that brought it
}

// SimulatePool replays a job group's replica counts (counts[t], e.g. a
// strategy's Requested) on a simulated node pool driven by the daemon's own
// pool decisions: every Interval nodepool.Decide (headroom, min, idle
// drains under the 10% cap, and with peaks the planned allocations of a
// predictive pool), and every second with replicas that fit no ready node
// nodepool.PlanBlocked, as the runner does for blocked evaluations.
// peaks[t] is the plan's highest count within the lead time as known at
// second t (nil for a reactive pool). Replicas are placed first-fit on
// ready nodes, oldest first; a launched node costs from its launch; a
// drained node is gone at once and its replicas are placed anew.
func SimulatePool(ctx context.Context, name string, counts, peaks []int, cfg PoolSimConfig) (PoolResult, error) {
	res := PoolResult{Pool: name}
	if peaks != nil && len(peaks) != len(counts) {
		return res, fmt.Errorf("pool simulation: %d peaks for %d seconds", len(peaks), len(counts))
	}
	pool := nodepool.Pool{
		Name: name, Min: cfg.Min, Max: cfg.Max,
		Idle: nodepool.IdlePolicy{CPUBelow: nodepool.DefaultIdleBelow, MemoryBelow: nodepool.DefaultIdleBelow,
			Periods: nodepool.DefaultIdlePeriods, Period: nodepool.DefaultIdlePeriod},
		ScaleDownMaxFraction: nodepool.DefaultScaleDownMaxFraction,
		InstanceTypes:        []nodepool.InstanceType{cfg.Node},
		ScaleOutGrace:        nodepool.DefaultScaleOutGrace,
		LeadTime:             time.Duration(cfg.LeadTime) * time.Second,
	}
	epoch := time.Unix(0, 0).UTC()
	at := func(t int) time.Time { return epoch.Add(time.Duration(t) * time.Second) }
	var nodes []simNode
	seq := 0
	launches := 0
	launch := func(t, n int) {
		launches++
		res.Launches += n
		for range n {
			seq++
			nodes = append(nodes, simNode{id: fmt.Sprintf("n%06d", seq), readyAt: t + cfg.Boot, launch: launches})
		}
	}
	for range cfg.Min {
		seq++
		nodes = append(nodes, simNode{id: fmt.Sprintf("n%06d", seq)})
	}
	perNode := min(cfg.Node.Resources.CPUMHz/max(cfg.Replica.CPUMHz, 1), cfg.Node.Resources.MemoryMiB/max(cfg.Replica.MemoryMiB, 1))
	if perNode < 1 {
		return res, fmt.Errorf("pool simulation: a replica does not fit on a node")
	}
	idle := nodepool.IdleState{Nodes: map[string]nodepool.NodeIdle{}}
	var nodeSeconds int64
	for t, want := range counts {
		if t%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return res, err
			}
		}
		// Place the replicas first-fit on ready nodes, oldest first.
		var ready []nodepool.Node
		var booting []nodepool.Launch
		byLaunch := map[int]int{}
		left := want
		for _, n := range nodes {
			if n.readyAt > t {
				byLaunch[n.launch]++
				continue
			}
			k := min(left, int(perNode))
			left -= k
			alloc := nodepool.Resources{CPUMHz: int64(k) * cfg.Replica.CPUMHz, MemoryMiB: int64(k) * cfg.Replica.MemoryMiB}
			ready = append(ready, nodepool.Node{ID: n.id, Name: n.id, InstanceType: cfg.Node.Name, Status: nodepool.NodeStatusReady,
				Eligible: true, Total: cfg.Node.Resources, Allocated: alloc})
		}
		for _, c := range byLaunch {
			booting = append(booting, nodepool.Launch{InstanceType: cfg.Node.Name, Count: c})
		}
		res.PendingAllocationSeconds += int64(left)
		nodeSeconds += int64(len(nodes))
		res.PeakNodes = max(res.PeakNodes, len(nodes))

		if left > 0 {
			// Blocked allocations: scaled out within the second, packed
			// first into nodes still booting.
			plan, err := nodepool.PlanBlocked(ctx, nodepool.GreedyChooser{}, nodepool.BlockedInput{
				Queued:          []nodepool.QueuedGroup{{Job: "job", Group: "group", Count: left, Resources: cfg.Replica}},
				Types:           []nodepool.CapacityType{{InstanceType: cfg.Node, Available: -1}},
				MaxNodes:        max(cfg.Max-len(nodes), 0),
				PoolSchedulable: len(ready),
				Pending:         booting,
			})
			if err != nil {
				return res, fmt.Errorf("pool simulation at second %d: %w", t, err)
			}
			if n := nodepool.LaunchCount(plan.Launches); n > 0 {
				launch(t, n)
			}
		}
		if t%cfg.Interval != 0 {
			continue
		}
		idle = nodepool.UpdateIdle(idle, pool.Idle, nodepool.Observe(ready), at(t))
		known := make([]string, 0, len(nodes))
		for _, n := range nodes {
			known = append(known, n.id)
		}
		var pending []nodepool.Entry
		for _, b := range booting {
			pending = append(pending, nodepool.Entry{ID: "launch", Pool: name, Kind: nodepool.KindScaleOut, Phase: nodepool.PhaseLaunched,
				At: at(t), InstanceType: b.InstanceType, Count: b.Count, KnownNodes: known})
		}
		in := nodepool.DecideInput{Pool: pool, Nodes: ready, Idle: idle, Pending: pending, Now: at(t)}
		if peaks != nil {
			in.Planned = nodepool.PlannedAllocations([]nodepool.PlannedGroup{{Job: "job", Group: "group", Current: want, Peak: peaks[t], Resources: cfg.Replica}})
		}
		d, err := nodepool.Decide(ctx, nodepool.GreedyChooser{}, in)
		if err != nil {
			return res, fmt.Errorf("pool simulation at second %d: %w", t, err)
		}
		if n := nodepool.LaunchCount(d.ScaleOut); n > 0 {
			launch(t, n)
		}
		if len(d.Drains) > 0 {
			gone := map[string]bool{}
			for _, dr := range d.Drains {
				gone[dr.NodeID] = true
			}
			kept := nodes[:0]
			for _, n := range nodes {
				if !gone[n.id] {
					kept = append(kept, n)
				}
			}
			nodes = kept
			res.Drains += len(d.Drains)
		}
	}
	res.NodeHours = float64(nodeSeconds) / 3600
	return res, nil
}
