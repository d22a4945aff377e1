package optimize

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"time"

	"github.com/lanl/highs"
)

// Row is one linear constraint Lower <= sum_k Value[k]*x[Index[k]] <= Upper.
// Use math.Inf for a one-sided row.
type Row struct {
	Lower, Upper float64
	Index        []int
	Value        []float64
}

// MIP is a small mixed-integer linear program in the minimisation sense:
//
//	minimise  Offset + sum_j Cost[j]*x[j]
//	subject to Rows, ColLower[j] <= x[j] <= ColUpper[j], x[j] integer where Integer[j].
//
// ColLower, ColUpper and Integer may be nil (meaning 0, +Inf and all
// continuous); otherwise they must have len(Cost) entries.
type MIP struct {
	Cost     []float64
	Offset   float64
	ColLower []float64
	ColUpper []float64
	Integer  []bool
	Rows     []Row
}

// MIPOptions tunes one solve. The zero value asks for a proven optimum
// (relative and absolute gap 0) without a time limit.
type MIPOptions struct {
	// TimeLimit bounds the solve; 0 means none. A context deadline that is
	// sooner wins.
	TimeLimit time.Duration
	// RelGap is HiGHS's mip_rel_gap: stop when (primal-dual)/|primal| <= RelGap.
	RelGap float64
	// AbsGap is HiGHS's mip_abs_gap.
	AbsGap float64
}

// MIPSolution is a solve's result. X has one value per column; integer
// columns are rounded to the nearest integer, since HiGHS returns them
// within its feasibility tolerance only.
type MIPSolution struct {
	X         []float64
	Objective float64
	// Status is "optimal", or "time_limit" for an incumbent returned with
	// ErrTimeLimit.
	Status string
}

var (
	// ErrInfeasible reports that the MIP has no feasible point.
	ErrInfeasible = errors.New("mip infeasible")
	// ErrUnbounded reports that the objective is unbounded below.
	ErrUnbounded = errors.New("mip unbounded")
	// ErrTimeLimit reports that the solve stopped at its time limit. The
	// returned MIPSolution then holds the best feasible point HiGHS found
	// (Status "time_limit"), or has a nil X when it found none.
	ErrTimeLimit = errors.New("mip time limit reached")
)

// SolveMIP solves m with HiGHS on a single, locked OS thread.
//
// A context deadline sooner than o.TimeLimit becomes HiGHS's time limit
// (less a small margin), so the incumbent comes back as ErrTimeLimit; if
// HiGHS overruns, SolveMIP waits up to deadlineGrace past the deadline for
// it. Cancelling ctx otherwise returns at once with ctx's error while the
// HiGHS run finishes in the background, bounded only by its time limit:
// the binding cannot interrupt HiGHS.
func SolveMIP(ctx context.Context, m MIP, o MIPOptions) (MIPSolution, error) {
	if err := m.validate(); err != nil {
		return MIPSolution{}, err
	}
	limit := o.TimeLimit
	fromDeadline := false
	if dl, ok := ctx.Deadline(); ok {
		rem := time.Until(dl)
		if rem <= 0 {
			return MIPSolution{}, fmt.Errorf("solve mip: %w", context.DeadlineExceeded)
		}
		// Stop HiGHS a little before the deadline so that its incumbent
		// comes back before ctx.Done wins the race below.
		rem -= min(rem/10, 100*time.Millisecond)
		if limit <= 0 || rem < limit {
			limit, fromDeadline = rem, true
		}
	}
	if err := ctx.Err(); err != nil {
		return MIPSolution{}, fmt.Errorf("solve mip: %w", err)
	}
	type result struct {
		sol MIPSolution
		err error
	}
	done := make(chan result, 1)
	go func() {
		// HiGHS keeps its task executor in thread-local storage; every call
		// for one model must come from the same OS thread.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		sol, err := solveLocked(m, limit, o)
		done <- result{sol, err}
	}()
	select {
	case r := <-done:
		return r.sol, r.err
	case <-ctx.Done():
	}
	if fromDeadline && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		// HiGHS checks its clock only now and then; a busy machine makes it
		// overrun. Its incumbent is worth a short wait past the deadline.
		grace := time.NewTimer(deadlineGrace)
		defer grace.Stop()
		select {
		case r := <-done:
			return r.sol, r.err
		case <-grace.C:
		}
	}
	return MIPSolution{}, fmt.Errorf("solve mip: %w", ctx.Err())
}

// deadlineGrace is how long SolveMIP waits past a context deadline for a
// HiGHS run whose time limit came from that deadline.
const deadlineGrace = 500 * time.Millisecond

func (m MIP) validate() error {
	n := len(m.Cost)
	if n == 0 {
		return errors.New("mip has no columns")
	}
	if m.ColLower != nil && len(m.ColLower) != n {
		return fmt.Errorf("mip has %d lower bounds for %d columns", len(m.ColLower), n)
	}
	if m.ColUpper != nil && len(m.ColUpper) != n {
		return fmt.Errorf("mip has %d upper bounds for %d columns", len(m.ColUpper), n)
	}
	if m.Integer != nil && len(m.Integer) != n {
		return fmt.Errorf("mip has %d integrality flags for %d columns", len(m.Integer), n)
	}
	for i, r := range m.Rows {
		if len(r.Index) != len(r.Value) {
			return fmt.Errorf("mip row %d has %d indices and %d values", i, len(r.Index), len(r.Value))
		}
		for _, j := range r.Index {
			if j < 0 || j >= n {
				return fmt.Errorf("mip row %d refers to column %d of %d", i, j, n)
			}
		}
	}
	return nil
}

