package reconciler

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/nomadscalerd/nomadscalerd/model"
)

func i64(v int64) *int64 { return &v }

// scalingPolicy builds a policy as Nomad's API returns it for a job whose
// scaling block holds the given checks and target body.
func scalingPolicy(checks map[string]map[string]any, target map[string]any, extra map[string]any) *nomadapi.ScalingPolicy {
	pol := map[string]any{}
	var cl []any
	for name, body := range checks {
		cl = append(cl, map[string]any{name: []any{body}})
	}
	if cl != nil {
		pol["check"] = cl
	}
	if target != nil {
		pol["target"] = []any{map[string]any{TargetName: []any{target}}}
	}
	for k, v := range extra {
		pol[k] = v
	}
	return &nomadapi.ScalingPolicy{ID: "p1", Type: "horizontal", Min: i64(1), Max: i64(5),
		Target: map[string]string{"Namespace": "default", "Job": "web", "Group": "api"}, Policy: pol}
}

var reqCheck = map[string]map[string]any{"requests": {"source": "prometheus", "query": "sum(rate(http_requests_total[1m]))"}}

func TestParsePolicyReadsTheSeedsShapeWithDefaults(t *testing.T) {
	sp := scalingPolicy(map[string]map[string]any{
		"requests":          {"source": "prometheus", "query": "q1"},
		"avg_response_time": {"source": "nomad-apm", "query": "avg_cpu_percent"},
	}, map[string]any{
		"cache_size": 20.0, "capacity_per_replica": 25.0, "startup_delay": "30s", "dry_run": true, "orders": "1,1,1",
		"event": []any{map[string]any{"noon": []any{map[string]any{"cron": "0 12 * * *", "duration": "30m"}}}},
	}, map[string]any{"evaluation_interval": "5s"})
	p, err := ParsePolicy(sp, Defaults{CacheSize: 10, ForecastHorizon: 60})
	if err != nil {
		t.Fatal(err)
	}
	if p.Key != "default/web/api" || p.Min != 1 || p.Max != 5 || !p.Enabled {
		t.Errorf("identity = %+v", p)
	}
	if p.EvaluationInterval != 5*time.Second || p.Cooldown != 30*time.Second || p.CooldownSet {
		t.Errorf("interval %s cooldown %s (written %v), want 5s and the default 30s, unwritten", p.EvaluationInterval, p.Cooldown, p.CooldownSet)
	}
	tg := p.Target
	if tg.CacheSize != 20 || tg.ForecastHorizon != 60 || tg.CapacityPerReplica != 25 || tg.StartupDelay != 30*time.Second || !tg.DryRun {
		t.Errorf("target = %+v", tg)
	}
	if tg.Penalty != 1.0 || tg.StartupCost != 0.5 || tg.ShutdownCost != 0.3 || tg.MaxScaleUp != 2 || tg.MaxScaleDown != 2 {
		t.Errorf("seed defaults not applied: %+v", tg)
	}
	if tg.RequestsCheck != "requests" || len(p.Checks) != 2 || len(tg.Events) != 1 {
		t.Errorf("checks %+v events %+v", p.Checks, tg.Events)
	}
	if s := p.DeciderSettings(); s.DownHysteresis != 0.5 || s.DownWindow != 0 {
		t.Errorf("scale-down hysteresis %v and window %s, want the defaults 0.5 and off", s.DownHysteresis, s.DownWindow)
	}
}

func TestTheScaleDownKeysReachTheDecider(t *testing.T) {
	p, err := ParsePolicy(scalingPolicy(reqCheck, map[string]any{"scale_down_hysteresis": 0.2, "scale_down_window": "2m", "flap_window": "45s"}, nil), Defaults{})
	if err != nil {
		t.Fatal(err)
	}
	if s := p.DeciderSettings(); s.DownHysteresis != 0.2 || s.DownWindow != 2*time.Minute || s.FlapWindow != 45*time.Second {
		t.Errorf("decider got hysteresis %v, window %s and flap window %s, want 0.2, 2m and 45s", s.DownHysteresis, s.DownWindow, s.FlapWindow)
	}
}

