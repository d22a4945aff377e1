package optimize

import (
	"context"
	"math"
	"slices"
	"testing"
)

func TestDefaultProblemHasTheSeedsDefaults(t *testing.T) {
	p := DefaultProblem()
	got := []float64{p.Penalty, p.StartupCost, p.ShutdownCost, float64(p.MaxScaleUp), float64(p.MaxScaleDown), p.ReplicaCost}
	want := []float64{1.0, 0.5, 0.3, 2, 2, 1.0}
	if !slices.Equal(got, want) {
		t.Fatalf("penalty, startup, shutdown, up, down, replica cost = %v, want %v", got, want)
	}
	if p.ExtraPenalty <= 0 || p.CapacityPerReplica <= 0 {
		t.Fatalf("extra penalty %v and capacity %v must be positive", p.ExtraPenalty, p.CapacityPerReplica)
	}
}

func TestReplicaCostPricesCPUAndMemoryAndDefaultsToOne(t *testing.T) {
	cases := []struct {
		cpu, mem, pc, pm, want float64
	}{
		{500, 256, 0, 0, 1.0},
		{500, 256, 0.001, 0, 0.5},
		{500, 256, 0, 0.002, 0.512},
		{500, 256, 0.001, 0.002, 1.012},
	}
	for _, c := range cases {
		if got := ReplicaCost(c.cpu, c.mem, c.pc, c.pm); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("ReplicaCost(%v, %v, %v, %v) = %v, want %v", c.cpu, c.mem, c.pc, c.pm, got, c.want)
		}
	}
}

func TestProblemValidateRejectsEachBadField(t *testing.T) {
	base := DefaultProblem()
	base.Demand = []float64{1}
	cases := map[string]func(*Problem){
		"empty demand":        func(p *Problem) { p.Demand = nil },
		"negative demand":     func(p *Problem) { p.Demand = []float64{-1} },
		"NaN demand":          func(p *Problem) { p.Demand = []float64{math.NaN()} },
		"zero capacity":       func(p *Problem) { p.CapacityPerReplica = 0 },
		"min above max":       func(p *Problem) { p.MinReplicas, p.MaxReplicas = 3, 2 },
		"negative current":    func(p *Problem) { p.CurrentReplicas = -1 },
		"negative scale up":   func(p *Problem) { p.MaxScaleUp = -1 },
		"negative delay":      func(p *Problem) { p.StartupDelay = -1 },
		"negative cost":       func(p *Problem) { p.ShutdownCost = -0.1 },
		"infinite penalty":    func(p *Problem) { p.Penalty = math.Inf(1) },
		"negative min":        func(p *Problem) { p.MinReplicas = -1 },
		"negative extra cost": func(p *Problem) { p.ExtraPenalty = -1 },
	}
	if err := base.Validate(); err != nil {
		t.Fatalf("base problem: %v", err)
	}
	for name, mut := range cases {
		p := base
		mut(&p)
		if err := p.Validate(); err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
}

func TestObjectiveChargesEachTermOfTheSeedsFormulation(t *testing.T) {
	p := DefaultProblem() // rc 1, penalty 1, startup .5, shutdown .3, extra 10, cap 10
	cases := []struct {
		name    string
		mut     func(*Problem)
		serving []int
		want    float64
	}{
		{"replica seconds", func(p *Problem) { p.Demand, p.CurrentReplicas = []float64{0, 0}, 2 }, []int{2, 2}, 4},
		{"uncovered demand", func(p *Problem) { p.Demand, p.CurrentReplicas = []float64{25}, 2 }, []int{2}, 2 + 5},
		{"startups", func(p *Problem) { p.Demand = []float64{0} }, []int{2}, 2 + 2*0.5},
		{"shutdowns", func(p *Problem) { p.Demand, p.CurrentReplicas = []float64{0}, 3 }, []int{1}, 1 + 2*0.3},
		{"no replica under load", func(p *Problem) { p.Demand = []float64{4} }, []int{0}, 4 + 10},
		{"no replica without load", func(p *Problem) { p.Demand = []float64{0} }, []int{0}, 0},
		{"startup delay pays replicas before they serve", func(p *Problem) { p.Demand, p.StartupDelay = []float64{0, 0, 0}, 2 }, []int{0, 0, 1}, (0.5 + 2*1) + 1},
	}
	for _, c := range cases {
		q := p
		c.mut(&q)
		if got := Objective(q, Plan{Serving: c.serving}); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("%s: objective %v, want %v", c.name, got, c.want)
		}
	}
}

// solvers runs a behaviour test against both exact solvers.
var exactSolvers = map[string]Solver{"dp": DPSolver{}, "highs": HiGHSSolver{}}

