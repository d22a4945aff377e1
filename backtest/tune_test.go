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
