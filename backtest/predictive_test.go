package backtest

import (
	"context"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nomadscalerd/nomadscalerd/reconciler"
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

func TestPredictiveEvaluatesAtLeastEveryReplanIntervalAndScalesFromTheFirstSecond(t *testing.T) {
	cfg := DefaultConfig()
	pcfg := DefaultPredictiveConfig(cfg.Min, cfg.Max)
	demand := wave(1800, 600, 1)
	// No prior history: the floor must carry the first seconds.
	p, err := NewPredictive(cfg, pcfg, nil, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	last, first := -1, -1
	requested := 1
	for now := range demand {
		d, err := p.Decide(context.Background(), Observation{Now: now, Demand: demand[:now], Requested: requested, ServingNow: requested})
		if err != nil {
			t.Fatal(err)
		}
		if d.Evaluated {
			if gap := now - last; last >= 0 && gap > 10 {
				t.Fatalf("%d s between evaluations at second %d, want at most the 10 s replan interval", gap, now)
			}
			last = now
		}
		if d.Desired > 1 && first < 0 {
			first = now
		}
		requested = d.Desired
	}
	if first < 0 || first > 2 {
		t.Errorf("first scale-up at second %d with ~100 requests/s from the start, want within 2 s", first)
	}
}

func TestANewPolicyOnARunningGroupLeavesNoMoreUnmetRequestsThanTargetValueInItsFirstMinutes(t *testing.T) {
	// A replay from a trace's first second has no history: the policy is
	// new, on a group already running enough replicas for the first
	// second. Until its first plan (30 model steps) only the floor and
	// its noise headroom scale it; the group must neither be scaled to its
	// minimum for want of a sample nor run short of a reactive rule's
	// fixed headroom.
	cfg := DefaultConfig()
	trace, err := Synthetic("daily", 86400, 1)
	if err != nil {
		t.Fatal(err)
	}
	replay, err := NewReplay(trace, 0, 600, 1, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	results := map[string]Result{}
	for _, name := range []string{"predictive", "target-value"} {
		s, err := NewStrategy(name, cfg, DefaultPredictiveConfig(cfg.Min, cfg.Max), replay, nil)
		if err != nil {
			t.Fatal(err)
		}
		if results[name], err = Run(context.Background(), cfg, replay.Demand, s, nil); err != nil {
			t.Fatal(err)
		}
	}
	pred, tv := results["predictive"], results["target-value"]
	if pred.UnmetRequests > tv.UnmetRequests {
		t.Errorf("predictive left %.0f requests unmet in its first 10 minutes, target-value %.0f", pred.UnmetRequests, tv.UnmetRequests)
	}
	if initial := cfg.initial(replay.Demand); pred.Requested[0] < initial {
		t.Errorf("predictive asked for %d replicas at its first second, below the %d running", pred.Requested[0], initial)
	}
}

func TestPredictiveBeatsReactiveScalingOnAForecastableWave(t *testing.T) {
	cfg := DefaultConfig()
	pcfg := DefaultPredictiveConfig(cfg.Min, cfg.Max)
	pcfg.Policy.Target.HistoryWindow = 6 * time.Hour
	pcfg.Policy.Target.Seasonality = []time.Duration{time.Hour}
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

func TestOnSecondsScatteringByManyReplicasTheNoiseCapBuysFewerReplicasForLessCost(t *testing.T) {
	// A small count-like trace scaled by 100, as `--scale 100` makes of
	// NASA's raw seconds: a level of 150 requests/s whose seconds scatter
	// by about 120 (12 replicas).
	rng := rand.New(rand.NewPCG(11, 4))
	all := make([]float64, 4*3600)
	for t := range all {
		all[t] = 100 * float64(poisson(rng, 1.5))
	}
	cfg := DefaultConfig()
	replay := Replay{Prior: all[:2*3600], Demand: all[2*3600:], Start: 2 * 3600}
	run := func(noiseCap float64) Result {
		pcfg := DefaultPredictiveConfig(cfg.Min, cfg.Max)
		pcfg.Policy.Target.NoiseCap = noiseCap
		s, err := NewStrategy("predictive", cfg, pcfg, replay, nil)
		if err != nil {
			t.Fatal(err)
		}
		r, err := Run(context.Background(), cfg, replay.Demand, s, nil)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	capped, uncapped := run(3), run(0)
	t.Logf("noise cap 3: %d replica-seconds, %.0f unmet, cost %.0f; no cap: %d, %.0f, %.0f",
		capped.ReplicaSeconds, capped.UnmetRequests, capped.Cost, uncapped.ReplicaSeconds, uncapped.UnmetRequests, uncapped.Cost)
	if capped.ReplicaSeconds >= uncapped.ReplicaSeconds || capped.Cost >= uncapped.Cost {
		t.Errorf("noise cap 3: %d replica-seconds at cost %.0f; no cap: %d at %.0f; want fewer replicas for less",
			capped.ReplicaSeconds, capped.Cost, uncapped.ReplicaSeconds, uncapped.Cost)
	}
}

func TestAStepUpIsAnsweredTwoSecondsInNotAtTheNextEvaluation(t *testing.T) {
	cfg := DefaultConfig()
	pcfg := DefaultPredictiveConfig(cfg.Min, cfg.Max)
	// An hour of history around 45 requests/s, then a step to 135 at
	// second 300 of the replay: no forecast sees it coming.
	rng := rand.New(rand.NewPCG(3, 4))
	level := func(s int) float64 {
		if s >= 300 {
			return 135
		}
		return 45
	}
	prior := make([]float64, 3600)
	for i := range prior {
		prior[i] = poisson(rng, 45)
	}
	demand := make([]float64, 400)
	for s := range demand {
		demand[s] = poisson(rng, level(s))
	}
	p, err := NewPredictive(cfg, pcfg, prior, 1_700_000_000, nil)
	if err != nil {
		t.Fatal(err)
	}
	requested, answered := 5, -1
	for now := range demand {
		d, err := p.Decide(context.Background(), Observation{Now: now, Demand: demand[:now], Requested: requested, ServingNow: requested})
		if err != nil {
			t.Fatal(err)
		}
		requested = d.Desired
		if now >= 300 && answered < 0 && requested >= 14 {
			answered = now
		}
	}
	// Seconds 300 and 301 are observed at 301 and 302.
	if answered < 0 || answered > 303 {
		t.Errorf("14 replicas (135 requests/s) first asked for at second %d, want by 303: two seconds of the step and one to act", answered)
	}
}

func TestPredictivePlansWithTheReplayedCapacityAndRefusesAPolicyThatSaysOtherwise(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Capacity = 20
	s, err := NewStrategy("predictive", cfg, DefaultPredictiveConfig(cfg.Min, cfg.Max), Replay{Demand: constant(100, 10)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.(*Predictive).pol.Target.CapacityPerReplica; got != cfg.Capacity {
		t.Errorf("predictive plans with %v requests/s a replica, the replay serves %v", got, cfg.Capacity)
	}
	path := filepath.Join(t.TempDir(), "p.hcl")
	if err := os.WriteFile(path, []byte(`scaling {
  max = 10
  policy {
    check "requests" {
      source = "prometheus"
      query  = "q"
    }
    target "nomadscaler" {
      capacity_per_replica = 10
    }
  }
}`), 0o600); err != nil {
		t.Fatal(err)
	}
	pol, err := reconciler.ReadPolicyFile(path, reconciler.Defaults{})
	if err != nil {
		t.Fatal(err)
	}
	pcfg := DefaultPredictiveConfig(cfg.Min, cfg.Max)
	pcfg.Policy = pol
	if _, err := NewStrategy("predictive", cfg, pcfg, Replay{Demand: constant(100, 10)}, nil); err == nil || !strings.Contains(err.Error(), "capacity_per_replica") {
		t.Errorf("a policy of 10 requests/s a replica on a replay of 20: err %v, want it refused", err)
	}
}
