package backtest

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

func TestRateBoundShortfallsAreThoseOfTheGeneratorsDraws(t *testing.T) {
	for _, c := range []struct {
		name         string
		rate, scale  float64
		replicas     []int
		drawsPerCase int
	}{
		{"a Poisson rate", 12, 1, []int{1, 2, 3}, 200000},
		{"a rate the generator draws as a rounded normal", 80, 1, []int{7, 8, 9, 10}, 200000},
		{"a scaled rate", 12, 4, []int{4, 5, 6}, 200000},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := DefaultConfig()
			b, err := NewRateBound([]float64{c.rate}, c.scale, cfg)
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(7, 11))
			draws := make([]float64, c.drawsPerCase)
			for i := range draws {
				draws[i] = c.scale * poisson(rng, c.rate)
			}
			for _, k := range c.replicas {
				var sum, sq float64
				for _, x := range draws {
					s := math.Max(0, x-float64(k)*cfg.Capacity)
					sum += s
					sq += s * s
				}
				n := float64(len(draws))
				mean := sum / n
				se := math.Sqrt((sq/n - mean*mean) / n)
				got := b.s[0][k-cfg.Min]
				if math.Abs(got-mean) > 4*se+1e-9 {
					t.Errorf("%d replicas: expected shortfall %.4f, the draws' mean %.4f (standard error %.4f)", k, got, mean, se)
				}
			}
		})
	}
}

// rateKnower is a fake strategy for the bound's tests: it asks, each
// second, for the count that minimises replicas plus price times the
// expected shortfall of the second its replicas will serve, knowing that
// second's rate.
type rateKnower struct {
	b     *RateBound
	price float64
	delay int
}

func (*rateKnower) Name() string { return "rate-knower" }

func (r *rateKnower) Decide(_ context.Context, obs Observation) (Decision, error) {
	t := min(obs.Now+r.delay, len(r.b.s)-1)
	best, bk := math.Inf(1), 0
	for i, s := range r.b.s[t] {
		k := r.b.min + i
		if v := float64(k) + r.price*s; v < best {
			best, bk = v, k
		}
	}
	return Decision{Desired: bk, Evaluated: true}, nil
}

func TestNoReplayedStrategyBeatsTheRateBoundAndAStrategyKnowingTheRateReachesIt(t *testing.T) {
	const seconds = 6 * 3600
	for _, kind := range []string{"flash-crowd", "daily", "trend"} {
		t.Run(kind, func(t *testing.T) {
			demand, err := Synthetic(kind, seconds, 3)
			if err != nil {
				t.Fatal(err)
			}
			rate, err := SyntheticRate(kind, seconds, 3)
			if err != nil {
				t.Fatal(err)
			}
			// Replicas serve at once, so the rate-knower's count is the
			// bound's; the bound itself holds at any startup delay.
			cfg := DefaultConfig()
			cfg.StartupDelay = 0
			b, err := NewRateBound(rate, 1, cfg)
			if err != nil {
				t.Fatal(err)
			}
			tv := NewTargetValue(cfg.Capacity)
			tv.Min, tv.Max = cfg.Min, cfg.Max
			for _, s := range []Strategy{tv, NewHPA(cfg.Capacity, cfg.Min, cfg.Max), &rateKnower{b: b, price: 1, delay: cfg.StartupDelay}} {
				r, err := Run(context.Background(), cfg, demand, s, nil)
				if err != nil {
					t.Fatal(err)
				}
				rs := float64(r.ReplicaSeconds)
				// One replay's unmet requests scatter around their
				// expectation: four standard deviations of the draws'
				// shortfalls below the counts it ran.
				slack := 4 * shortfallSD(demand, rate, r.Serving, cfg.Capacity)
				if least := b.MinUnmet(rs); r.UnmetRequests < least-slack {
					t.Errorf("%s: %.0f replica-seconds and %.0f unmet requests, under the bound's least %.0f for them (slack %.0f)", s.Name(), rs, r.UnmetRequests, least, slack)
				}
				if least := b.MinReplicaSeconds(r.UnmetRequests + slack); rs < least {
					t.Errorf("%s: %.0f unmet requests with %.0f replica-seconds, under the bound's least %.0f (slack %.0f)", s.Name(), r.UnmetRequests, rs, least, slack)
				}
				if s.Name() == "rate-knower" {
					if got, least := rs+r.UnmetRequests, b.MinCost(); math.Abs(got-least) > slack+1e-3*least {
						t.Errorf("knowing the rate: replica-seconds plus unmet requests %.0f, want the bound's %.0f (slack %.0f)", got, least, slack)
					}
				}
			}
		})
	}
}

