package nodepool

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestDecideGivesHeadroomPrecedenceOverScaleDown(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	p := testPool()
	p.Min = 0
	p.ScaleDownMaxFraction = 1
	idleAll := func(nodes []Node) IdleState {
		s := IdleState{Nodes: map[string]NodeIdle{}}
		for _, n := range nodes {
			s.Nodes[n.ID] = NodeIdle{Periods: p.Idle.Periods}
		}
		return s
	}
	// Three idle nodes with 7 free units each; draining one loses its 7
	// and its allocations take 1 more elsewhere.
	nodes := []Node{unitsNode("a", 7), unitsNode("b", 7), unitsNode("c", 7)}
	cases := []struct {
		name       string
		required   int
		pending    []Entry
		wantOut    bool
		wantDrains bool
		wantReason string
	}{
		{"shortfall scales out and drains nothing", 25, nil, true, false, "headroom 21+0 pending of 25 units: 4 short"},
		{"no headroom configured drains idle nodes", 0, nil, false, true, "draining"},
		{"enough headroom still drains", 13, nil, false, true, "draining"},
		{"one unit less after the drain keeps every node", 14, nil, false, false, "below the required 14"},
		{"launch in flight covers the shortfall and blocks drains", 25,
			[]Entry{{ID: "l", Pool: "web", Kind: KindScaleOut, Phase: PhaseLaunched, At: now, InstanceType: "small", Count: 1, KnownNodes: []string{"a", "b", "c"}}},
			false, false, "waiting for 1 launched nodes to join"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := p
			p.Headroom = Headroom{Unit: unit, Units: c.required}
			d, err := Decide(context.Background(), GreedyChooser{}, DecideInput{Pool: p, Nodes: nodes, Idle: idleAll(nodes), Pending: c.pending, Now: now})
			if err != nil {
				t.Fatal(err)
			}
			if (len(d.ScaleOut) > 0) != c.wantOut || (len(d.Drains) > 0) != c.wantDrains || !strings.Contains(d.Reason, c.wantReason) {
				t.Fatalf("decision %+v: scale out %v drains %v reason %q; want %v %v %q",
					d, d.ScaleOut, d.Drains, d.Reason, c.wantOut, c.wantDrains, c.wantReason)
			}
		})
	}
}