func TestThePolicysFloorBeforeItsFirstPlanKeepsTheNoiseHeadroomItsPlansKeep(t *testing.T) {
	p, err := ParsePolicy(scalingPolicy(reqCheck, map[string]any{"noise_margin": 2.5}, nil), Defaults{CacheSize: 10, ForecastHorizon: 60})
	if err != nil {
		t.Fatal(err)
	}
	got, fc := p.DeciderSettings().Noise, p.ForecastConfig()
	if got.Margin != 2.5 || got.Quantile != fc.NoiseQuantile || got.Cap != fc.NoiseCap || got.CapShare != fc.NoiseCapShare || got.Cap != 30 {
		t.Errorf("decider noise %+v, want the forecast's: margin 2.5, quantile %v, cap %v, share %v", got, fc.NoiseQuantile, fc.NoiseCap, fc.NoiseCapShare)
	}
	off, err := ParsePolicy(scalingPolicy(reqCheck, map[string]any{"noise_margin": 0.0, "forecast_margin": 1.5, "noise_cap": 0.0}, nil), Defaults{CacheSize: 10, ForecastHorizon: 60})
	if err != nil {
		t.Fatal(err)
	}
	// A zero noise margin means the forecast margin, as in the band.
	if got := off.DeciderSettings().Noise; got.Margin != 1.5 || got.Cap != 0 {
		t.Errorf("noise margin 0: decider noise %+v, want margin 1.5 (the forecast margin's) and no cap", got)
	}
}

func TestTheBurstHeadroomPlansUnlessAMarginOrASeasonIsWrittenWithoutIt(t *testing.T) {
	for _, c := range []struct {
		name   string
		target map[string]any
		want   float64
	}{
		{"the defaults", map[string]any{}, 0.935},
		{"a quantile written", map[string]any{"burst_quantile": 0.97}, 0.97},
		{"turned off", map[string]any{"burst_quantile": 0.0}, 0},
		{"a forecast margin written: the Gaussian headroom it names", map[string]any{"forecast_margin": 2.0}, 0},
		{"a season written: its change is forecast, not a burst", map[string]any{"seasonality": []any{"10m"}}, 0},
		{"a season and a quantile written", map[string]any{"seasonality": []any{"10m"}, "burst_quantile": 0.95}, 0.95},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := ParsePolicy(scalingPolicy(reqCheck, c.target, nil), Defaults{CacheSize: 10, ForecastHorizon: 60})
			if err != nil {
				t.Fatal(err)
			}
			if got := p.ForecastConfig().BurstQuantile; got != c.want {
				t.Errorf("burst quantile %v, want %v", got, c.want)
			}
		})
	}
}

func TestTheNoiseCapIsReplicasAboveTheCostModelsOwnQuantile(t *testing.T) {
	for _, c := range []struct {
		name     string
		target   map[string]any
		wantCap  float64 // requests/s
		wantZ    float64
		unbounds bool
	}{
		// One replica-second (1) against 10 requests at 1: cover nine
		// seconds in ten.
		{"defaults", map[string]any{}, 30, 1.2816, false},
		{"a dearer unmet request", map[string]any{"penalty": 10.0, "noise_cap": 2.0, "capacity_per_replica": 50.0}, 100, 2.8782, false},
		{"a replica dearer than its requests", map[string]any{"replica_cost": 20.0}, 30, 0, false},
		{"turned off", map[string]any{"noise_cap": 0.0}, 0, 0, true},
		{"replicas priced by resources", map[string]any{"cpu_price": 0.001}, 0, 0, true},
	} {
		p, err := ParsePolicy(scalingPolicy(reqCheck, c.target, nil), Defaults{CacheSize: 10, ForecastHorizon: 60})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		cfg := p.ForecastConfig()
		if c.name == "defaults" {
			// A target-value check plans to cover all its demand: nothing
			// of its noise is left to a quantile.
			tv := p
			tv.Target.TargetValue = 0.8
			if got := tv.ForecastConfig(); got.NoiseCap != 0 {
				t.Errorf("a target-value policy: noise cap %v, want none", got.NoiseCap)
			}
			// The seed's demand formula is not in requests: no cap in them.
			seed := p
			seed.Checks = append(slices.Clone(p.Checks), Check{Name: model.ExogAvgResponseTime, Source: "prometheus", Query: "x"})
			if got := seed.ForecastConfig(); got.NoiseCap != 0 {
				t.Errorf("a policy on the seed's demand formula: noise cap %v, want none", got.NoiseCap)
			}
		}
		if c.unbounds {
			if cfg.NoiseCap != 0 {
				t.Errorf("%s: noise cap %v, want none", c.name, cfg.NoiseCap)
			}
			continue
		}
		if math.Abs(cfg.NoiseCapShare-1.0/3) > 1e-12 {
			t.Errorf("%s: noise cap share %v, want the default 1/3", c.name, cfg.NoiseCapShare)
		}
		if cfg.NoiseCap != c.wantCap || math.Abs(cfg.NoiseQuantile-c.wantZ) > 1e-3 || cfg.NoiseMargin != 3 {
			t.Errorf("%s: cap %v at z %.4f (noise margin %v), want %v at %.4f (3)", c.name, cfg.NoiseCap, cfg.NoiseQuantile, cfg.NoiseMargin, c.wantCap, c.wantZ)
		}
	}
}