func TestRateBoundDualsAndFrontierAgreeWithTheirPrimalsOnAConstantRate(t *testing.T) {
	// Thirty requests/s for 1,000 s: with k replicas a second leaves s(k)
	// unmet, so any mix of 3, 4 and 5 replicas spans the frontier.
	rate := make([]float64, 1000)
	for i := range rate {
		rate[i] = 30
	}
	cfg := DefaultConfig()
	b, err := NewRateBound(rate, 1, cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := func(k int) float64 { return b.s[0][k-cfg.Min] }
	// Half the seconds at 4 replicas and half at 5: on the frontier, so
	// its unmet requests are the least for its replica-seconds and back.
	rs, unmet := 4500.0, 500*(s(4)+s(5))
	if got := b.MinUnmet(rs); math.Abs(got-unmet) > 1e-6*unmet+1e-9 {
		t.Errorf("least unmet requests at %.0f replica-seconds: %.6f, want %.6f", rs, got, unmet)
	}
	if got := b.MinReplicaSeconds(unmet); math.Abs(got-rs) > 1e-6*rs {
		t.Errorf("least replica-seconds at %.4f unmet requests: %.6f, want %.0f", unmet, got, rs)
	}
	// A strategy on the frontier is 1; one that ran a tenth more
	// replica-seconds for the same unmet requests, 1.1.
	f := Frontier([]Result{{Strategy: "on", ReplicaSeconds: 4500, UnmetRequests: unmet}, {Strategy: "off", ReplicaSeconds: 4950, UnmetRequests: unmet}}, b)
	if len(f) != 2 || math.Abs(f[0].Ratio-1) > 1e-6 || math.Abs(f[1].Ratio-1.1) > 1e-6 {
		t.Errorf("frontier ratios %+v, want 1 and 1.1", f)
	}
	if Frontier(nil, nil) != nil {
		t.Error("a frontier without a bound")
	}
	// At a penalty of 1 a request, a replica pays for itself while more
	// than a tenth of a second's capacity goes unmet.
	want := math.Inf(1)
	for k := cfg.Min; k < cfg.Min+len(b.s[0]); k++ {
		want = math.Min(want, 1000*(float64(k)+s(k)))
	}
	if got := b.MinCost(); math.Abs(got-want) > 1e-9*want {
		t.Errorf("least cost %.6f, want %.6f", got, want)
	}
}

func TestGoalsOutOfReachAreThoseNoStrategyCanMeetWithTheOtherMeasuresGoals(t *testing.T) {
	rate := make([]float64, 1000)
	for i := range rate {
		rate[i] = 30
	}
	b, err := NewRateBound(rate, 1, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	s3, s4 := b.s[0][2], b.s[0][3]
	// Target-value ran 3 replicas and HPA 4: meeting HPA's unmet requests
	// takes HPA's 4 replicas, far above 0.9x its replica-seconds, while
	// target-value's cost, with its many unmet requests, is within reach.
	results := []Result{
		{Strategy: "predictive", ReplicaSeconds: 4000, UnmetRequests: 1000 * s4, Cost: 4000 + 1000*s4},
		{Strategy: "target-value", ReplicaSeconds: 3000, UnmetRequests: 1000 * s3, Cost: 3000 + 1000*s3},
		{Strategy: "hpa", ReplicaSeconds: 4000, UnmetRequests: 1000 * s4, Cost: 4000 + 1000*s4},
	}
	goals := Goals(results, b)
	byKey := map[string]Goal{}
	for _, g := range goals {
		if g.Reach == nil {
			t.Fatalf("goal %s against %s: no reach with a bound", g.Measure, g.Against)
		}
		byKey[g.Measure+"/"+g.Against] = g
	}
	if g := byKey["replica_seconds/hpa"]; !g.OutOfReach || *g.Reach < 0.99 {
		t.Errorf("replica-seconds against HPA's with its unmet requests: reach %.3f, out of reach %v; want about 1, out of reach", *g.Reach, g.OutOfReach)
	}
	if g := byKey["cost/target-value"]; g.OutOfReach || *g.Reach > 0.9 {
		t.Errorf("cost against target-value's: reach %.3f, out of reach %v; want under 0.9 (HPA's count reaches it)", *g.Reach, g.OutOfReach)
	}
	if none := Goals(results, nil); none[0].Reach != nil {
		t.Error("goals without a bound have a reach")
	}
}

func TestSyntheticRateIsWhatEachSecondWasDrawnFrom(t *testing.T) {
	counts, err := Synthetic("trend", 20000, 9)
	if err != nil {
		t.Fatal(err)
	}
	rate, err := SyntheticRate("trend", 20000, 9)
	if err != nil {
		t.Fatal(err)
	}
	var c, r float64
	for i := range counts {
		c += counts[i]
		r += rate[i]
		if lv := trendLevel(i, 20000); rate[i] < lv*0.7 || rate[i] > lv*1.3 {
			t.Fatalf("second %d: rate %.1f, level %.1f: more than its wobble apart", i, rate[i], lv)
		}
	}
	if math.Abs(c-r) > 4*math.Sqrt(r) {
		t.Errorf("the counts sum to %.0f, their rates to %.0f: more than 4 standard deviations of the draws apart", c, r)
	}
	if _, err := SyntheticRate("demo", 600, 1); err == nil {
		t.Error("the demo, drawn without a rate per second, has one")
	}
	if r, err := LoadTraceRate("synthetic:demo:0.01"); r != nil || err != nil {
		t.Errorf("LoadTraceRate of the demo: %d seconds, %v; want none, no error", len(r), err)
	}
	if r, err := LoadTraceRate("synthetic:daily:0.01:4"); err != nil || len(r) != 864 {
		t.Errorf("LoadTraceRate of 0.01 days: %d seconds, %v; want 864", len(r), err)
	}
}

// shortfallSD is the standard deviation of the unmet requests of counts
// serving, summed over seconds drawn independently from rate.
func shortfallSD(demand, rate []float64, serving []int, capacity float64) float64 {
	var v float64
	var pmf []float64
	for t := range demand {
		pmf = drawPMF(pmf[:0], rate[t])
		c := float64(serving[t]) * capacity
		var m1, m2 float64
		for j, p := range pmf {
			if s := float64(j) - c; s > 0 {
				m1 += s * p
				m2 += s * s * p
			}
		}
		v += m2 - m1*m1
	}
	return math.Sqrt(v)
}

func TestARateBoundTooLargeToTabulateIsRefusedBeforeItIsAllocated(t *testing.T) {
	rate := make([]float64, 1000)
	for i := range rate {
		rate[i] = 100
	}
	cfg := DefaultConfig()
	cfg.Max = 1_000_000
	// At scale 5000 a second of 100 requests/s takes 50,000 replicas and
	// its tail some 45,000 more: about 95 M counts for 1,000 seconds,
	// more than the table may hold.
	if _, err := NewRateBound(rate, 5000, cfg); !errors.Is(err, ErrBoundTooLarge) {
		t.Errorf("a table of about 95 M counts: err %v, want ErrBoundTooLarge", err)
	}
	if _, err := NewRateBound(rate, 1, cfg); err != nil {
		t.Errorf("a table of about 20,000 counts: %v", err)
	}
}
