package nodepool

import (
	"context"
	"math/rand/v2"
	"testing"
)

func TestMIPChooserAgreesWithGreedyOnSmallCases(t *testing.T) {
	cases := []struct {
		name  string
		need  int64
		share float64
	}{
		{"one unit", 1, 0},
		{"seven units", 7, 0},
		{"eight units all spot allowed", 8, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := CapacityProblem{Dims: []string{"units"}, Need: []int64{c.need}, Types: unitTypes(), MaxNodes: -1, SpotMaxShare: c.share}
			g, _ := GreedyChooser{}.Choose(context.Background(), p)
			h, err := NewMIPChooser(nil).Choose(context.Background(), p)
			if err != nil {
				t.Fatal(err)
			}
			if h.Method != "highs" {
				t.Fatalf("method %q, want highs", h.Method)
			}
			if LaunchCost(h.Launches) != LaunchCost(g.Launches) {
				t.Fatalf("highs %v costs %.2f, greedy %v costs %.2f", h.Launches, LaunchCost(h.Launches), g.Launches, LaunchCost(g.Launches))
			}
		})
	}
}

func TestMIPChooserNeverCostsMoreThanGreedy(t *testing.T) {
	if testing.Short() {
		t.Skip("solves a few hundred MIPs")
	}
	r := rand.New(rand.NewPCG(5, 6))
	ch := NewMIPChooser(nil)
	better := 0
	for i := range 200 {
		p := randomProblem(r)
		g, _ := GreedyChooser{}.Choose(context.Background(), p)
		h, err := ch.Choose(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		if !p.Feasible(h.Launches) {
			t.Fatalf("case %d: highs %v breaks the limits", i, h.Launches)
		}
		if g.Covered && !h.Covered {
			t.Fatalf("case %d: greedy covered the need but highs did not", i)
		}
		if !g.Covered {
			continue
		}
		prov := p.Provided(h.Launches)
		for d := range prov {
			if prov[d] < p.Need[d] {
				t.Fatalf("case %d: highs %v provides %v for need %v", i, h.Launches, prov, p.Need)
			}
		}
		hc, gc := LaunchCost(h.Launches), LaunchCost(g.Launches)
		if hc > gc+1e-6 {
			t.Fatalf("case %d: highs %v costs %.4f > greedy %v %.4f", i, h.Launches, hc, g.Launches, gc)
		}
		if hc < gc-1e-6 {
			better++
		}
	}
	t.Logf("highs cheaper than greedy in %d of 200 random problems", better)
}

func TestMIPChooserMixesTypesWhereGreedyCannot(t *testing.T) {
	// 16 units, half spot: two small on-demand and two spot large (4.40)
	// beat greedy's one large of each (4.70).
	p := CapacityProblem{Dims: []string{"units"}, Need: []int64{16}, Types: unitTypes(), MaxNodes: -1, SpotMaxShare: 0.5}
	h, err := NewMIPChooser(nil).Choose(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if got := LaunchCost(h.Launches); got > 4.4+1e-9 || !p.Feasible(h.Launches) {
		t.Fatalf("highs chose %v costing %.2f, want 4.40 within limits", h.Launches, got)
	}
}

func TestMIPChooserFallsBackWhenTheNeedCannotBeCovered(t *testing.T) {
	p := CapacityProblem{Dims: []string{"units"}, Need: []int64{100}, Types: unitTypes(), MaxNodes: 2}
	h, err := NewMIPChooser(nil).Choose(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if h.Covered || h.Method != "greedy" || LaunchCount(h.Launches) != 2 {
		t.Fatalf("got %+v, want greedy's partial two nodes", h)
	}
}