func TestPoliciesWithoutTheNomadscalerTargetAreNotOurs(t *testing.T) {
	sp := scalingPolicy(reqCheck, nil, nil)
	sp.Policy["target"] = []any{map[string]any{"nomad-target": []any{map[string]any{}}}}
	if _, err := ParsePolicy(sp, Defaults{}); !errors.Is(err, ErrNotOurs) {
		t.Fatalf("err = %v, want ErrNotOurs", err)
	}
}

func TestMalformedPoliciesGiveAOneLineReason(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*nomadapi.ScalingPolicy)
		want   string
	}{
		{"no checks", func(sp *nomadapi.ScalingPolicy) { delete(sp.Policy, "check") }, "no check block"},
		{"unknown source", func(sp *nomadapi.ScalingPolicy) {
			sp.Policy["check"] = []any{map[string]any{"requests": []any{map[string]any{"source": "datadog", "query": "x"}}}}
		}, `unknown source "datadog"`},
		{"missing query", func(sp *nomadapi.ScalingPolicy) {
			sp.Policy["check"] = []any{map[string]any{"requests": []any{map[string]any{"source": "prometheus"}}}}
		}, "query is required"},
		{"unknown target key", func(sp *nomadapi.ScalingPolicy) { targetBody(sp)["cach_size"] = 3.0 }, `unknown key "cach_size"`},
		{"fractional cache size", func(sp *nomadapi.ScalingPolicy) { targetBody(sp)["cache_size"] = 2.5 }, "whole number"},
		{"cache size too big", func(sp *nomadapi.ScalingPolicy) { targetBody(sp)["cache_size"] = 4000.0 }, "outside 1..3600"},
		{"bad duration", func(sp *nomadapi.ScalingPolicy) { sp.Policy["cooldown"] = "soon" }, "bad duration"},
		{"bad cron", func(sp *nomadapi.ScalingPolicy) {
			targetBody(sp)["event"] = []any{map[string]any{"x": []any{map[string]any{"cron": "every noon", "duration": "1m"}}}}
		}, "bad cron"},
		{"min above max", func(sp *nomadapi.ScalingPolicy) { sp.Min = i64(9) }, "not a valid range"},
		{"negative capacity", func(sp *nomadapi.ScalingPolicy) { targetBody(sp)["capacity_per_replica"] = -1.0 }, "capacity_per_replica"},
		{"requests check missing", func(sp *nomadapi.ScalingPolicy) { targetBody(sp)["requests_check"] = "nope" }, "names no check"},
		{"hysteresis above a replica", func(sp *nomadapi.ScalingPolicy) { targetBody(sp)["scale_down_hysteresis"] = 1.5 }, "scale_down_hysteresis must be within 0..1"},
		{"negative scale-down window", func(sp *nomadapi.ScalingPolicy) { targetBody(sp)["scale_down_window"] = "-5s" }, "scale_down_window must be within 0..1h"},
		{"a flap window over ten minutes", func(sp *nomadapi.ScalingPolicy) { targetBody(sp)["flap_window"] = "1h" }, "flap_window must be within 0..10m"},
		{"negative noise cap", func(sp *nomadapi.ScalingPolicy) { targetBody(sp)["noise_cap"] = -1.0 }, "noise_cap must not be negative"},
		{"negative noise cap share", func(sp *nomadapi.ScalingPolicy) { targetBody(sp)["noise_cap_share"] = -0.5 }, "noise_cap_share must be within 0..10"},
		{"a burst quantile of 1", func(sp *nomadapi.ScalingPolicy) { targetBody(sp)["burst_quantile"] = 1.0 }, "burst_quantile must be within 0..1"},
		{"a negative burst quantile", func(sp *nomadapi.ScalingPolicy) { targetBody(sp)["burst_quantile"] = -0.1 }, "burst_quantile must be within 0..1"},
		{"infinite capacity (1e400 in HCL)", func(sp *nomadapi.ScalingPolicy) { targetBody(sp)["capacity_per_replica"] = math.Inf(1) }, "capacity_per_replica must be a finite number"},
		{"infinite penalty", func(sp *nomadapi.ScalingPolicy) { targetBody(sp)["penalty"] = math.Inf(1) }, "penalty must be a finite number"},
		{"a cache size past any count", func(sp *nomadapi.ScalingPolicy) { targetBody(sp)["cache_size"] = 1e300 }, "cache_size must be a whole number"},
		{"seconds past any duration", func(sp *nomadapi.ScalingPolicy) { targetBody(sp)["startup_delay"] = 1e300 }, "is not a duration"},
		{"two checks of one name", func(sp *nomadapi.ScalingPolicy) {
			sp.Policy["check"] = []any{
				map[string]any{"requests": []any{map[string]any{"source": "prometheus", "query": "a"}}},
				map[string]any{"requests": []any{map[string]any{"source": "prometheus", "query": "b"}}},
			}
		}, `check "requests" is declared twice`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sp := scalingPolicy(reqCheck, map[string]any{}, nil)
			tc.mutate(sp)
			_, err := ParsePolicy(sp, Defaults{CacheSize: 10, ForecastHorizon: 60})
			if err == nil || errors.Is(err, ErrNotOurs) || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("err = %v, want a one-line error containing %q", err, tc.want)
			}
		})
	}
}

