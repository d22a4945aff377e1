package optimize

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"
)

// randomProblem draws a small instance: short horizon, few replicas,
// startup delay 0..3, and a current count that may lie outside [min, max].
func randomProblem(rng *rand.Rand) Problem {
	p := DefaultProblem()
	T := 1 + rng.IntN(12)
	p.CapacityPerReplica = []float64{1, 2.5, 10}[rng.IntN(3)]
	p.Demand = make([]float64, T)
	for t := range p.Demand {
		if rng.IntN(5) > 0 {
			p.Demand[t] = math.Round(rng.Float64()*8*p.CapacityPerReplica*100) / 100
		}
	}
	p.MinReplicas = rng.IntN(3)
	p.MaxReplicas = p.MinReplicas + rng.IntN(7)
	p.CurrentReplicas = rng.IntN(p.MaxReplicas + 4)
	p.MaxScaleUp = rng.IntN(4)
	p.MaxScaleDown = rng.IntN(4)
	p.StartupDelay = rng.IntN(4)
	p.ReplicaCost = []float64{1, 0.3, 2.7}[rng.IntN(3)]
	p.Penalty = []float64{1, 0, 0.2, 5}[rng.IntN(4)]
	p.StartupCost = []float64{0.5, 0, 1.3}[rng.IntN(3)]
	p.ShutdownCost = []float64{0.3, 0, 0.9}[rng.IntN(3)]
	p.ExtraPenalty = []float64{10, 0, 2}[rng.IntN(3)]
	return p
}

func relDiff(a, b float64) float64 {
	return math.Abs(a-b) / math.Max(1, math.Max(math.Abs(a), math.Abs(b)))
}

func TestDPAndHiGHSReachTheSameOptimumOnRandomInstances(t *testing.T) {
	n := 1000
	if testing.Short() {
		n = 200
	}
	rng := rand.New(rand.NewPCG(42, 4242))
	ctx := context.Background()
	for i := 0; i < n; i++ {
		p := randomProblem(rng)
		dp, err := DPSolver{}.Solve(ctx, p)
		if err != nil {
			t.Fatalf("instance %d %+v: dp: %v", i, p, err)
		}
		hs, err := HiGHSSolver{}.Solve(ctx, p)
		if err != nil {
			t.Fatalf("instance %d %+v: highs: %v", i, p, err)
		}
		for name, plan := range map[string]Plan{"dp": dp, "highs": hs} {
			if err := CheckPlan(p, plan); err != nil {
				t.Fatalf("instance %d %+v: %s plan %v infeasible: %v", i, p, name, plan.Serving, err)
			}
		}
		if d := relDiff(dp.Objective, hs.Objective); d > 1e-9 {
			t.Fatalf("instance %d %+v:\ndp    %v %v\nhighs %v %v", i, p, dp.Objective, dp.Serving, hs.Objective, hs.Serving)
		}
	}
}

func TestDPMatchesExhaustiveSearchOnTinyInstances(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	for i := 0; i < 500; i++ {
		p := randomProblem(rng)
		p.Demand = p.Demand[:min(len(p.Demand), 5)]
		dp, err := DPSolver{}.Solve(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		best := exhaustive(p)
		if relDiff(dp.Objective, best) > 1e-12 {
			t.Fatalf("instance %d %+v: dp %v (%v), exhaustive %v", i, p, dp.Objective, dp.Serving, best)
		}
	}
}

// exhaustive tries every serving trajectory within the bounds.
func exhaustive(p Problem) float64 {
	lo, hi := p.bounds()
	T := len(p.Demand)
	s := make([]int, T)
	best := math.Inf(1)
	var rec func(t int)
	rec = func(t int) {
		if t == T {
			plan := Plan{Serving: s}
			if CheckPlan(p, plan) == nil {
				best = math.Min(best, Objective(p, plan))
			}
			return
		}
		for v := lo[t]; v <= hi[t]; v++ {
			s[t] = v
			rec(t + 1)
		}
	}
	rec(0)
	return best
}

func TestHiGHSObjectiveAgreesWithTheSharedObjective(t *testing.T) {
	// The MILP's own objective must equal Objective() on its plan, or the
	// two solvers would be optimising different things.
	rng := rand.New(rand.NewPCG(9, 9))
	for i := 0; i < 100; i++ {
		p := randomProblem(rng)
		sol, err := SolveMIP(context.Background(), buildMIP(p), MIPOptions{})
		if err != nil {
			t.Fatal(err)
		}
		serving := make([]int, len(p.Demand))
		for t := range serving {
			serving[t] = int(sol.X[t*colsPerSecond+colServing])
		}
		// sla comes back within HiGHS's feasibility tolerance (1e-7), not exact.
		if got := Objective(p, Plan{Serving: serving}); relDiff(got, sol.Objective) > 1e-6 {
			t.Fatalf("instance %d: MILP objective %v, Objective() %v", i, sol.Objective, got)
		}
	}
}

func TestDPAndHiGHSAgreeOnTheOneMinuteBenchmarkInstances(t *testing.T) {
	if testing.Short() {
		t.Skip("HiGHS takes ~100 ms per instance")
	}
	for _, maxR := range []int{10, 100, 1000} {
		p := benchProblem(60, maxR)
		dp, err := DPSolver{}.Solve(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		hs, err := HiGHSSolver{}.Solve(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		if relDiff(dp.Objective, hs.Objective) > 1e-9 {
			t.Fatalf("max %d: dp %v, highs %v", maxR, dp.Objective, hs.Objective)
		}
	}
}

func TestDPRefusesInstancesBeyondItsStateLimitInsteadOfExhaustingMemory(t *testing.T) {
	p := DefaultProblem()
	p.Demand = []float64{1, 1}
	p.MaxReplicas, p.MaxScaleUp = 1_000_000_000, 1_000_000_000
	if _, err := (DPSolver{}).Solve(context.Background(), p); err == nil {
		t.Fatal("want an error for a billion states")
	}
}

// A ramp limit larger than any count ("no limit" written as a huge
// number) never binds: the DP must plan as HiGHS does, not overflow the
// bounds it derives from it.
func TestDPAndHiGHSAgreeWhenTheRampLimitsAreHuge(t *testing.T) {
	for _, lim := range []int{math.MaxInt, math.MaxInt / 2, math.MaxInt / 3600, 1 << 40} {
		for _, cur := range []int{1, 30} {
			p := DefaultProblem()
			p.Demand = []float64{50, 50, 50, 5}
			p.MaxScaleUp, p.MaxScaleDown = lim, lim
			p.CurrentReplicas = cur
			p.StartupDelay = 1
			dp, err := DPSolver{}.Solve(context.Background(), p)
			if err != nil {
				t.Errorf("limit %d, current %d: dp: %v", lim, cur, err)
				continue
			}
			hs, err := HiGHSSolver{}.Solve(context.Background(), p)
			if err != nil {
				t.Fatalf("limit %d, current %d: highs: %v", lim, cur, err)
			}
			for name, plan := range map[string]Plan{"dp": dp, "highs": hs} {
				if err := CheckPlan(p, plan); err != nil {
					t.Errorf("limit %d, current %d: %s plan %v: %v", lim, cur, name, plan.Serving, err)
				}
			}
			if relDiff(dp.Objective, hs.Objective) > 1e-9 {
				t.Errorf("limit %d, current %d: dp %v %v, highs %v %v", lim, cur, dp.Objective, dp.Serving, hs.Objective, hs.Serving)
			}
		}
	}
}
