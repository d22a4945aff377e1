package backtest

import (
	"context"
	"math"
	"testing"
	"time"
)

// scripted asks for a fixed count each second and checks it is shown only
// the past.
type scripted struct {
	t       *testing.T
	desired []int
}

func (*scripted) Name() string { return "scripted" }

func (s *scripted) Decide(_ context.Context, obs Observation) (Decision, error) {
	if len(obs.Demand) != obs.Now || len(obs.Serving) != obs.Now {
		s.t.Fatalf("second %d: strategy shown %d seconds of demand and %d of serving", obs.Now, len(obs.Demand), len(obs.Serving))
	}
	return Decision{Desired: s.desired[obs.Now], Evaluated: true}, nil
}

func TestSimulatorMetricsOnHandComputedTraces(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		demand  []float64
		desired []int

		requested, serving []int
		tally              Tally
		cost               float64
	}{
		{
			// t1 asks for 2 more, serving from t3; t3 drops one of them
			// (a pending one) and t4 all.
			name:      "startup delay and pending replicas removed first",
			cfg:       Config{Capacity: 10, StartupDelay: 2, Min: 0, Max: 10, Initial: 1, Cost: DefaultCostModel()},
			demand:    []float64{5, 15, 25, 10, 0},
			desired:   []int{1, 3, 3, 2, 0},
			requested: []int{1, 3, 3, 2, 0},
			serving:   []int{1, 1, 1, 2, 0},
			tally: Tally{ReplicaSeconds: 9, Unmet: 20, ViolationSeconds: 2,
				UpActions: 1, DownActions: 2, UpReplicas: 2, DownReplicas: 3},
			cost: 9 + 20 + 0.5*2 + 0.3*3,
		},
		{
			name:      "demand with no serving replica pays the empty penalty",
			cfg:       Config{Capacity: 10, StartupDelay: 2, Min: 0, Max: 10, Cost: DefaultCostModel()},
			demand:    []float64{0, 4, 4, 12},
			desired:   []int{1, 1, 1, 1},
			requested: []int{1, 1, 1, 1},
			serving:   []int{0, 0, 1, 1},
			tally: Tally{ReplicaSeconds: 4, Unmet: 4 + 2, ViolationSeconds: 2, EmptySeconds: 1,
				UpActions: 1, UpReplicas: 1},
			cost: 4 + 6 + 0.5 + 10,
		},
		{
			name:      "no startup delay serves at once and bounds clamp the request",
			cfg:       Config{Capacity: 5, StartupDelay: 0, Min: 2, Max: 4, Initial: 3, Cost: CostModel{ReplicaCost: 2, UnmetPenalty: 3, ScaleUpCost: 1, ScaleDownCost: 7}},
			demand:    []float64{10, 30, 30, 1},
			desired:   []int{3, 99, 99, 0},
			requested: []int{3, 4, 4, 2},
			serving:   []int{3, 4, 4, 2},
			tally: Tally{ReplicaSeconds: 13, Unmet: 20, ViolationSeconds: 2,
				UpActions: 1, DownActions: 1, UpReplicas: 1, DownReplicas: 2},
			// Charged once a change, not per replica.
			cost: 2*13 + 3*20 + 1 + 7,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Run(context.Background(), tt.cfg, tt.demand, &scripted{t: t, desired: tt.desired}, nil)
			if err != nil {
				t.Fatal(err)
			}
			for i := range tt.demand {
				if res.Requested[i] != tt.requested[i] || res.Serving[i] != tt.serving[i] {
					t.Errorf("second %d: requested %d serving %d, want %d and %d", i, res.Requested[i], res.Serving[i], tt.requested[i], tt.serving[i])
				}
			}
			if res.Tally != tt.tally {
				t.Errorf("tally %+v, want %+v", res.Tally, tt.tally)
			}
			if res.ReplicaSeconds != tt.tally.ReplicaSeconds || res.UnmetRequests != tt.tally.Unmet ||
				res.ViolationSeconds != tt.tally.ViolationSeconds || res.ScaleActions != tt.tally.UpActions+tt.tally.DownActions {
				t.Errorf("result %+v disagrees with tally %+v", res, tt.tally)
			}
			if math.Abs(res.Cost-tt.cost) > 1e-9 {
				t.Errorf("cost %v, want %v", res.Cost, tt.cost)
			}
		})
	}
}

func TestInitialFleetCoversFirstSecondWithinBounds(t *testing.T) {
	cfg := DefaultConfig()
	for _, tt := range []struct {
		first float64
		want  int
	}{{0, 1}, {10, 1}, {11, 2}, {5000, 100}} {
		if got := cfg.initial([]float64{tt.first}); got != tt.want {
			t.Errorf("first second %v: initial fleet %d, want %d", tt.first, got, tt.want)
		}
	}
}

func TestRunRejectsAnImpossibleService(t *testing.T) {
	for _, cfg := range []Config{
		{Capacity: 0, Max: 1},
		{Capacity: 1, StartupDelay: -1, Max: 1},
		{Capacity: 1, Min: 3, Max: 2},
	} {
		if _, err := Run(context.Background(), cfg, []float64{1}, &scripted{t: t, desired: []int{1}}, nil); err == nil {
			t.Errorf("config %+v accepted", cfg)
		}
	}
}

func TestP99IsTheNearestRank(t *testing.T) {
	if got := p99Millis(nil); got != 0 {
		t.Errorf("no decisions: p99 %v, want 0", got)
	}
	var ds []time.Duration
	for i := 200; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	if got := p99Millis(ds); got != 198 {
		t.Errorf("1..200 ms: p99 %v, want 198", got)
	}
	if got := p99Millis([]time.Duration{1500 * time.Microsecond}); got != 1.5 {
		t.Errorf("one decision of 1.5 ms: p99 %v", got)
	}
}

func TestAScaleDownUndoneWithinTheFlapWindowCountsAsAFlap(t *testing.T) {
	cfg := Config{Capacity: 10, StartupDelay: 0, Min: 0, Max: 10, Initial: 5, Cost: DefaultCostModel()}
	n := 3*FlapWindow + 10
	desired := make([]int, n)
	for i := range desired {
		switch {
		case i < 10:
			desired[i] = 5
		case i < 12: // down twice, then back up within the window: two flaps
			desired[i] = 5 - (i - 9)
		case i < 21+FlapWindow+5: // up, then down and held past the window
			desired[i] = 5
			if i > 20 {
				desired[i] = 4
			}
		default: // up again, but after the window: no flap
			desired[i] = 6
		}
	}
	res, err := Run(context.Background(), cfg, make([]float64, n), &scripted{t: t, desired: desired}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Flaps != 2 {
		t.Errorf("flaps %d, want 2 (two scale-downs undone at once; one undone after %d s does not count)", res.Flaps, FlapWindow)
	}
}
