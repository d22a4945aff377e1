package nodepool

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
)

func blockedTypes() []CapacityType {
	return []CapacityType{
		{InstanceType: InstanceType{Name: "small", Resources: Resources{CPUMHz: 2000, MemoryMiB: 2048}, Price: 1}, Available: -1},
		{InstanceType: InstanceType{Name: "large", Resources: Resources{CPUMHz: 8000, MemoryMiB: 8192}, Price: 3}, Available: -1},
	}
}

func TestPlanBlockedPacksIntoTheCheapestNodes(t *testing.T) {
	cases := []struct {
		name        string
		queued      []QueuedGroup
		types       []CapacityType
		maxNodes    int
		schedulable int
		want        string
		unplaceable int
	}{
		{"eight 1000 MHz allocs fit one large for less than four small",
			[]QueuedGroup{{Job: "web", Group: "g", Count: 8, Resources: Resources{CPUMHz: 1000, MemoryMiB: 512}, Reason: ReasonCPU}},
			blockedTypes(), -1, 3, "[{large false 1 3}]", 0},
		{"one small alloc takes one small node",
			[]QueuedGroup{{Job: "web", Group: "g", Count: 1, Resources: Resources{CPUMHz: 500, MemoryMiB: 512}, Reason: ReasonMemory}},
			blockedTypes(), -1, 3, "[{small false 1 1}]", 0},
		{"fragmentation needs a node per 1200 MHz alloc on small types",
			[]QueuedGroup{{Job: "web", Group: "g", Count: 3, Resources: Resources{CPUMHz: 1200, MemoryMiB: 100}, Reason: ReasonCPU}},
			blockedTypes()[:1], -1, 3, "[{small false 3 1}]", 0},
		{"exclusive ports put one alloc per node",
			[]QueuedGroup{{Job: "lb", Group: "g", Count: 3, Resources: Resources{CPUMHz: 100, MemoryMiB: 64}, Reason: ReasonPorts}},
			blockedTypes(), -1, 3, "[{small false 3 1}]", 0},
		{"an alloc larger than every type is unplaceable",
			[]QueuedGroup{{Job: "db", Group: "g", Count: 2, Resources: Resources{CPUMHz: 16000, MemoryMiB: 512}, Reason: ReasonCPU}},
			blockedTypes(), -1, 3, "[]", 2},
		{"no eligible nodes in a live pool is unplaceable",
			[]QueuedGroup{{Job: "gpu", Group: "g", Count: 1, Resources: Resources{CPUMHz: 100, MemoryMiB: 64}, Reason: ReasonNoEligibleNodes}},
			blockedTypes(), -1, 3, "[]", 1},
		{"no eligible nodes in an empty pool scales out",
			[]QueuedGroup{{Job: "gpu", Group: "g", Count: 1, Resources: Resources{CPUMHz: 100, MemoryMiB: 64}, Reason: ReasonNoEligibleNodes}},
			blockedTypes(), -1, 0, "[{small false 1 1}]", 0},
		{"the pool maximum leaves the rest unplaceable",
			[]QueuedGroup{{Job: "web", Group: "g", Count: 4, Resources: Resources{CPUMHz: 1500, MemoryMiB: 512}, Reason: ReasonCPU}},
			blockedTypes()[:1], 2, 3, "[{small false 2 1}]", 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			plan, err := PlanBlocked(context.Background(), GreedyChooser{}, BlockedInput{
				Queued: c.queued, Types: c.types, MaxNodes: c.maxNodes, PoolSchedulable: c.schedulable,
			})
			if err != nil {
				t.Fatal(err)
			}
			got := fmt.Sprint(plan.Launches)
			if plan.Launches == nil {
				got = "[]"
			}
			n := 0
			for _, u := range plan.Unplaceable {
				n += u.Count
				if u.Why == "" {
					t.Errorf("unplaceable %+v has no reason", u)
				}
			}
			if got != c.want || n != c.unplaceable {
				t.Fatalf("launches %s with %d unplaceable, want %s with %d (%+v)", got, n, c.want, c.unplaceable, plan.Unplaceable)
			}
		})
	}
}