func (m MIP) toHighs() (highs.Model, error) {
	n := len(m.Cost)
	hm := highs.Model{
		ColCosts: m.Cost,
		Offset:   m.Offset,
		ColLower: m.ColLower,
		ColUpper: m.ColUpper,
		VarTypes: make([]highs.VariableType, n),
	}
	if hm.ColLower == nil {
		hm.ColLower = make([]float64, n)
	}
	if hm.ColUpper == nil {
		hm.ColUpper = make([]float64, n)
		for j := range hm.ColUpper {
			hm.ColUpper[j] = math.Inf(1)
		}
	}
	for j, isInt := range m.Integer {
		if isInt {
			hm.VarTypes[j] = highs.IntegerType
		}
	}
	// The binding builds its CSR row starts from the nonzeros alone, so an
	// empty row in the middle would shift every later row; empty rows are
	// therefore left out (checked here instead), and duplicate entries are
	// summed rather than overwritten as the binding would.
	for i, r := range m.Rows {
		coef := map[int]float64{}
		for k, j := range r.Index {
			coef[j] += r.Value[k]
		}
		cols := make([]int, 0, len(coef))
		for j, v := range coef {
			if v != 0 {
				cols = append(cols, j)
			}
		}
		if len(cols) == 0 {
			if r.Lower > 0 || r.Upper < 0 {
				return highs.Model{}, fmt.Errorf("row %d has no coefficients and excludes 0: %w", i, ErrInfeasible)
			}
			continue
		}
		slices.Sort(cols)
		row := len(hm.RowLower)
		hm.RowLower, hm.RowUpper = append(hm.RowLower, r.Lower), append(hm.RowUpper, r.Upper)
		for _, j := range cols {
			hm.ConstMatrix = append(hm.ConstMatrix, highs.Nonzero{Row: row, Col: j, Val: coef[j]})
		}
	}
	if len(hm.RowLower) == 0 {
		// The binding indexes the row-value buffer at 0 unconditionally, so
		// a model without rows gets one free row.
		hm.RowLower, hm.RowUpper = []float64{math.Inf(-1)}, []float64{math.Inf(1)}
		hm.ConstMatrix = []highs.Nonzero{{Row: 0, Col: 0, Val: 1}}
	}
	return hm, nil
}

// solveLocked must run on a locked OS thread.
func solveLocked(m MIP, limit time.Duration, o MIPOptions) (MIPSolution, error) {
	hm, err := m.toHighs()
	if err != nil {
		return MIPSolution{}, err
	}
	raw, err := hm.ToRawModel()
	if err != nil {
		return MIPSolution{}, fmt.Errorf("build highs model: %w", err)
	}
	// The binding's finalizer destroys the C object as soon as raw is
	// unreachable, which can be during Solve; keep it alive until every
	// read of the C object is done.
	defer runtime.KeepAlive(raw)
	opts := []struct {
		name string
		set  func() error
	}{
		{"output_flag", func() error { return raw.SetBoolOption("output_flag", false) }},
		{"threads", func() error { return raw.SetIntOption("threads", 1) }},
		{"mip_rel_gap", func() error { return raw.SetFloat64Option("mip_rel_gap", o.RelGap) }},
		{"mip_abs_gap", func() error { return raw.SetFloat64Option("mip_abs_gap", o.AbsGap) }},
	}
	if limit > 0 {
		opts = append(opts, struct {
			name string
			set  func() error
		}{"time_limit", func() error { return raw.SetFloat64Option("time_limit", limit.Seconds()) }})
	}
	for _, op := range opts {
		if err := op.set(); err != nil {
			return MIPSolution{}, fmt.Errorf("set highs option %s: %w", op.name, err)
		}
	}

	sol, err := raw.Solve()
	var cs highs.CallStatus
	switch {
	case err == nil:
		return finish(m, sol.Status, sol.ColumnPrimal)
	case errors.As(err, &cs) && cs.IsWarning():
		// The binding drops the solution whenever Highs_run returns a
		// warning, which is how HiGHS reports a time-limit stop; read the
		// status and the incumbent back from the C object ourselves.
		st, x, ok := recoverSolution(raw)
		if !ok {
			return MIPSolution{}, fmt.Errorf("highs run ended with a warning and no readable solution: %w", err)
		}
		return finish(m, st, x)
	default:
		return MIPSolution{}, fmt.Errorf("highs run: %w", err)
	}
}

// finish turns a HiGHS outcome into a MIPSolution. The objective is
// recomputed from the rounded point so that it matches X exactly.
func finish(m MIP, st highs.ModelStatus, x []float64) (MIPSolution, error) {
	switch st {
	case highs.Optimal:
		if x == nil {
			return MIPSolution{}, errors.New("highs reported optimal without a solution")
		}
		x = roundIntegers(m, x)
		return MIPSolution{X: x, Objective: m.objective(x), Status: "optimal"}, nil
	case highs.Infeasible:
		return MIPSolution{}, ErrInfeasible
	case highs.Unbounded, highs.UnboundedOrInfeasible:
		return MIPSolution{}, ErrUnbounded
	case highs.TimeLimit:
		if x == nil {
			return MIPSolution{Status: "time_limit"}, ErrTimeLimit
		}
		x = roundIntegers(m, x)
		return MIPSolution{X: x, Objective: m.objective(x), Status: "time_limit"}, ErrTimeLimit
	default:
		return MIPSolution{}, fmt.Errorf("highs stopped with status %v", st)
	}
}

func roundIntegers(m MIP, x []float64) []float64 {
	out := make([]float64, len(m.Cost))
	copy(out, x)
	for j, isInt := range m.Integer {
		if isInt {
			out[j] = math.Round(out[j])
		}
	}
	return out
}

func (m MIP) objective(x []float64) float64 {
	v := m.Offset
	for j, c := range m.Cost {
		v += c * x[j]
	}
	return v
}
