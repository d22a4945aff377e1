package backtest

import (
	"context"
	"testing"
)

func constant(v float64, n int) []float64 {
	d := make([]float64, n)
	for i := range d {
		d[i] = v
	}
	return d
}

func checkRequested(t *testing.T, res Result, want map[int]int) {
	t.Helper()
	for at, n := range want {
		if res.Requested[at] != n {
			t.Errorf("second %d: %s requested %d, want %d", at, res.Strategy, res.Requested[at], n)
		}
	}
}

func TestTargetValueScalesByUtilisationOverTargetAndWaitsOutItsCooldown(t *testing.T) {
	cfg := Config{Capacity: 10, StartupDelay: 0, Min: 1, Max: 100, Initial: 1, Cost: DefaultCostModel()}
	res, err := Run(context.Background(), cfg, constant(30, 80), NewTargetValue(cfg.Capacity), nil)
	if err != nil {
		t.Fatal(err)
	}
	// t=10: 30 requests/s on 1 running replica, utilisation 3,
	// ceil(1*3/0.75) = 4. t=20, t=30: cooldown. t=40 on: 30 requests/s on
	// 4 running, utilisation 0.75: on target, no action, however long the
	// window still holds the seconds when 1 replica served them.
	checkRequested(t, res, map[int]int{9: 1, 10: 4, 39: 4, 40: 4, 79: 4})
	if res.ScaleActions != 1 {
		t.Errorf("%d scale actions, want 1", res.ScaleActions)
	}
}

func TestTargetValueScalesTheRunningCountNotTheOneAskedFor(t *testing.T) {
	// Replicas take 60 s to start: at t=40 the 4 asked for at t=10 are
	// not running yet, and the metric over the 1 running is unchanged.
	cfg := Config{Capacity: 10, StartupDelay: 60, Min: 1, Max: 100, Initial: 1, Cost: DefaultCostModel()}
	res, err := Run(context.Background(), cfg, constant(30, 100), NewTargetValue(cfg.Capacity), nil)
	if err != nil {
		t.Fatal(err)
	}
	// ceil(1*3/0.75) = 4 at t=10, and again 4 (no action) at t=40, 50, 60:
	// scaling the 4 asked for would ask for 16.
	checkRequested(t, res, map[int]int{10: 4, 40: 4, 60: 4, 99: 4})
}

