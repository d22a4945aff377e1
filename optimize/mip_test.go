package optimize

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

func TestSolveMIPFindsTheKnapsackOptimum(t *testing.T) {
	// maximise 5a+4b+3c s.t. 2a+3b+c <= 5, 4a+b+2c <= 11, 3a+4b+2c <= 8, a,b,c >= 0 integer.
	// The LP optimum (2,0,1) is integral; objective -13.
	m := MIP{
		Cost:    []float64{-5, -4, -3},
		Integer: []bool{true, true, true},
		Rows: []Row{
			{Lower: math.Inf(-1), Upper: 5, Index: []int{0, 1, 2}, Value: []float64{2, 3, 1}},
			{Lower: math.Inf(-1), Upper: 11, Index: []int{0, 1, 2}, Value: []float64{4, 1, 2}},
			{Lower: math.Inf(-1), Upper: 8, Index: []int{0, 1, 2}, Value: []float64{3, 4, 2}},
		},
	}
	sol, err := SolveMIP(context.Background(), m, MIPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sol.Status != "optimal" || sol.Objective != -13 {
		t.Fatalf("got %+v, want objective -13", sol)
	}
	want := []float64{2, 0, 1}
	for j := range want {
		if sol.X[j] != want[j] {
			t.Fatalf("x = %v, want %v", sol.X, want)
		}
	}
}

func TestSolveMIPMatchesEnumerationOnRandomSmallPrograms(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for iter := 0; iter < 200; iter++ {
		n := 1 + rng.IntN(3)
		m := MIP{Cost: make([]float64, n), ColLower: make([]float64, n), ColUpper: make([]float64, n), Integer: make([]bool, n)}
		for j := 0; j < n; j++ {
			m.Cost[j] = float64(rng.IntN(11) - 5)
			m.ColLower[j] = float64(-rng.IntN(3))
			m.ColUpper[j] = float64(rng.IntN(4))
			m.Integer[j] = true
		}
		for r := 0; r < 1+rng.IntN(3); r++ {
			row := Row{Lower: float64(rng.IntN(7) - 4), Upper: math.Inf(1)}
			for j := 0; j < n; j++ {
				row.Index = append(row.Index, j)
				row.Value = append(row.Value, float64(rng.IntN(7)-3))
			}
			m.Rows = append(m.Rows, row)
		}
		best, found := enumerate(m)
		sol, err := SolveMIP(context.Background(), m, MIPOptions{})
		if !found {
			if !errors.Is(err, ErrInfeasible) {
				t.Fatalf("instance %d: enumeration found no point, SolveMIP gave %+v, %v", iter, sol, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("instance %d: %v (enumeration optimum %v)", iter, err, best)
		}
		if sol.Objective != best {
			t.Fatalf("instance %d: objective %v, enumeration %v", iter, sol.Objective, best)
		}
	}
}

// enumerate brute-forces an all-integer MIP with finite bounds.
func enumerate(m MIP) (float64, bool) {
	n := len(m.Cost)
	x := make([]float64, n)
	best, found := math.Inf(1), false
	var rec func(j int)
	rec = func(j int) {
		if j == n {
			for _, r := range m.Rows {
				v := 0.0
				for k, c := range r.Index {
					v += r.Value[k] * x[c]
				}
				if v < r.Lower || v > r.Upper {
					return
				}
			}
			if o := m.objective(x); o < best {
				best, found = o, true
			}
			return
		}
		for v := m.ColLower[j]; v <= m.ColUpper[j]; v++ {
			x[j] = v
			rec(j + 1)
		}
	}
	rec(0)
	return best, found
}

func TestSolveMIPReportsInfeasibility(t *testing.T) {
	m := MIP{
		Cost:     []float64{1},
		ColUpper: []float64{10},
		Integer:  []bool{true},
		Rows:     []Row{{Lower: 2.2, Upper: 2.8, Index: []int{0}, Value: []float64{1}}},
	}
	_, err := SolveMIP(context.Background(), m, MIPOptions{})
	if !errors.Is(err, ErrInfeasible) {
		t.Fatalf("err = %v, want ErrInfeasible", err)
	}
}

func TestSolveMIPReportsUnboundedness(t *testing.T) {
	m := MIP{
		Cost:     []float64{-1, 0},
		ColLower: []float64{0, 0},
		ColUpper: []float64{math.Inf(1), 1},
		Integer:  []bool{true, false},
		Rows:     []Row{{Lower: 0, Upper: math.Inf(1), Index: []int{0, 1}, Value: []float64{1, 1}}},
	}
	_, err := SolveMIP(context.Background(), m, MIPOptions{})
	if !errors.Is(err, ErrUnbounded) {
		t.Fatalf("err = %v, want ErrUnbounded", err)
	}
}

func TestSolveMIPSolvesAModelWithoutRows(t *testing.T) {
	m := MIP{Cost: []float64{1, -2}, ColLower: []float64{1, 0}, ColUpper: []float64{3, 4}, Integer: []bool{true, false}}
	sol, err := SolveMIP(context.Background(), m, MIPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sol.X[0] != 1 || sol.X[1] != 4 || sol.Objective != -7 {
		t.Fatalf("got %+v, want x=(1,4) objective -7", sol)
	}
}

func TestSolveMIPRejectsMalformedModels(t *testing.T) {
	cases := map[string]MIP{
		"no columns":          {},
		"short bounds":        {Cost: []float64{1, 2}, ColLower: []float64{0}},
		"short integrality":   {Cost: []float64{1, 2}, Integer: []bool{true}},
		"ragged row":          {Cost: []float64{1}, Rows: []Row{{Index: []int{0}}}},
		"column out of range": {Cost: []float64{1}, Rows: []Row{{Index: []int{1}, Value: []float64{1}}}},
	}
	for name, m := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := SolveMIP(context.Background(), m, MIPOptions{}); err == nil {
				t.Fatal("want an error")
			}
		})
	}
}

// hardKnapsack is a multi-dimensional knapsack HiGHS cannot close in a few
// milliseconds but finds feasible points for at once (x = 0 is feasible).
func hardKnapsack(n int) MIP {
	rng := rand.New(rand.NewPCG(7, 11))
	m := MIP{Cost: make([]float64, n), ColUpper: make([]float64, n), Integer: make([]bool, n)}
	for j := range m.Cost {
		m.Cost[j] = -float64(50 + rng.IntN(50))
		m.ColUpper[j] = 1
		m.Integer[j] = true
	}
	for r := 0; r < 8; r++ {
		row := Row{Lower: math.Inf(-1)}
		sum := 0.0
		for j := 0; j < n; j++ {
			w := float64(20 + rng.IntN(80))
			row.Index, row.Value = append(row.Index, j), append(row.Value, w)
			sum += w
		}
		row.Upper = math.Floor(sum / 2)
		m.Rows = append(m.Rows, row)
	}
	return m
}

func TestSolveMIPReturnsTheIncumbentAtTheTimeLimit(t *testing.T) {
	// HiGHS finds feasible points for this instance at once but needs far
	// longer than 300 ms to prove optimality (measured: > 5 s).
	m := hardKnapsack(200)
	sol, err := SolveMIP(context.Background(), m, MIPOptions{TimeLimit: 300 * time.Millisecond})
	if !errors.Is(err, ErrTimeLimit) {
		t.Fatalf("err = %v, want ErrTimeLimit", err)
	}
	if sol.X == nil {
		t.Fatal("time limit lost the incumbent")
	}
	if sol.Status != "time_limit" {
		t.Fatalf("status %q", sol.Status)
	}
	for i, r := range m.Rows {
		v := 0.0
		for k, j := range r.Index {
			v += r.Value[k] * sol.X[j]
		}
		if v > r.Upper+1e-6 {
			t.Fatalf("incumbent violates row %d: %v > %v", i, v, r.Upper)
		}
	}
	if sol.Objective >= 0 {
		t.Fatalf("incumbent objective %v is no better than x=0", sol.Objective)
	}
}

func TestSolveMIPTurnsTheContextDeadlineIntoATimeLimit(t *testing.T) {
	const deadline = 300 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	start := time.Now()
	sol, err := SolveMIP(ctx, hardKnapsack(200), MIPOptions{})
	el := time.Since(start)
	switch {
	case errors.Is(err, ErrTimeLimit):
		if sol.X == nil {
			t.Fatal("the deadline lost the incumbent")
		}
	case errors.Is(err, context.DeadlineExceeded):
		// HiGHS overran even the grace period (a heavily loaded machine);
		// returning on time is then all that can be asked.
	default:
		t.Fatalf("err = %v, want ErrTimeLimit or the deadline", err)
	}
	if el > deadline+deadlineGrace+200*time.Millisecond {
		t.Fatalf("solve returned %v after a %v deadline", el, deadline)
	}
}

func TestSolveMIPIsSafeForConcurrentUse(t *testing.T) {
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := MIP{Cost: []float64{1}, ColLower: []float64{float64(i)}, ColUpper: []float64{10}, Integer: []bool{true}}
			sol, err := SolveMIP(context.Background(), m, MIPOptions{})
			if err != nil {
				errs <- err
				return
			}
			if sol.X[0] != float64(i) {
				errs <- errors.New("wrong solution under concurrency")
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestSolveMIPKeepsRowsAfterAnEmptyRowAndSumsDuplicates(t *testing.T) {
	// Row 1 is empty; row 2 must still bind x0 >= 3. Row 0 lists x1 twice:
	// 1*x1 + 1*x1 <= 4, so x1 <= 2.
	m := MIP{
		Cost:     []float64{1, -1},
		ColUpper: []float64{10, 10},
		Integer:  []bool{true, true},
		Rows: []Row{
			{Lower: math.Inf(-1), Upper: 4, Index: []int{1, 1}, Value: []float64{1, 1}},
			{Lower: -1, Upper: 1},
			{Lower: 3, Upper: math.Inf(1), Index: []int{0}, Value: []float64{1}},
		},
	}
	sol, err := SolveMIP(context.Background(), m, MIPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sol.X[0] != 3 || sol.X[1] != 2 {
		t.Fatalf("x = %v, want (3, 2)", sol.X)
	}
	m.Rows[1].Lower = 0.5
	if _, err := SolveMIP(context.Background(), m, MIPOptions{}); !errors.Is(err, ErrInfeasible) {
		t.Fatalf("an empty row excluding 0 gave %v, want ErrInfeasible", err)
	}
}
