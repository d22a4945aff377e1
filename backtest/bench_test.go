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

// BenchmarkPredictiveFirstPlanFromAnHourOfHistory times one decision that
// plans at the daemon's defaults: a fit of an hour of 10-second means, a
// forecast and a plan.
func BenchmarkPredictiveFirstPlanFromAnHourOfHistory(b *testing.B) {
	cfg := DefaultConfig()
	pcfg := DefaultPredictiveConfig(cfg.Min, cfg.Max)
	all := wave(3600+60, 86400/24, 4)
	prior, demand := all[:3600], all[3600:]
	b.ResetTimer()
	for b.Loop() {
		p, err := NewPredictive(cfg, pcfg, prior, 3600, nil)
		if err != nil {
			b.Fatal(err)
		}
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