func TestSolversRespectEachConstraint(t *testing.T) {
	cases := []struct {
		name        string
		mut         func(*Problem)
		wantServing []int
		wantDesired []int
	}{
		{"scale up is limited to max_scale_up per second",
			func(p *Problem) { p.Demand, p.CurrentReplicas = []float64{100, 100, 100, 100, 100}, 0 },
			[]int{2, 4, 6, 8, 10}, nil},
		{"scale down is limited to max_scale_down per second",
			func(p *Problem) { p.Demand, p.CurrentReplicas = make([]float64, 5), 9 },
			[]int{7, 5, 3, 1, 0}, nil},
		{"counts never exceed max_replicas",
			func(p *Problem) { p.Demand, p.CurrentReplicas, p.MaxReplicas = []float64{100, 100, 100}, 3, 3 },
			[]int{3, 3, 3}, nil},
		{"counts never fall below min_replicas",
			func(p *Problem) { p.Demand, p.CurrentReplicas, p.MinReplicas = make([]float64, 3), 2, 2 },
			[]int{2, 2, 2}, nil},
		{"a current count above max comes down as fast as allowed",
			func(p *Problem) { p.Demand, p.CurrentReplicas, p.MaxReplicas = []float64{100, 100, 100, 100}, 9, 3 },
			// Requests are clamped to [min, max]; serving follows the ramp.
			[]int{7, 5, 3, 3}, []int{3, 3, 3, 3}},
		{"a current count below min goes up once replicas can arrive",
			func(p *Problem) {
				p.Demand, p.CurrentReplicas, p.MinReplicas, p.StartupDelay = make([]float64, 4), 0, 2, 2
			},
			[]int{0, 0, 2, 2}, []int{2, 2, 2, 2}},
		{"demand is covered when the penalty outweighs a replica",
			func(p *Problem) { p.Demand, p.CurrentReplicas = []float64{25, 25, 25}, 3 },
			[]int{3, 3, 3}, nil},
		{"demand is left uncovered when a replica costs more than the penalty",
			func(p *Problem) { p.Demand, p.CurrentReplicas, p.Penalty = []float64{25, 25, 25}, 1, 0.05 },
			[]int{1, 1, 1}, nil},
		{"without the extra penalty a light load is not worth a replica",
			func(p *Problem) { p.Demand, p.ExtraPenalty = []float64{0.5, 0.5, 0.5}, 0 },
			[]int{0, 0, 0}, nil},
		{"the extra penalty keeps one replica under any load",
			func(p *Problem) { p.Demand = []float64{0.5, 0.5, 0.5} },
			[]int{1, 1, 1}, nil},
		{"startup and shutdown costs leave a small blip uncovered",
			func(p *Problem) { p.Demand, p.CurrentReplicas = []float64{10, 11, 10}, 1 },
			[]int{1, 1, 1}, nil},
		{"a blip worth more than startup plus shutdown is covered",
			func(p *Problem) { p.Demand, p.CurrentReplicas = []float64{10, 12, 10}, 1 },
			[]int{1, 2, 1}, nil},
		{"with a startup delay replicas are requested d seconds before they serve",
			func(p *Problem) {
				p.Demand, p.CurrentReplicas, p.StartupDelay = []float64{50, 50, 50, 50, 50, 50}, 0, 2
			},
			[]int{0, 0, 2, 4, 5, 5}, []int{2, 4, 5, 5, 5, 5}},
	}
	for _, c := range cases {
		for name, s := range exactSolvers {
			t.Run(c.name+"/"+name, func(t *testing.T) {
				p := DefaultProblem()
				c.mut(&p)
				plan, err := s.Solve(context.Background(), p)
				if err != nil {
					t.Fatal(err)
				}
				if err := CheckPlan(p, plan); err != nil {
					t.Fatalf("plan infeasible: %v", err)
				}
				if !slices.Equal(plan.Serving, c.wantServing) {
					t.Fatalf("serving %v, want %v", plan.Serving, c.wantServing)
				}
				want := c.wantDesired
				if want == nil {
					want = c.wantServing
				}
				if !slices.Equal(plan.Desired, want) {
					t.Fatalf("desired %v, want %v", plan.Desired, want)
				}
			})
		}
	}
}

func TestDesiredCountsLeadServingCountsByTheStartupDelay(t *testing.T) {
	cases := []struct {
		delay, current, min, max int
		serving, want            []int
	}{
		{0, 1, 0, 10, []int{2, 3, 1}, []int{2, 3, 1}},
		{1, 1, 0, 10, []int{1, 3, 3, 2}, []int{3, 3, 3, 2}},
		{2, 0, 0, 10, []int{0, 0, 2, 4, 5}, []int{2, 4, 5, 5, 5}},
		{1, 4, 0, 10, []int{2, 3, 1}, []int{3, 3, 1}},
		{1, 0, 1, 3, []int{0, 4, 4}, []int{3, 3, 3}}, // clamped to [min, max]
	}
	for _, c := range cases {
		p := Problem{StartupDelay: c.delay, CurrentReplicas: c.current, MinReplicas: c.min, MaxReplicas: c.max}
		if got := desiredFromServing(p, c.serving); !slices.Equal(got, c.want) {
			t.Errorf("delay %d serving %v: desired %v, want %v", c.delay, c.serving, got, c.want)
		}
	}
}

func TestInterpolationRunsStraightFromCurrentToTheCoveringCount(t *testing.T) {
	p := DefaultProblem()
	p.Demand, p.CurrentReplicas = []float64{10, 55, 20, 0}, 2 // target ceil(55/10) = 6
	plan, err := InterpolationSolver{}.Solve(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{3, 4, 5, 6}; !slices.Equal(plan.Desired, want) {
		t.Fatalf("desired %v, want %v", plan.Desired, want)
	}
	p.MaxReplicas = 4
	plan, _ = InterpolationSolver{}.Solve(context.Background(), p)
	if want := []int{3, 3, 4, 4}; !slices.Equal(plan.Desired, want) {
		t.Fatalf("clamped desired %v, want %v", plan.Desired, want)
	}
}
