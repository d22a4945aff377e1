package backtest

import (
	"bytes"
	"strings"
	"testing"
)

func TestGoalsMeasurePredictiveAgainstEachStrategyThatRan(t *testing.T) {
	results := []Result{
		{Strategy: "predictive", ReplicaSeconds: 900, UnmetRequests: 50, Cost: 1000},
		{Strategy: "target-value", ReplicaSeconds: 1000, UnmetRequests: 100, Cost: 1100},
		{Strategy: "hpa", ReplicaSeconds: 1000, UnmetRequests: 40, Cost: 990},
		{Strategy: "oracle", ReplicaSeconds: 800, UnmetRequests: 0, Cost: 800},
	}
	cases := []struct {
		measure, against string
		ratio            float64
		met              bool
	}{
		{"cost", "target-value", 1000.0 / 1100, true},
		{"cost", "hpa", 1000.0 / 990, false},
		{"unmet_requests", "target-value", 0.5, true}, // at the limit is met
		{"unmet_requests", "hpa", 1.25, false},
		{"replica_seconds", "hpa", 0.9, true},
		{"cost", "oracle", 1.25, false},
	}
	got := Goals(results, nil)
	if len(got) != len(cases) {
		t.Fatalf("%d goals %+v, want %d", len(got), got, len(cases))
	}
	for i, c := range cases {
		g := got[i]
		if g.Measure != c.measure || g.Against != c.against || g.Ratio == nil || *g.Ratio < c.ratio-1e-9 || *g.Ratio > c.ratio+1e-9 || g.Met != c.met {
			t.Errorf("goal %d = %+v (ratio %v), want %s against %s at %.4f, met %v", i, g, g.Ratio, c.measure, c.against, c.ratio, c.met)
		}
	}
}

func TestAGoalAgainstAZeroIsMetOnlyByAZero(t *testing.T) {
	for _, mine := range []float64{0, 3} {
		got := Goals([]Result{{Strategy: "predictive", UnmetRequests: mine}, {Strategy: "hpa"}}, nil)
		var unmet *Goal
		for i := range got {
			if got[i].Measure == "unmet_requests" {
				unmet = &got[i]
			}
		}
		if unmet == nil || unmet.Ratio != nil || unmet.Met != (mine == 0) || unmet.Value != mine || unmet.Baseline != 0 {
			t.Errorf("predictive unmet %v against hpa's 0: goals %+v, want no ratio and met=%v", mine, got, mine == 0)
		}
	}
}

func TestGoalsNeedAPredictiveResultAndSkipStrategiesThatDidNotRun(t *testing.T) {
	if g := Goals([]Result{{Strategy: "hpa"}, {Strategy: "oracle"}}, nil); g != nil {
		t.Errorf("goals without predictive: %+v", g)
	}
	g := Goals([]Result{{Strategy: "predictive", Cost: 12}, {Strategy: "oracle", Cost: 10}}, nil)
	if len(g) != 1 || g[0].Against != "oracle" || !g[0].Met {
		t.Errorf("goals %+v, want only the oracle's cost, met at 1.2x", g)
	}
}

func TestTheTableNamesEveryGoalAndWhetherItWasMet(t *testing.T) {
	r := Report{Results: []Result{{Strategy: "predictive", Cost: 13}, {Strategy: "oracle", Cost: 10}}}
	r.Goals = Goals(r.Results, nil)
	var b bytes.Buffer
	if err := r.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "1.300x") || !strings.Contains(b.String(), "<= 1.2x: missed") {
		t.Fatalf("table:\n%s\nwant the oracle's cost goal at 1.300x, missed", b.String())
	}
	r = Report{Results: []Result{{Strategy: "predictive", UnmetRequests: 3}, {Strategy: "hpa"}}}
	r.Goals = Goals(r.Results, nil)
	b.Reset()
	if err := r.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "3 vs 0") {
		t.Fatalf("table:\n%s\nwant the unmet goal against a zero as 3 vs 0", b.String())
	}
}
