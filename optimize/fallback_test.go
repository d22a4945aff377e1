package optimize

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

type fakeSolver struct {
	plan Plan
	err  error
}

func (f fakeSolver) Solve(context.Context, Problem) (Plan, error) { return f.plan, f.err }

func newTestMetrics(t *testing.T) (*Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	return m, reg
}

func TestFallbackSolverFallsBackInTheSeedsOrder(t *testing.T) {
	p := DefaultProblem()
	p.Demand, p.CurrentReplicas = []float64{30, 30}, 3
	incumbent := Plan{Serving: []int{3, 3}, Desired: []int{3, 3}, Solver: "highs_incumbent"}
	timeLimit := fmt.Errorf("highs: %w", ErrTimeLimit)
	cases := []struct {
		name       string
		primary    fakeSolver
		secondary  Solver
		wantSolver string
		wantReason string
	}{
		{"a solved primary is used as is", fakeSolver{plan: Plan{Serving: []int{3, 3}, Solver: "highs"}}, DPSolver{}, "highs", ""},
		{"a time-limit incumbent is used", fakeSolver{plan: incumbent, err: timeLimit}, DPSolver{}, "highs_incumbent", FallbackIncumbent},
		{"a time limit without incumbent falls back to the DP", fakeSolver{err: timeLimit}, DPSolver{}, "dp", FallbackDP},
		{"any primary error falls back to the DP", fakeSolver{err: errors.New("cgo exploded")}, DPSolver{}, "dp", FallbackDP},
		{"a failing DP falls back to interpolation", fakeSolver{err: timeLimit}, fakeSolver{err: errors.New("dp down")}, "interpolation", FallbackInterpolation},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, _ := newTestMetrics(t)
			var logs bytes.Buffer
			f := &FallbackSolver{Primary: c.primary, Secondary: c.secondary, Metrics: m, Log: slog.New(slog.NewTextHandler(&logs, nil))}
			plan, err := f.Solve(context.Background(), p)
			if err != nil {
				t.Fatal(err)
			}
			if plan.Solver != c.wantSolver {
				t.Fatalf("solver %q, want %q", plan.Solver, c.wantSolver)
			}
			for _, r := range []string{FallbackIncumbent, FallbackDP, FallbackInterpolation} {
				got := testutil.ToFloat64(m.fallbacks.WithLabelValues(r))
				want := 0.0
				if r == c.wantReason || (c.wantReason == FallbackInterpolation && r == FallbackDP) {
					want = 1
				}
				if got != want {
					t.Errorf("fallbacks{reason=%q} = %v, want %v", r, got, want)
				}
			}
			if c.wantReason != "" && !strings.Contains(logs.String(), "reason="+c.wantReason) {
				t.Errorf("log %q does not mention reason %s", logs.String(), c.wantReason)
			}
		})
	}
}

func TestHiGHSTimeLimitStillYieldsAValidPlan(t *testing.T) {
	p := DefaultProblem()
	p.MaxReplicas = 100
	p.Demand = make([]float64, 600)
	for i := range p.Demand {
		p.Demand[i] = float64((i*37)%900) + 0.5
	}
	m, _ := newTestMetrics(t)
	f := NewFallbackSolver(MIPOptions{TimeLimit: time.Microsecond}, m, nil)
	plan, err := f.Solve(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if plan.Solver == "highs" {
		t.Skip("HiGHS solved 600 s within a microsecond; no fallback to observe")
	}
	if err := CheckPlan(p, plan); err != nil {
		t.Fatalf("fallback plan from %s infeasible: %v", plan.Solver, err)
	}
	total := 0.0
	for _, r := range []string{FallbackIncumbent, FallbackDP, FallbackInterpolation} {
		total += testutil.ToFloat64(m.fallbacks.WithLabelValues(r))
	}
	if total != 1 {
		t.Fatalf("%v fallbacks counted, want 1", total)
	}
}

func TestMetricsUseTheSeedsNamesOnThePassedRegistry(t *testing.T) {
	_, reg := newTestMetrics(t)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, mf := range mfs {
		got[mf.GetName()] = true
	}
	// Counters without samples are not gathered; the fallback vector is
	// pre-created, the histograms always export.
	for _, name := range []string{"optimizer_forecast_latency_seconds", "optimizer_optimization_latency_seconds", "optimizer_fallbacks_total", "optimizer_predictions_total", "optimizer_errors_total"} {
		if !got[name] {
			t.Errorf("metric %s not registered (have %v)", name, got)
		}
	}
	if _, err := NewMetrics(reg); err == nil {
		t.Fatal("registering twice on one registry must fail")
	}
}
