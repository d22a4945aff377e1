package optimize_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/nomadscalerd/nomadscalerd/optimize"
)

// Choose how many of two instance types to run: at least 10 CPU units and
// 24 GiB, type 0 (2 CPU, 4 GiB) costs 3, type 1 (4 CPU, 16 GiB) costs 8.
func ExampleSolveMIP() {
	m := optimize.MIP{
		Cost:    []float64{3, 8},
		Integer: []bool{true, true}, // ColLower/ColUpper nil: 0 and +Inf
		Rows: []optimize.Row{
			{Lower: 10, Upper: math.Inf(1), Index: []int{0, 1}, Value: []float64{2, 4}},
			{Lower: 24, Upper: math.Inf(1), Index: []int{0, 1}, Value: []float64{4, 16}},
		},
	}
	sol, err := optimize.SolveMIP(context.Background(), m, optimize.MIPOptions{TimeLimit: time.Second})
	switch {
	case errors.Is(err, optimize.ErrInfeasible):
		fmt.Println("no mix fits")
	case errors.Is(err, optimize.ErrTimeLimit) && sol.X != nil:
		fmt.Println("best found in time:", sol.X)
	case err != nil:
		fmt.Println("error:", err)
	default:
		fmt.Println(sol.Status, sol.X, sol.Objective)
	}
	// Output: optimal [3 1] 17
}
