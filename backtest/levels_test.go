package backtest

import (
	"context"
	"math"
	"testing"
)

func TestLevelsSplitEachResultIntoBandsThatAddUpToItsTotals(t *testing.T) {
	trace, err := Synthetic("flash-crowd", 86400, 1)
	if err != nil {
		t.Fatal(err)
	}
	demand := trace[:6*3600]
	cfg := DefaultConfig()
	var results []Result
	for _, s := range []Strategy{NewTargetValue(cfg.Capacity), NewHPA(cfg.Capacity, cfg.Min, cfg.Max)} {
		r, err := Run(context.Background(), cfg, demand, s, nil)
		if err != nil {
			t.Fatal(err)
		}
		results = append(results, r)
	}
	bands, err := Levels(cfg, demand, results, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(bands) < 2 {
		t.Fatalf("%d bands: a flash crowd's day holds several levels", len(bands))
	}
	seconds := 0
	for i, b := range bands {
		seconds += b.Seconds
		if b.To-b.From != 10 || math.Mod(b.From, 10) != 0 || (i > 0 && b.From <= bands[i-1].From) || b.Seconds == 0 {
			t.Errorf("band %d: %+v: want bands 10 requests/s wide, lowest first, none empty", i, b)
		}
	}
	if seconds != len(demand) {
		t.Errorf("bands hold %d seconds of %d", seconds, len(demand))
	}
	for i, r := range results {
		var rs int64
		var unmet, cost float64
		for _, b := range bands {
			s := b.Strategies[i]
			if s.Strategy != r.Strategy {
				t.Fatalf("band %+v: strategy %d is %s, want %s", b, i, s.Strategy, r.Strategy)
			}
			rs, unmet, cost = rs+s.ReplicaSeconds, unmet+s.UnmetRequests, cost+s.Cost
		}
		if rs != r.ReplicaSeconds || math.Abs(unmet-r.UnmetRequests) > 1e-6 || math.Abs(cost-r.Cost) > 1e-6*r.Cost {
			t.Errorf("%s: bands add up to %d / %g / %g, the result is %d / %g / %g",
				r.Strategy, rs, unmet, cost, r.ReplicaSeconds, r.UnmetRequests, r.Cost)
		}
	}
}

// A steady level's shortfalls come from its own seconds that scatter above
// it, and belong to its band, not to a band of single seconds' counts.
func TestLevelsPutASecondInTheBandOfItsFiveMinuteLevelNotOfItsOwnCount(t *testing.T) {
	demand := make([]float64, 1200)
	requested := make([]int, len(demand))
	for s := range demand {
		demand[s], requested[s] = 30, 4
		if s >= 900 {
			// A second level, held long enough to be one.
			demand[s], requested[s] = 70, 8
		}
	}
	demand[300] = 55 // one second far above its level: 15 unmet at 4 replicas
	r := Result{Strategy: "fixed", Requested: requested, Serving: requested}
	cfg := DefaultConfig()
	bands, err := Levels(cfg, demand, []Result{r}, 10)
	if err != nil {
		t.Fatal(err)
	}
	var in30 *LevelBand
	for i, b := range bands {
		if b.From == 30 {
			in30 = &bands[i]
		}
		if b.From == 50 && b.Strategies[0].UnmetRequests > 0 {
			t.Errorf("band 50-60 holds the burst second's shortfall: %+v", b)
		}
	}
	if in30 == nil || in30.Strategies[0].UnmetRequests != 15 {
		t.Fatalf("bands %+v: want the 15 requests the burst second left unmet in the band of its level, 30-40", bands)
	}
	if got := in30.Strategies[0].ReplicaSeconds; got != 4*int64(in30.Seconds) {
		t.Errorf("band 30-40: %d replica-seconds over %d seconds at 4 replicas", got, in30.Seconds)
	}
}

func TestLevelsRefuseABandWidthThatIsNoWidthOrResultsOfAnotherReplay(t *testing.T) {
	demand := []float64{1, 2, 3}
	r := Result{Strategy: "fixed", Requested: []int{1, 1, 1}, Serving: []int{1, 1, 1}}
	for _, w := range []float64{0, -1, math.Inf(1), math.NaN()} {
		if _, err := Levels(DefaultConfig(), demand, []Result{r}, w); err == nil {
			t.Errorf("width %g accepted", w)
		}
	}
	short := Result{Strategy: "short", Requested: []int{1}, Serving: []int{1}}
	if _, err := Levels(DefaultConfig(), demand, []Result{short}, 10); err == nil {
		t.Error("a result of 1 second split by the levels of a 3-second replay")
	}
}
