package nodepool

import (
	"context"
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
