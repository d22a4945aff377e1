package backtest

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"
)

// wave is a sine of the given period around 100 requests/s with noise,
// smoothed over a minute like the backtest's demand.
func wave(n, period int, seed uint64) []float64 {
	rng := rand.New(rand.NewPCG(seed, 3))
	d := make([]float64, n)
	for t := range d {
		d[t] = math.Max(0, 100+60*math.Sin(2*math.Pi*float64(t)/float64(period))+rng.NormFloat64()*10)
	}
	smooth, err := Demand(d, 0, 0, 1, 60)
	if err != nil {
		panic(err)
	}
	return smooth
}

func TestFourierRowsAreSinesAndCosinesOfTheTimeOfDay(t *testing.T) {
	rows := FourierRows(86400+21600, 2, 86400, 2) // 06:00 and one second later
	want := []float64{1, 0, 0, -1}
	for j, w := range want {
		if math.Abs(rows[0][j]-w) > 1e-9 {
			t.Fatalf("06:00 row %v, want %v", rows[0], want)
		}
	}
	if len(rows) != 2 || len(rows[1]) != 4 {
		t.Fatalf("got %d rows of %d columns, want 2 of 4", len(rows), len(rows[1]))
	}
}

func TestPredictivePlansOnlyWhenThePlanCacheIsDue(t *testing.T) {
	cfg := DefaultConfig()
	pcfg := DefaultPredictiveConfig()
	pcfg.Horizon = 120
	pcfg.Window = 6 * 3600
	pcfg.FourierPeriod = 3600
	all := wave(6*3600+1800, 3600, 1)
	prior, demand := all[:6*3600], all[6*3600:]
	p := NewPredictive(cfg, pcfg, prior, 6*3600, len(demand), nil)
	plans := 0
	for now := range demand {
		d, err := p.Decide(context.Background(), Observation{Now: now, Demand: demand[:now], Requested: 10})
		if err != nil {
			t.Fatal(err)
		}
		if d.Evaluated {
			plans++
			if now%(2*pcfg.Horizon) != 0 {
				t.Errorf("planned at second %d, not a multiple of two passes of %d", now, pcfg.Horizon)
			}
		}
	}
	if want := (len(demand) + 2*pcfg.Horizon - 1) / (2 * pcfg.Horizon); plans != want {
		t.Errorf("%d plans in %d s, want %d", plans, len(demand), want)
	}
}

func TestPredictiveBeatsReactiveScalingOnAForecastableWave(t *testing.T) {
	cfg := DefaultConfig()
	pcfg := DefaultPredictiveConfig()
	pcfg.Horizon = 60
	pcfg.Window = 6 * 3600
	pcfg.FourierPeriod = 3600
	all := wave(8*3600, 3600, 2)
	replay := Replay{Prior: all[:6*3600], Demand: all[6*3600:], Start: 6 * 3600}
	results := map[string]Result{}
	for _, name := range StrategyNames {
		s, err := NewStrategy(name, cfg, pcfg, replay, nil)
		if err != nil {
			t.Fatal(err)
		}
		if results[name], err = Run(context.Background(), cfg, replay.Demand, s, nil); err != nil {
			t.Fatal(err)
		}
	}
	pred, oracle := results["predictive"], results["oracle"]
	for _, name := range []string{"target-value", "hpa"} {
		if r := results[name]; pred.Cost >= r.Cost || pred.ReplicaSeconds >= r.ReplicaSeconds {
			t.Errorf("predictive cost %.0f with %d replica-seconds, %s %.0f with %d", pred.Cost, pred.ReplicaSeconds, name, r.Cost, r.ReplicaSeconds)
		}
	}
	for name, r := range results {
		if oracle.Cost > r.Cost+1e-6 {
			t.Errorf("oracle cost %.0f above %s's %.0f", oracle.Cost, name, r.Cost)
		}
	}
}
