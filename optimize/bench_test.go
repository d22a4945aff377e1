package optimize

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"
)

// benchHiGHSLimit is how long one HiGHS solve may take in a benchmark
// before the size is reported as skipped.
const benchHiGHSLimit = 30 * time.Second

// benchProblem is a wave with noise whose covering count sweeps most of
// [0, maxReplicas], so the reachable state space is as wide as it gets.
func benchProblem(horizon, maxReplicas int) Problem {
	p := DefaultProblem()
	p.MaxReplicas = maxReplicas
	p.CurrentReplicas = maxReplicas / 2
	p.Demand = make([]float64, horizon)
	peak := p.CapacityPerReplica * float64(maxReplicas)
	for t := range p.Demand {
		wave := 0.5 + 0.4*math.Sin(2*math.Pi*float64(t)/300)
		noise := 0.05 * math.Sin(float64(t)*12.9898)
		p.Demand[t] = math.Max(0, peak*(wave+noise))
	}
	return p
}

// BenchmarkSolve runs the DP and HiGHS side by side for each horizon and
// max_replicas; scripts/bench-optimize.sh turns its output into a table.
func BenchmarkSolve(b *testing.B) {
	for _, horizon := range []int{60, 600, 3600} {
		for _, maxR := range []int{10, 100, 1000} {
			p := benchProblem(horizon, maxR)
			for _, s := range []struct {
				name   string
				solver Solver
			}{
				{"dp", DPSolver{}},
				{"highs", HiGHSSolver{Options: MIPOptions{TimeLimit: benchHiGHSLimit}}},
			} {
				b.Run(fmt.Sprintf("horizon=%d/max=%d/%s", horizon, maxR, s.name), func(b *testing.B) {
					ctx := context.Background()
					for i := 0; i < b.N; i++ {
						plan, err := s.solver.Solve(ctx, p)
						if errors.Is(err, ErrTimeLimit) {
							b.Skipf("HiGHS did not prove optimality within %v (incumbent: %v)", benchHiGHSLimit, plan.Serving != nil)
						}
						if err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		}
	}
}