func targetBody(sp *nomadapi.ScalingPolicy) map[string]any {
	return sp.Policy["target"].([]any)[0].(map[string]any)[TargetName].([]any)[0].(map[string]any)
}

func TestEventIsActiveFromItsCronStartForItsDuration(t *testing.T) {
	sp := scalingPolicy(reqCheck, map[string]any{
		"event": []any{map[string]any{"noon": []any{map[string]any{"cron": "0 12 * * *", "duration": "30m"}}}},
	}, nil)
	p, err := ParsePolicy(sp, Defaults{})
	if err != nil {
		t.Fatal(err)
	}
	ev := p.Target.Events[0]
	day := time.Date(2026, 11, 23, 0, 0, 0, 0, time.Local)
	for _, tc := range []struct {
		at   string
		want bool
	}{{"11:59:59", false}, {"12:00:00", true}, {"12:29:59", true}, {"12:31:00", false}, {"00:10:00", false}} {
		at, _ := time.ParseInLocation("15:04:05", tc.at, time.Local)
		ts := day.Add(time.Duration(at.Hour())*time.Hour + time.Duration(at.Minute())*time.Minute + time.Duration(at.Second())*time.Second)
		if got := ev.Active(ts); got != tc.want {
			t.Errorf("Active(%s) = %v, want %v", tc.at, got, tc.want)
		}
	}
}

func TestAPolicyWithSeveralBadKeysIsReportedTheSameWayEveryTime(t *testing.T) {
	target := map[string]any{"optimizer_url": "http://x", "zeta": 1.0, "alpha": 2.0, "mid": "m", "capacity_per_replica": 5.0}
	first := ""
	for i := 0; i < 50; i++ {
		_, err := ParsePolicy(scalingPolicy(reqCheck, target, map[string]any{"zz_unknown": 1.0, "aa_unknown": 2.0}), Defaults{})
		if err == nil {
			t.Fatal("accepted unknown keys")
		}
		if i == 0 {
			first = err.Error()
		} else if err.Error() != first {
			t.Fatalf("run %d reported %q, the first run %q", i, err, first)
		}
	}
	if !strings.Contains(first, `"aa_unknown"`) {
		t.Errorf("reported %q, want the first bad key in order, aa_unknown", first)
	}
}

