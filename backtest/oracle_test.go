package backtest

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/nomadscalerd/nomadscalerd/optimize"
)

// clairvoyant requests, StartupDelay seconds ahead, exactly the replicas
// each second's demand needs: a strong rival that still ignores the cost of
// scaling.
type clairvoyant struct {
	cfg    Config
	demand []float64
	margin float64
}

func (*clairvoyant) Name() string { return "clairvoyant" }

func (c *clairvoyant) Decide(_ context.Context, obs Observation) (Decision, error) {
	need := 0
	for t := obs.Now; t <= min(obs.Now+c.cfg.StartupDelay, len(c.demand)-1); t++ {
		need = max(need, int(math.Ceil(c.margin*c.demand[t]/c.cfg.Capacity)))
	}
	return Decision{Desired: need}, nil
}

// fixed always asks for the same count.
type fixed int

func (fixed) Name() string { return "fixed" }
func (f fixed) Decide(context.Context, Observation) (Decision, error) {
	return Decision{Desired: int(f)}, nil
}

func syntheticTraces() map[string][]float64 {
	rng := rand.New(rand.NewPCG(7, 11))
	const n = 3000
	traces := map[string][]float64{}
	wave, step, spiky, walk := make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
	level := 80.0
	for t := range n {
		wave[t] = 100 + 80*math.Sin(2*math.Pi*float64(t)/900)
		if t >= n/3 && t < 2*n/3 {
			step[t] = 250
		} else {
			step[t] = 30
		}
		spiky[t] = 40
		if rng.Float64() < 0.01 {
			spiky[t] = 300
		}
		level = math.Max(0, level+rng.NormFloat64()*4)
		walk[t] = level
	}
	traces["wave"], traces["step"], traces["spiky"], traces["walk"] = wave, step, spiky, walk
	return traces
}

func TestOracleIsNeverWorseThanAnyStrategyOnSyntheticTraces(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Max = 40
	for name, demand := range syntheticTraces() {
		t.Run(name, func(t *testing.T) {
			oracle, err := Run(context.Background(), cfg, demand, NewOracle(cfg, demand, nil), nil)
			if err != nil {
				t.Fatal(err)
			}
			rivals := []Strategy{
				NewTargetValue(cfg.Capacity), NewHPA(cfg.Capacity, cfg.Min, cfg.Max),
				&clairvoyant{cfg: cfg, demand: demand, margin: 1}, &clairvoyant{cfg: cfg, demand: demand, margin: 1.2},
				fixed(cfg.Min), fixed(10), fixed(cfg.Max),
			}
			for _, z := range []float64{0, 1, 2} {
				m, err := NewMeanOracle(cfg, demand, 300, z)
				if err != nil {
					t.Fatal(err)
				}
				rivals = append(rivals, m)
			}
			for _, s := range rivals {
				res, err := Run(context.Background(), cfg, demand, s, nil)
				if err != nil {
					t.Fatal(err)
				}
				if oracle.Cost > res.Cost+1e-6 {
					t.Errorf("oracle cost %.1f above %s's %.1f", oracle.Cost, res.Strategy, res.Cost)
				}
			}
		})
	}
}

func TestOracleReplayCostsWhatItsPlanPromised(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Max = 40
	for name, demand := range syntheticTraces() {
		res, err := Run(context.Background(), cfg, demand, NewOracle(cfg, demand, nil), nil)
		if err != nil {
			t.Fatal(err)
		}
		plan, err := optimize.DPSolver{}.Solve(context.Background(), problem(cfg, demand, cfg.initial(demand)))
		if err != nil {
			t.Fatal(err)
		}
		// The objective prices a start's waiting seconds as part of the
		// start; the replay counts them as replica-seconds. Replicas started
		// in the last StartupDelay seconds are cut short by the end of the
		// replay, so the replay may only come out cheaper.
		if res.Cost > plan.Objective+1e-6 || res.Cost < plan.Objective-float64(cfg.StartupDelay*cfg.Max) {
			t.Errorf("%s: replay cost %.2f, plan objective %.2f", name, res.Cost, plan.Objective)
		}
	}
}

func TestMeanOracleRequestsTheLevelAheadOfTime(t *testing.T) {
	cfg := Config{Capacity: 10, StartupDelay: 5, Min: 1, Max: 50, Initial: 3, Cost: DefaultCostModel()}
	demand := append(constant(30, 20), constant(95, 20)...)
	m, err := NewMeanOracle(cfg, demand, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(context.Background(), cfg, demand, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	// With a one-second window the level is the demand itself: 10
	// replicas are asked for at second 15, five seconds before the step.
	checkRequested(t, res, map[int]int{14: 3, 15: 10, 39: 10})
	if res.UnmetRequests != 0 {
		t.Errorf("unmet %v, want 0", res.UnmetRequests)
	}
}

func TestOracleInSegmentsCostsAlmostWhatOneSolveDoes(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Max = 40
	for name, demand := range syntheticTraces() {
		whole, err := Run(context.Background(), cfg, demand, NewOracle(cfg, demand, nil), nil)
		if err != nil {
			t.Fatal(err)
		}
		o := NewOracle(cfg, demand, nil)
		// Segments of 400 s, each planned with 300 s beyond it.
		o.Lookahead = 300
		o.StateBudget = (400 + o.Lookahead) * (cfg.Max - cfg.Min + 1)
		parts, err := Run(context.Background(), cfg, demand, o, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: in segments %.1f, in one solve %.1f", name, parts.Cost, whole.Cost)
		if parts.Cost < whole.Cost-1e-6 || parts.Cost > whole.Cost*1.01 {
			t.Errorf("%s: in segments %.1f, in one solve %.1f", name, parts.Cost, whole.Cost)
		}
	}
}

func TestFlatFromFindsASecondWithoutARiseAhead(t *testing.T) {
	serving := []int{1, 2, 3, 3, 3, 4, 4, 4, 4, 2, 2}
	for _, tt := range []struct{ from, d, want int }{
		{1, 2, 6}, // 4,4,4 from second 6
		{1, 1, 3}, // 3,3 from second 3
		{7, 2, 7},
		{1, 9, 1}, // none long enough
	} {
		if got := flatFrom(serving, tt.from, tt.d); got != tt.want {
			t.Errorf("from %d, d %d: %d, want %d", tt.from, tt.d, got, tt.want)
		}
	}
}