func TestDecideRespectsPoolMaxAndInstanceTypeMax(t *testing.T) {
	p := testPool()
	p.Max = 4
	p.InstanceTypes = p.InstanceTypes[:1]
	p.InstanceTypes[0].Max = 3
	p.Headroom = Headroom{Unit: unit, Units: 40}
	nodes := []Node{unitsNode("a", 0), unitsNode("b", 0)} // two small already
	d, err := Decide(context.Background(), GreedyChooser{}, DecideInput{Pool: p, Nodes: nodes, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if LaunchCount(d.ScaleOut) != 1 || !strings.Contains(d.Reason, "prevent covering") {
		t.Fatalf("decision %+v, want exactly one more small (type max 3) and a note", d)
	}
}

func TestAScaleOutCountsItsNodesUntilTheyAreReadyAndSettled(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	p := testPool()
	small := Resources{CPUMHz: 4000, MemoryMiB: 2048}
	known := poolNode("a", small, small)
	initializing := Node{ID: "n", NodePool: "web", InstanceType: "small", Status: NodeStatusInitializing, Total: small}
	ready := poolNode("n", small, Resources{})
	down := initializing
	down.Status = NodeStatusDown
	launched := Entry{ID: "l", Pool: "web", Kind: KindScaleOut, Phase: PhaseLaunched, At: now.Add(-time.Minute),
		InstanceType: "small", Count: 1, KnownNodes: []string{"a"}}
	joined := launched
	joined.Phase, joined.JoinedNodes = PhaseJoined, []string{"n"}
	cases := []struct {
		name          string
		entry         Entry
		nodes         []Node
		now           time.Time
		wantLaunching int
		wantJoining   int
		wantStep      string
	}{
		{"a launched node not yet registered is launching", launched, []Node{known}, now, 1, 0, ""},
		{"a registered node still initializing is joining", launched, []Node{known, initializing}, now, 0, 1, ""},
		{"a registered node that went down holds no work", launched, []Node{known, down}, now, 0, 0, ""},
		{"a ready node starts the settle", launched, []Node{known, ready}, now, 0, 1, StepJoined},
		{"a settling node is joining", withAt(joined, now.Add(-JoinSettle/2)), []Node{known, ready}, now, 0, 1, ""},
		{"the settle over closes the scale-out", withAt(joined, now.Add(-JoinSettle-time.Second)), []Node{known, ready}, now, 0, 0, StepClose},
		{"a node never ready closes it after the grace", launched, []Node{known, initializing}, now.Add(p.ScaleOutGrace), 0, 0, StepClose},
		{"a node that never registered closes it after the grace", launched, []Node{known}, now.Add(p.ScaleOutGrace), 0, 0, StepClose},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := observe(DecideInput{Pool: p, Nodes: c.nodes, Pending: []Entry{c.entry}, Now: c.now})
			step := ""
			if len(o.steps) == 1 {
				step = o.steps[0].Action
			} else if len(o.steps) > 1 {
				t.Fatalf("steps %+v, want at most one", o.steps)
			}
			if o.launchingNodes() != c.wantLaunching || len(o.joining) != c.wantJoining || step != c.wantStep {
				t.Fatalf("launching %d, joining %d, step %q; want %d, %d, %q", o.launchingNodes(), len(o.joining), step,
					c.wantLaunching, c.wantJoining, c.wantStep)
			}
			if step == StepJoined && !slices.Equal(o.steps[0].Entry.JoinedNodes, []string{"n"}) {
				t.Fatalf("joined step names %v, want [n]", o.steps[0].Entry.JoinedNodes)
			}
		})
	}
}

func withAt(e Entry, at time.Time) Entry {
	e.At = at
	return e
}

func TestALaunchedNodeThatRegisteredButIsNotYetReadyOrEligibleCountsAsPendingHeadroom(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	p := testPool()
	p.Min = 0
	// Free 4 units, 6 wanted; a small node (4 units) was launched for it.
	p.Headroom = Headroom{Unit: unit, Units: 6}
	launched := Entry{ID: "l", Pool: "web", Kind: KindScaleOut, Phase: PhaseLaunched, At: now.Add(-8 * time.Second),
		InstanceType: "small", Count: 1, KnownNodes: []string{"a"}}
	small := Resources{CPUMHz: 4000, MemoryMiB: 2048}
	for _, tc := range []struct {
		name string
		node Node
	}{
		{"registered, status not reported yet", Node{ID: "n", NodePool: "web", InstanceType: "small", Total: small}},
		{"ready but not yet eligible", Node{ID: "n", NodePool: "web", InstanceType: "small", Status: NodeStatusReady, Total: small}},
		{"initializing, resources not reported yet", Node{ID: "n", NodePool: "web", InstanceType: "small", Status: NodeStatusInitializing}},
		{"ready and eligible, resources not reported yet", Node{ID: "n", NodePool: "web", InstanceType: "small", Status: NodeStatusReady, Eligible: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Decide(context.Background(), GreedyChooser{}, DecideInput{Pool: p, Nodes: []Node{unitsNode("a", 4), tc.node}, Pending: []Entry{launched}, Now: now})
			if err != nil {
				t.Fatal(err)
			}
			if len(d.ScaleOut) > 0 || d.Headroom.Free+d.Headroom.Pending < 6 {
				t.Fatalf("headroom %d+%d pending, scale out %v (%s); want the launched node's units pending and no second launch",
					d.Headroom.Free, d.Headroom.Pending, d.ScaleOut, d.Reason)
			}
		})
	}
}