func TestPlanBlockedPacksIntoNodesStillLaunchingBeforeLaunchingMore(t *testing.T) {
	in := BlockedInput{
		Queued:  []QueuedGroup{{Job: "web", Group: "g", Count: 6, Resources: Resources{CPUMHz: 1000, MemoryMiB: 512}, Reason: ReasonCPU}},
		Types:   blockedTypes(),
		Pending: []Launch{{InstanceType: "small", Count: 2, UnitPrice: 1}}, MaxNodes: -1, PoolSchedulable: 1,
	}
	plan, err := PlanBlocked(context.Background(), GreedyChooser{}, in)
	if err != nil {
		t.Fatal(err)
	}
	// Two pending small nodes hold four; the other two need one more small.
	if fmt.Sprint(plan.Launches) != "[{small false 1 1}]" {
		t.Fatalf("launches %v, want one more small", plan.Launches)
	}
	in.Queued[0].Count = 4
	plan, _ = PlanBlocked(context.Background(), GreedyChooser{}, in)
	if len(plan.Launches) != 0 {
		t.Fatalf("launches %v, want none: the pending nodes hold everything", plan.Launches)
	}
}

func TestPlanBlockedPacksIntoTheFreeCapacityOfJoiningNodesBeforeLaunching(t *testing.T) {
	// A joined node with 1500 of 2000 MHz free (an allocation of its own
	// already placed) holds one 1000 MHz allocation of three.
	joining := poolNode("n", Resources{CPUMHz: 2000, MemoryMiB: 2048}, Resources{CPUMHz: 500, MemoryMiB: 256})
	in := BlockedInput{
		Queued:  []QueuedGroup{{Job: "web", Group: "g", Count: 3, Resources: Resources{CPUMHz: 1000, MemoryMiB: 512}, Reason: ReasonCPU}},
		Types:   blockedTypes(),
		Joining: []Node{joining}, MaxNodes: -1, PoolSchedulable: 2,
	}
	plan, err := PlanBlocked(context.Background(), GreedyChooser{}, in)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(plan.Launches) != "[{small false 1 1}]" {
		t.Fatalf("launches %v, want one small for the two the joining node cannot hold", plan.Launches)
	}
	in.Queued[0].Count = 1
	if plan, err = PlanBlocked(context.Background(), GreedyChooser{}, in); err != nil || len(plan.Launches) != 0 {
		t.Fatalf("launches %v (%v), want none: the joining node holds the one", plan.Launches, err)
	}
}

func TestPlanBlockedNeverOverfillsANodeAndAccountsForEveryAlloc(t *testing.T) {
	for _, c := range []struct {
		name  string
		ch    Chooser
		cases int
	}{{"greedy", GreedyChooser{}, 300}, {"highs", NewMIPChooser(nil), 60}} {
		t.Run(c.name, func(t *testing.T) { checkPlanBlockedAccounting(t, c.ch, c.cases) })
	}
}

func checkPlanBlockedAccounting(t *testing.T, ch Chooser, cases int) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := range cases {
		var queued []QueuedGroup
		total := 0
		for g := range 1 + r.IntN(4) {
			q := QueuedGroup{Job: "j", Group: fmt.Sprint("g", g), Count: 1 + r.IntN(10),
				Resources: Resources{CPUMHz: int64(100 + r.IntN(9000)), MemoryMiB: int64(64 + r.IntN(9000))},
				Reason:    []FailureReason{ReasonCPU, ReasonMemory, ReasonPorts}[r.IntN(3)]}
			total += q.Count
			queued = append(queued, q)
		}
		p := randomProblem(r)
		in := BlockedInput{Queued: queued, Types: p.Types, MaxNodes: p.MaxNodes, SpotMaxShare: p.SpotMaxShare}
		plan, err := PlanBlocked(context.Background(), ch, in)
		if err != nil {
			t.Fatal(err)
		}
		placed := 0
		for _, b := range plan.Bins {
			if !b.Used.FitsIn(b.Capacity) || b.Allocs == 0 || b.Pending {
				t.Fatalf("case %d: bin %+v overfilled or empty", i, b)
			}
			placed += b.Allocs
		}
		for _, u := range plan.Unplaceable {
			placed += u.Count
		}
		if placed != total {
			t.Fatalf("case %d: %d allocs accounted for, want %d", i, placed, total)
		}
		if !p.Feasible(plan.Launches) {
			t.Fatalf("case %d: launches %v break the limits", i, plan.Launches)
		}
	}
}