func TestTargetValueClampedToItsBoundsTakesNoActionAndNoCooldown(t *testing.T) {
	cfg := Config{Capacity: 10, StartupDelay: 0, Min: 1, Max: 2, Initial: 2, Cost: DefaultCostModel()}
	s, err := NewStrategy("target-value", cfg, PredictiveConfig{}, Replay{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Saturated at max for 110 s, then demand falls to 1 request/s: with
	// no cooldown started at max, the first evaluation after the fall
	// scales in.
	d := append(constant(100, 110), constant(1, 100)...)
	res, err := Run(context.Background(), cfg, d, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The 60 s window holds only the fall from t=170, and that
	// evaluation scales in: cooldowns started by the clamped evaluations
	// at max (every 30 s from t=10) would hold it until t=190.
	if res.ScaleActions != 1 || res.Requested[169] != 2 || res.Requested[170] != 1 {
		t.Errorf("%d scale actions, %d then %d requested at 169 and 170 s; want 1 action, to 1 at 170 s", res.ScaleActions, res.Requested[169], res.Requested[170])
	}
}

func TestTheTargetValueBaselineTakesTheOperatorsTargetWindowAndCooldown(t *testing.T) {
	cfg := DefaultConfig()
	for _, c := range []struct {
		set  TargetValueSettings
		want TargetValue
	}{
		{TargetValueSettings{}, TargetValue{Target: 0.75, Window: 60, Cooldown: 30}},
		{TargetValueSettings{Target: 1, Window: 10, Cooldown: 300}, TargetValue{Target: 1, Window: 10, Cooldown: 300}},
		{TargetValueSettings{Window: 10}, TargetValue{Target: 0.75, Window: 10, Cooldown: 30}},
	} {
		cfg.TargetValue = c.set
		s, err := NewStrategy("target-value", cfg, PredictiveConfig{}, Replay{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		tv := s.(*TargetValue)
		if tv.Target != c.want.Target || tv.Window != c.want.Window || tv.Cooldown != c.want.Cooldown || tv.Interval != 10 {
			t.Errorf("settings %+v: baseline %+v, want target %g window %d cooldown %d every 10 s", c.set, *tv, c.want.Target, c.want.Window, c.want.Cooldown)
		}
	}
	cfg.TargetValue = TargetValueSettings{Target: -1}
	if _, err := Run(context.Background(), cfg, constant(10, 10), NewTargetValue(cfg.Capacity), nil); err == nil {
		t.Error("a negative target was accepted")
	}
}

func TestTargetValueHoldsWithinItsThreshold(t *testing.T) {
	cfg := Config{Capacity: 10, StartupDelay: 0, Min: 1, Max: 100, Initial: 4, Cost: DefaultCostModel()}
	// 4 replicas at 30 req/s: utilisation 0.75, on target.
	res, err := Run(context.Background(), cfg, constant(30.2, 200), NewTargetValue(cfg.Capacity), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.ScaleActions != 0 {
		t.Errorf("%d scale actions within the threshold, want 0", res.ScaleActions)
	}
}

func TestHPAScaleUpIsLimitedToFourPodsOrDoubleAPeriod(t *testing.T) {
	cfg := Config{Capacity: 10, StartupDelay: 0, Min: 1, Max: 100, Initial: 1, Cost: DefaultCostModel()}
	res, err := Run(context.Background(), cfg, constant(200, 61), NewHPA(cfg.Capacity, cfg.Min, cfg.Max), nil)
	if err != nil {
		t.Fatal(err)
	}
	// Every sync wants ceil(200/7.5) = 27: t=15 is limited to 1+4, t=30 to
	// 2*5, t=45 to 2*10 and t=60 gets it.
	checkRequested(t, res, map[int]int{14: 1, 15: 5, 30: 10, 45: 20, 60: 27})
}

func TestHPAScaleDownWaitsForTheHighestRecommendationToLeaveItsWindow(t *testing.T) {
	cfg := Config{Capacity: 10, StartupDelay: 0, Min: 1, Max: 100, Initial: 10, Cost: DefaultCostModel()}
	demand := append(constant(75, 300), constant(0, 400)...)
	res, err := Run(context.Background(), cfg, demand, NewHPA(cfg.Capacity, cfg.Min, cfg.Max), nil)
	if err != nil {
		t.Fatal(err)
	}
	// Recommendations: 10 up to t=300, then 8 (t=315), 5, 3, 1. The 10 of
	// t=300 holds the count until t=600; then each lower one in turn.
	checkRequested(t, res, map[int]int{315: 10, 599: 10, 600: 8, 615: 5, 630: 3, 645: 1, 699: 1})
}

func TestHPAToleratesTenPercentOffTarget(t *testing.T) {
	cfg := Config{Capacity: 10, StartupDelay: 0, Min: 1, Max: 100, Initial: 4, Cost: DefaultCostModel()}
	// Utilisation 0.81 is within 10% of 0.75.
	res, err := Run(context.Background(), cfg, constant(32.4, 400), NewHPA(cfg.Capacity, cfg.Min, cfg.Max), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.ScaleActions != 0 {
		t.Errorf("%d scale actions within tolerance, want 0", res.ScaleActions)
	}
}

func TestHPACountsStartingPodsAsIdleWhenScalingUp(t *testing.T) {
	h := NewHPA(10, 1, 100)
	// 2 serving at utilisation 3 (60 req/s) and 2 starting: treated as idle
	// the mean is 1.5, so 4*1.5/0.75 = 8.
	obs := Observation{Now: 15, Requested: 4, ServingNow: 2, Demand: constant(60, 15), Serving: []int{2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2}}
	if got := h.recommend(obs); got != 8 {
		t.Errorf("recommendation %d, want 8", got)
	}
}

func TestHPALeavesStartingPodsOutWhenScalingDown(t *testing.T) {
	h := NewHPA(10, 1, 100)
	// 2 serving at 6 req/s (utilisation 0.3, 0.4 of target) and 2 starting:
	// Kubernetes' replica calculator ignores pods that are not ready yet
	// when the ready ones say scale down, so ceil(0.4*2) = 1. (Pods that
	// are ready but report no metric count at target; the simulation has
	// none.)
	obs := Observation{Now: 15, Requested: 4, ServingNow: 2, Demand: constant(6, 15), Serving: []int{2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2}}
	if got := h.recommend(obs); got != 1 {
		t.Errorf("recommendation %d, want 1", got)
	}
}
