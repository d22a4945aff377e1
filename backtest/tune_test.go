package backtest

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/nomadscalerd/nomadscalerd/reconciler"
)

func TestSelfTuningPicksTheCheapestCandidateWithinTheOperatorsBounds(t *testing.T) {
	demand := wave(3*3600, 1800, 5)
	p := reconciler.DefaultPolicy(1, 50)
	p.Target.TuneMarginMin, p.Target.TuneMarginMax = 0.5, 1.5
	p.Target.BurstQuantile = 0 // the Gaussian margin plans, so margins are candidates
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

func TestUnderTheBurstHeadroomSelfTuningTriesModelStepsOnly(t *testing.T) {
	demand := wave(3*3600, 1800, 5)
	p := reconciler.DefaultPolicy(1, 50)
	if p.ForecastConfig().BurstQuantile == 0 {
		t.Fatal("the default policy plans without the burst headroom: the test shows nothing")
	}
	got, err := PolicyTuner{}.Tune(context.Background(), p, demand, time.Unix(1_700_000_000, 0), 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// The policy's own settings and step 30 s: another forecast margin
	// would replay the same plans.
	if got.Candidates != 2 {
		t.Errorf("%d candidates, want 2", got.Candidates)
	}
	if got.ForecastMargin != p.Target.ForecastMargin {
		t.Errorf("margin %g chosen, want the policy's own %g", got.ForecastMargin, p.Target.ForecastMargin)
	}
}

func TestATunedSettingMustBeCheaperOnBothHalvesWithoutLeavingMoreRequestsUnmet(t *testing.T) {
	own := replayCost{Cost: 1000, Unmet: 50, Halves: [2]float64{500, 500}}
	even := func(cost, unmet float64) replayCost {
		return replayCost{Cost: cost, Unmet: unmet, Halves: [2]float64{cost / 2, cost / 2}}
	}
	for _, c := range []struct {
		name string
		c    replayCost
		best float64
		want bool
	}{
		{"cheaper and fewer unmet", even(900, 40), 1000, true},
		{"cheaper and as many unmet", even(900, 50), 1000, true},
		{"cheaper but more unmet", even(900, 51), 1000, false},
		{"fewer unmet but dearer", even(1001, 0), 1000, false},
		{"cheaper than the policy, not than the best so far", even(950, 10), 940, false},
		{"cheaper by less than the least saving", even(991, 10), 1000, false},
		{"cheaper by exactly the least saving", even(990, 10), 1000, true},
		{"cheaper overall but dearer on the first half", replayCost{Cost: 900, Unmet: 40, Halves: [2]float64{501, 399}}, 1000, false},
		{"cheaper overall but dearer on the second half", replayCost{Cost: 900, Unmet: 40, Halves: [2]float64{300, 600}}, 1000, false},
		{"cheaper overall and as dear on one half", replayCost{Cost: 900, Unmet: 40, Halves: [2]float64{500, 400}}, 1000, true},
	} {
		if got := adopt(c.c, c.best, own); got != c.want {
			t.Errorf("%s: adopt = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestTheHalvesOfAReplayAddUpToItsWholeTally(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Max = 50
	demand := wave(4*3600, 1800, 5)
	s, err := NewPredictive(cfg, DefaultPredictiveConfig(cfg.Min, cfg.Max), demand[:3600], 1_700_000_000, nil)
	if err != nil {
		t.Fatal(err)
	}
	replay := demand[3600:]
	r, err := Run(context.Background(), cfg, replay, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	if whole := r.Between(cfg, replay, 0, len(replay)); whole != r.Tally {
		t.Errorf("Between over the whole replay = %+v, want its tally %+v", whole, r.Tally)
	}
	m := measure(cfg, replay, r)
	if m.Halves[0] <= 0 || m.Halves[1] <= 0 || math.Abs(m.Halves[0]+m.Halves[1]-r.Cost) > 1e-6*r.Cost {
		t.Errorf("halves %.1f + %.1f, want positive and adding up to the cost %.1f", m.Halves[0], m.Halves[1], r.Cost)
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
