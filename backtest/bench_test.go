package backtest

import (
	"context"
	"testing"
)

// BenchmarkSimulatorReplaysADayOfTargetValue times one simulated day
// through the simulator and a reactive strategy.
func BenchmarkSimulatorReplaysADayOfTargetValue(b *testing.B) {
	cfg := DefaultConfig()
	demand := wave(86400, 3600, 9)
	b.ResetTimer()
	for b.Loop() {
		if _, err := Run(context.Background(), cfg, demand, NewTargetValue(cfg.Capacity), nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPredictivePlanFromTwoDaysOfHistory times one decision that
// plans: a refit of two days of one-minute means, a forecast and a plan.
func BenchmarkPredictivePlanFromTwoDaysOfHistory(b *testing.B) {
	cfg := DefaultConfig()
	pcfg := DefaultPredictiveConfig()
	all := wave(2*86400+60, 86400/24, 4)
	prior, demand := all[:2*86400], all[2*86400:]
	b.ResetTimer()
	for b.Loop() {
		p := NewPredictive(cfg, pcfg, prior, 2*86400, len(demand), nil)
		d, err := p.Decide(context.Background(), Observation{Now: 0, Demand: demand[:0], Requested: 10})
		if err != nil || !d.Evaluated {
			b.Fatalf("decision %+v, %v", d, err)
		}
	}
}

// BenchmarkOracleOneDay times the exact plan of a whole day.
func BenchmarkOracleOneDay(b *testing.B) {
	cfg := DefaultConfig()
	demand := wave(86400, 3600, 9)
	b.ResetTimer()
	for b.Loop() {
		o := NewOracle(cfg, demand, nil)
		if _, err := o.Decide(context.Background(), Observation{ServingNow: 10, Requested: 10}); err != nil {
			b.Fatal(err)
		}
	}
}
