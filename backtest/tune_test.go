package backtest

import (
	"context"
	"testing"
	"time"

	"github.com/nomadscalerd/nomadscalerd/reconciler"
)

func TestSelfTuningPicksTheCheapestCandidateWithinTheOperatorsBounds(t *testing.T) {
	demand := wave(3*3600, 1800, 5)
	p := reconciler.DefaultPolicy(1, 50)
	p.Target.TuneMarginMin, p.Target.TuneMarginMax = 0.5, 1.5
	got, err := PolicyTuner{}.Tune(context.Background(), p, demand, time.Unix(1_700_000_000, 0), 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// Margins 1.15 (the policy's), 0.5, 1 and 1.5 times steps 10 s and 30 s.
	if got.Candidates != 8 {
		t.Errorf("%d candidates, want 8", got.Candidates)
	}
	if got.Cost > got.PolicyCost || got.PolicyCost <= 0 {
		t.Errorf("chose cost %.0f against the policy's own %.0f: never worse, and measured", got.Cost, got.PolicyCost)
	}
	if got.Unmet > got.PolicyUnmet {
		t.Errorf("chose settings leaving %.0f requests unmet against the policy's own %.0f", got.Unmet, got.PolicyUnmet)
	}
	if got.ForecastMargin < 0.5 || got.ForecastMargin > 1.5 {
		t.Errorf("margin %g outside the bounds [0.5, 1.5]", got.ForecastMargin)
	}
	if got.Seconds != len(demand)-3600 {
		t.Errorf("replayed %d s, want all but the hour of warm-up (%d)", got.Seconds, len(demand)-3600)
	}
	// Tuning it again gives the same answer: replays are deterministic.
	again, err := PolicyTuner{}.Tune(context.Background(), p, demand, time.Unix(1_700_000_000, 0), 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if again.Cost != got.Cost || again.ForecastMargin != got.ForecastMargin || again.ModelStep != got.ModelStep {
		t.Errorf("second tuning %+v differs from the first %+v", again, got)
	}
}

func TestATunedSettingMustBeCheaperWithoutLeavingMoreRequestsUnmet(t *testing.T) {
	own := Result{Cost: 1000, UnmetRequests: 50}
	for _, c := range []struct {
		name string
		r    Result
		best float64
		want bool
	}{
		{"cheaper and fewer unmet", Result{Cost: 900, UnmetRequests: 40}, 1000, true},
		{"cheaper and as many unmet", Result{Cost: 900, UnmetRequests: 50}, 1000, true},
		{"cheaper but more unmet", Result{Cost: 900, UnmetRequests: 51}, 1000, false},
		{"fewer unmet but dearer", Result{Cost: 1001, UnmetRequests: 0}, 1000, false},
		{"cheaper than the policy, not than the best so far", Result{Cost: 950, UnmetRequests: 10}, 940, false},
		{"cheaper by less than the least saving", Result{Cost: 991, UnmetRequests: 10}, 1000, false},
		{"cheaper by exactly the least saving", Result{Cost: 990, UnmetRequests: 10}, 1000, true},
	} {
		if got := adopt(c.r, c.best, own); got != c.want {
			t.Errorf("%s: adopt = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestAReplayWithSelfTuningTunesOnceATuneIntervalAsTheDaemonDoes(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Max = 50
	demand := wave(8*3600, 1800, 5)
	pcfg := DefaultPredictiveConfig(cfg.Min, cfg.Max)
	pcfg.Policy.Target.TuneInterval, pcfg.Policy.Target.TuneWindow = 2*time.Hour, 3*time.Hour
	pcfg.SelfTune = true
	// Two hours recorded before the replay: the first tuning is due at once.
	s, err := NewPredictive(cfg, pcfg, demand[:2*3600], 1_700_000_000, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Run(context.Background(), cfg, demand[2*3600:], s, nil); err != nil {
		t.Fatal(err)
	}
	tunings := s.Tunings()
	// At 0, 2 h, 4 h of the 6 h replay.
	if len(tunings) != 3 {
		t.Fatalf("%d tunings in 6 h at a 2 h interval, want 3: %+v", len(tunings), tunings)
	}
	for i, tu := range tunings {
		if want := time.Unix(1_700_000_000+int64(i)*7200, 0).UTC(); !tu.At.Equal(want) {
			t.Errorf("tuning %d at %v, want %v", i, tu.At, want)
		}
		if tu.Seconds <= 0 || tu.Cost > tu.PolicyCost || tu.Unmet > tu.PolicyUnmet {
			t.Errorf("tuning %d: %+v", i, tu)
		}
	}
	// Without SelfTune the policy runs as written.
	pcfg.SelfTune = false
	s, err = NewPredictive(cfg, pcfg, demand[:2*3600], 1_700_000_000, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Run(context.Background(), cfg, demand[2*3600:], s, nil); err != nil {
		t.Fatal(err)
	}
	if n := len(s.Tunings()); n != 0 {
		t.Errorf("%d tunings with self-tuning off", n)
	}
}