func TestAPolicyTheDaemonCouldNeverSampleIsInvalid(t *testing.T) {
	_, err := ParsePolicy(scalingPolicy(reqCheck, map[string]any{}, nil), Defaults{WithoutPrometheus: true})
	if err == nil || !strings.Contains(err.Error(), "--prometheus-addr") {
		t.Errorf("prometheus check without a Prometheus address: %v, want an error naming --prometheus-addr", err)
	}
	apm := map[string]map[string]any{"latency": {"source": "nomad-apm", "query": "p99_latency"}}
	_, err = ParsePolicy(scalingPolicy(apm, map[string]any{}, nil), Defaults{})
	if err == nil || !strings.Contains(err.Error(), `unknown query "p99_latency"`) {
		t.Errorf("unknown nomad-apm query: %v, want it refused", err)
	}
	ok := map[string]map[string]any{"cpu": {"source": "nomad-apm", "query": "avg_cpu_percent"}}
	if _, err := ParsePolicy(scalingPolicy(ok, map[string]any{}, nil), Defaults{WithoutPrometheus: true}); err != nil {
		t.Errorf("a nomad-apm policy needs no Prometheus: %v", err)
	}
}

func TestASeasonTheHistoryWindowCannotHoldIsReportedAsAWarningAndThePolicyStillParses(t *testing.T) {
	for _, tc := range []struct {
		name   string
		target map[string]any
		want   []string
	}{
		{"no seasonality: nothing to say", map[string]any{}, nil},
		{"a day at the default hour of history is never fitted",
			map[string]any{"seasonality": []any{"24h"}},
			[]string{"seasonality 24h0m0s is never fitted: history_window 1h0m0s holds less than one cycle (set history_window to at least 24h5m0s)"}},
		{"a cycle the history holds, but not with 30 steps to spare: Fourier terms only",
			map[string]any{"seasonality": []any{"58m"}},
			[]string{"seasonality 58m0s enters as Fourier terms only: its last cycle needs history_window of at least 1h3m0s (the cycle plus 30 model steps), not 1h0m0s"}},
		{"the demo's 10 minutes in an hour: fully used", map[string]any{"seasonality": []any{"10m"}}, nil},
		{"a week at 10 s steps is more steps than a fit reads",
			map[string]any{"seasonality": []any{"168h"}, "history_window": "336h"},
			[]string{"seasonality 168h0m0s enters as Fourier terms only: its last cycle would need more than the 10000 model steps a fit reads (a longer model_step)"}},
		{"each season on its own, in the policy's order",
			map[string]any{"seasonality": []any{"24h", "10m", "2h58m"}, "history_window": "3h"},
			[]string{
				"seasonality 24h0m0s is never fitted: history_window 3h0m0s holds less than one cycle (set history_window to at least 24h5m0s)",
				"seasonality 2h58m0s enters as Fourier terms only: its last cycle needs history_window of at least 3h3m0s (the cycle plus 30 model steps), not 3h0m0s",
			}},
		{"a day of history without seasonality: only the latest hour is fitted and read",
			map[string]any{"history_window": "24h"},
			[]string{"history_window 24h0m0s: a model without seasonality or events is fitted on the latest 1h0m0s, and a plan reads no more"}},
		{"long model steps read their 30 steps", map[string]any{"history_window": "24h", "model_step": "10m"},
			[]string{"history_window 24h0m0s: a model without seasonality or events is fitted on the latest 5h0m0s, and a plan reads no more"}},
		{"two hours of 5-minute steps are fewer than 30: all read", map[string]any{"history_window": "2h", "model_step": "5m"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParsePolicy(scalingPolicy(reqCheck, tc.target, nil), Defaults{CacheSize: 10, ForecastHorizon: 60})
			if err != nil {
				t.Fatalf("the policy must still parse: %v", err)
			}
			if got := p.Warnings(); !slices.Equal(got, tc.want) {
				t.Errorf("warnings\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}

func TestTheScaleDownCooldownIsWhatThePolicyWritesOrElseTheTimeAReplicaTakesToComeBack(t *testing.T) {
	for _, c := range []struct {
		name     string
		cooldown time.Duration
		written  bool
		comeBack time.Duration
		want     time.Duration
	}{
		{"unwritten, replicas back in 8 s", DefaultCooldown, false, 8 * time.Second, 8 * time.Second},
		{"unwritten, replicas back in 35 s: the 30 s default", DefaultCooldown, false, 35 * time.Second, DefaultCooldown},
		{"unwritten, come-back time not known yet", DefaultCooldown, false, 0, DefaultCooldown},
		{"written 30s is kept", 30 * time.Second, true, 8 * time.Second, 30 * time.Second},
		{"written 0s is kept", 0, true, 8 * time.Second, 0},
		{"written 5m is kept", 5 * time.Minute, true, 35 * time.Second, 5 * time.Minute},
	} {
		p := Policy{Cooldown: c.cooldown, CooldownSet: c.written}
		if got := p.ScaleDownCooldown(c.comeBack); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
}

func TestAWrittenCooldownIsMarkedWritten(t *testing.T) {
	sp := scalingPolicy(reqCheck, map[string]any{"capacity_per_replica": 10.0}, map[string]any{"cooldown": "30s"})
	p, err := ParsePolicy(sp, Defaults{CacheSize: 10, ForecastHorizon: 60})
	if err != nil {
		t.Fatal(err)
	}
	if !p.CooldownSet || p.Cooldown != 30*time.Second {
		t.Errorf("cooldown %s written %v, want 30s written", p.Cooldown, p.CooldownSet)
	}
}

// A policy as Nomad's JSON API holds it can put several labelled blocks in
// one entry (a map): they are read in label order.
func TestAPolicyWithTwoBadChecksInOneEntryIsReportedTheSameWayEveryTime(t *testing.T) {
	sp := scalingPolicy(nil, map[string]any{}, map[string]any{
		"check": []any{map[string]any{"a": "not a block", "b": "not a block either"}},
	})
	seen := map[string]bool{}
	for range 200 {
		_, err := ParsePolicy(sp, Defaults{})
		if err == nil {
			t.Fatal("malformed policy accepted")
		}
		seen[err.Error()] = true
	}
	if len(seen) != 1 {
		t.Fatalf("the same policy was reported %d different ways: %v", len(seen), seen)
	}
}

// A negative cooldown would turn the scale-down hold off without a word.
func TestANegativeCooldownIsRefused(t *testing.T) {
	sp := scalingPolicy(reqCheck, map[string]any{}, map[string]any{"cooldown": "-5m"})
	p, err := ParsePolicy(sp, Defaults{})
	if err == nil {
		t.Fatalf("cooldown -5m accepted: policy cooldown %s, scale-down hold %s", p.Cooldown, p.ScaleDownCooldown(0))
	}
}

func TestAClusterPolicyWithTheNomadscalerTargetIsRefusedWithAReasonAndAnotherAutoscalersIsNotOurs(t *testing.T) {
	ours := seedPolicy()
	ours.Type = "cluster"
	_, err := ParsePolicy(ours, Defaults{CacheSize: 10, ForecastHorizon: 60})
	if err == nil || errors.Is(err, ErrNotOurs) || !strings.Contains(err.Error(), `"horizontal"`) {
		t.Fatalf("a cluster policy with our target: %v, want a reason naming type horizontal", err)
	}
	theirs := scalingPolicy(map[string]map[string]any{"cpu": {"source": "nomad-apm", "query": "avg_cpu_percent"}}, nil, nil)
	theirs.Type = "cluster"
	theirs.Policy["target"] = []any{map[string]any{"aws-asg": []any{map[string]any{"aws_asg_name": "clients"}}}}
	if _, err := ParsePolicy(theirs, Defaults{CacheSize: 10, ForecastHorizon: 60}); !errors.Is(err, ErrNotOurs) {
		t.Fatalf("another autoscaler's cluster policy: %v, want ErrNotOurs", err)
	}
}
