package nodepool

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
)

func unitTypes() []CapacityType {
	return []CapacityType{
		{InstanceType: InstanceType{Name: "small", Price: 1.0}, Provides: []int64{2}, Available: -1},
		{InstanceType: InstanceType{Name: "large", Price: 3.5, SpotPrice: 1.2}, Provides: []int64{8}, Available: -1},
	}
}

func TestGreedyChooserCoversTheShortfallCheaply(t *testing.T) {
	cases := []struct {
		name     string
		need     int64
		maxNodes int
		share    float64
		want     string
		covered  bool
	}{
		{"one unit takes one small", 1, -1, 0, "[{small false 1 1}]", true},
		{"seven units take one large over four small", 7, -1, 0, "[{large false 1 3.5}]", true},
		{"spot share one half lets every other node be spot", 16, -1, 0.5, "[{large false 1 3.5} {large true 1 1.2}]", true},
		{"node cap leaves the need uncovered", 20, 2, 0, "[{large false 2 3.5}]", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := CapacityProblem{Dims: []string{"units"}, Need: []int64{c.need}, Types: unitTypes(), MaxNodes: c.maxNodes, SpotMaxShare: c.share}
			got, err := GreedyChooser{}.Choose(context.Background(), p)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got.Launches) != c.want || got.Covered != c.covered {
				t.Fatalf("got %v covered=%v, want %s covered=%v", got.Launches, got.Covered, c.want, c.covered)
			}
			if !p.Feasible(got.Launches) {
				t.Fatalf("launches %v break the limits", got.Launches)
			}
		})
	}
}

func TestGreedyChooserRespectsInstanceTypeMaxCounts(t *testing.T) {
	types := unitTypes()
	types[1].Available = 1
	p := CapacityProblem{Dims: []string{"units"}, Need: []int64{12}, Types: types, MaxNodes: -1}
	got, _ := GreedyChooser{}.Choose(context.Background(), p)
	if !got.Covered || !p.Feasible(got.Launches) || p.Provided(got.Launches)[0] < 12 {
		t.Fatalf("got %v, want 12 units within one large", got.Launches)
	}
}

// randomProblem makes a small two-dimensional problem with random limits.
func randomProblem(r *rand.Rand) CapacityProblem {
	n := 1 + r.IntN(4)
	var types []CapacityType
	for i := range n {
		cpu, mem := int64(1000*(1+r.IntN(8))), int64(1024*(1+r.IntN(16)))
		price := float64(1+r.IntN(40)) / 10
		spot := 0.0
		if r.IntN(2) == 0 {
			spot = price * (0.2 + 0.6*r.Float64())
		}
		avail := -1
		if r.IntN(3) == 0 {
			avail = r.IntN(5)
		}
		types = append(types, CapacityType{
			InstanceType: InstanceType{Name: fmt.Sprint("t", i), Resources: Resources{CPUMHz: cpu, MemoryMiB: mem}, Price: price, SpotPrice: spot},
			Provides:     []int64{cpu, mem}, Available: avail,
		})
	}
	maxNodes := -1
	if r.IntN(3) == 0 {
		maxNodes = 1 + r.IntN(10)
	}
	return CapacityProblem{
		Dims: []string{"cpu_mhz", "memory_mib"}, Need: []int64{int64(r.IntN(20000)), int64(r.IntN(40000))},
		Types: types, MaxNodes: maxNodes, SpotMaxShare: []float64{0, 0.3, 0.5, 1}[r.IntN(4)],
	}
}

func TestGreedyChooserStaysWithinLimitsOnRandomProblems(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 500 {
		p := randomProblem(r)
		got, err := GreedyChooser{}.Choose(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		if !p.Feasible(got.Launches) {
			t.Fatalf("case %d: %v breaks the limits of %+v", i, got.Launches, p)
		}
		prov := p.Provided(got.Launches)
		if got.Covered != (prov[0] >= p.Need[0] && prov[1] >= p.Need[1]) {
			t.Fatalf("case %d: covered=%v but provided %v for need %v", i, got.Covered, prov, p.Need)
		}
	}
}
