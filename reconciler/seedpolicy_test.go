package reconciler

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/nomadscalerd/nomadscalerd/optimize"
)

// seedTarget and seedChecks are the example policy of the seed's
// deployment guide, as Nomad stores it for production/web-app/frontend.
func seedPolicy() *nomadapi.ScalingPolicy {
	sp := scalingPolicy(map[string]map[string]any{
		"cpu": {"source": "nomad-apm", "query": "avg_cpu_percent",
			"strategy": []any{map[string]any{"target-value": []any{map[string]any{"target": 75.0}}}}},
	}, map[string]any{
		"namespace": "production", "job": "web-app", "group": "frontend",
		"optimizer_url": "http://optimizer:8000", "cache_size": 10.0,
	}, map[string]any{"evaluation_interval": "10s", "cooldown": "30s"})
	sp.Min, sp.Max = i64(2), i64(20)
	sp.Target = map[string]string{"Namespace": "production", "Job": "web-app", "Group": "frontend"}
	return sp
}

func TestTheSeedsExamplePolicyIsAcceptedAndPlansCPUAtTheTargetPerReplica(t *testing.T) {
	p, err := ParsePolicy(seedPolicy(), Defaults{CacheSize: 10, ForecastHorizon: 60})
	if err != nil {
		t.Fatal(err)
	}
	if p.Key != "production/web-app/frontend" || p.Min != 2 || p.Max != 20 || !p.Enabled {
		t.Errorf("identity = %s min %d max %d enabled %v", p.Key, p.Min, p.Max, p.Enabled)
	}
	tg := p.Target
	if tg.OptimizerURL != "http://optimizer:8000" || tg.CacheSize != 10 {
		t.Errorf("optimizer_url %q cache_size %d", tg.OptimizerURL, tg.CacheSize)
	}
	if tg.RequestsCheck != "cpu" || tg.CapacityPerReplica != 75 || tg.TargetValue != 75 || p.Checks[0].TargetValue != 75 {
		t.Errorf("demand check %q capacity %v target %v, want cpu at 75 per replica", tg.RequestsCheck, tg.CapacityPerReplica, tg.TargetValue)
	}
}

func TestATargetNamingAnotherGroupOrAStrategyThatCannotBePlannedIsAClearError(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*nomadapi.ScalingPolicy)
		want   string
	}{
		{"another job", func(sp *nomadapi.ScalingPolicy) { targetBody(sp)["job"] = "api" },
			`job "api" does not match the group the policy belongs to (production/web-app/frontend)`},
		{"another namespace", func(sp *nomadapi.ScalingPolicy) { targetBody(sp)["namespace"] = "default" },
			`namespace "default" does not match`},
		{"another group", func(sp *nomadapi.ScalingPolicy) { targetBody(sp)["group"] = "backend" }, `group "backend" does not match`},
		{"group not a string", func(sp *nomadapi.ScalingPolicy) { targetBody(sp)["group"] = 3.0 }, "group must be a non-empty string"},
		{"another strategy in nomadscalerd's policy", func(sp *nomadapi.ScalingPolicy) {
			delete(targetBody(sp), "optimizer_url")
			checkBody(sp, "cpu")["strategy"] = []any{map[string]any{"threshold": []any{map[string]any{"upper_bound": 3.0}}}}
		}, `check "cpu": strategy "threshold" is not supported`},
		{"no target value", func(sp *nomadapi.ScalingPolicy) {
			checkBody(sp, "cpu")["strategy"] = []any{map[string]any{"target-value": []any{map[string]any{}}}}
		}, "target is required"},
		{"zero target value", func(sp *nomadapi.ScalingPolicy) {
			checkBody(sp, "cpu")["strategy"] = []any{map[string]any{"target-value": []any{map[string]any{"target": 0.0}}}}
		}, "target must be a positive number"},
		{"a per-evaluation step limit", func(sp *nomadapi.ScalingPolicy) {
			checkBody(sp, "cpu")["strategy"] = []any{map[string]any{"target-value": []any{map[string]any{"target": 70.0, "max_scale_up": 2.0}}}}
		}, `"target-value": max_scale_up limits the step of one evaluation`},
		{"two capacities", func(sp *nomadapi.ScalingPolicy) { targetBody(sp)["capacity_per_replica"] = 10.0 }, "both set the capacity"},
		{"two demands", func(sp *nomadapi.ScalingPolicy) {
			sp.Policy["check"] = append(sp.Policy["check"].([]any), map[string]any{"requests": []any{map[string]any{"source": "nomad-apm", "query": "sum_cpu_mhz"}}})
			targetBody(sp)["requests_check"] = "requests"
		}, "both name the demand"},
		{"two target values", func(sp *nomadapi.ScalingPolicy) {
			sp.Policy["check"] = append(sp.Policy["check"].([]any), map[string]any{"mem": []any{map[string]any{"source": "nomad-apm", "query": "avg_memory-allocated",
				"strategy": []any{map[string]any{"target-value": []any{map[string]any{"target": 80.0}}}}}}})
		}, "checks cpu, mem all have a target-value strategy"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sp := seedPolicy()
			tc.mutate(sp)
			_, err := ParsePolicy(sp, Defaults{})
			if err == nil || errors.Is(err, ErrNotOurs) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestAPolicyThePluginOwnsMayUseAnyStrategyNomadAutoscalerEvaluates(t *testing.T) {
	sp := seedPolicy() // has optimizer_url
	checkBody(sp, "cpu")["strategy"] = []any{map[string]any{"threshold": []any{map[string]any{"upper_bound": 3.0, "delta": 1.0}}}}
	p, err := ParsePolicy(sp, Defaults{})
	if err != nil {
		t.Fatal(err)
	}
	if !p.PluginOwned() || p.Checks[0].Strategy != "threshold" || p.Target.RequestsCheck != "cpu" || p.Target.TargetValue != 0 {
		t.Errorf("policy %+v, want the plugin's, recording cpu without a target value", p)
	}
}

func TestTheTargetsEnabledDecidesForNomadscalerdOverTheScalingBlocks(t *testing.T) {
	off, on := false, true
	for _, tc := range []struct {
		name            string
		block, inTarget *bool
		want            bool
	}{
		{"block on, target silent", &on, nil, true},
		{"block off, target silent", &off, nil, false},
		{"block off, target on (hidden from nomad-autoscaler)", &off, &on, true},
		{"block on, target off", &on, &off, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sp := seedPolicy()
			sp.Enabled = tc.block
			if tc.inTarget != nil {
				targetBody(sp)["enabled"] = *tc.inTarget
			}
			p, err := ParsePolicy(sp, Defaults{})
			if err != nil || p.Enabled != tc.want {
				t.Fatalf("Enabled = %v, %v; want %v", p.Enabled, err, tc.want)
			}
		})
	}
}

func checkBody(sp *nomadapi.ScalingPolicy, name string) map[string]any {
	for _, c := range sp.Policy["check"].([]any) {
		if b, ok := c.(map[string]any)[name]; ok {
			return b.([]any)[0].(map[string]any)
		}
	}
	return nil
}

// targetValueCount is nomad-autoscaler v0.4.7's target-value strategy,
// reimplemented from plugins/builtin/strategy/target-value/plugin/plugin.go
// (StrategyPlugin.Run and calculateDirection; importing it would pull the
// autoscaler's plugin tree into go.mod), without max_scale_up/down, then
// clamped to [min, max] as its policy evaluation does.
func targetValueCount(count int64, metric, target, threshold float64, lo, hi int64) int64 {
	factor := metric / target
	newCount := count
	switch {
	case count == 0 && factor > 0:
		newCount = int64(math.Ceil(factor))
	case count == 0:
	case factor < 1-threshold || factor > 1+threshold:
		newCount = int64(math.Ceil(float64(count) * factor))
	}
	return min(max(newCount, lo), hi)
}

// The planner given a flat forecast of the group total (metric x count)
// settles on the count target-value chooses for that metric now.
func TestAPlannedTargetValuePolicySettlesWhereNomadAutoscalersTargetValueWould(t *testing.T) {
	cases := []struct {
		count          int64
		metric, target float64
	}{
		{4, 90, 75},   // factor 1.2: up to ceil(4.8) = 5
		{4, 150, 75},  // doubled load: 8
		{10, 30, 75},  // factor 0.4: down to 4
		{10, 66, 75},  // 8.8 replicas' worth: 9
		{3, 75, 75},   // on target: hold 3
		{5, 60, 60},   // on target: hold 5
		{2, 99, 50},   // 3.96: 4
		{6, 50.5, 50}, // 6.06: 7 (factor 1.01 is outside a 0 threshold)
		{4, 75.1, 75}, // 4.005: 5, though the shortfall is under one unit of CPU
		{7, 1, 75},    // nearly idle: min
		{3, 900, 75},  // far over: max
		{0, 120, 75},  // none running: the metric is one replica's, ceil(1.6) = 2
		{1, 0, 75},    // no load: min
	}
	const lo, hi = 1, 20
	for _, tc := range cases {
		sp := seedPolicy()
		sp.Min, sp.Max = i64(lo), i64(hi)
		checkBody(sp, "cpu")["strategy"] = []any{map[string]any{"target-value": []any{map[string]any{"target": tc.target}}}}
		p, err := ParsePolicy(sp, Defaults{CacheSize: 10, ForecastHorizon: 60})
		if err != nil {
			t.Fatal(err)
		}
		total := tc.metric * float64(max(tc.count, 1)) // what GroupTotals records
		prob := problemFor(p, int(tc.count))
		prob.Penalty = penaltyFor(p, prob.ReplicaCost)
		prob.Demand = make([]float64, 120)
		for i := range prob.Demand {
			prob.Demand[i] = total
		}
		plan, err := optimize.DPSolver{}.Solve(context.Background(), prob)
		if err != nil {
			t.Fatal(err)
		}
		got := plan.Serving[len(plan.Serving)/2]
		want := targetValueCount(tc.count, tc.metric, tc.target, 0, lo, hi)
		if int64(got) != want {
			t.Errorf("count %d, metric %v, target %v: plan settles at %d, target-value chooses %d", tc.count, tc.metric, tc.target, got, want)
		}
	}
}

// Within target-value's dead band (default threshold 0.01) it holds the
// count while a plan covers the demand: the one documented difference.
func TestWithinTargetValuesDeadBandThePlanStillCoversTheDemand(t *testing.T) {
	p, err := ParsePolicy(seedPolicy(), Defaults{CacheSize: 10, ForecastHorizon: 60})
	if err != nil {
		t.Fatal(err)
	}
	const count, metric = 4, 75.5 // factor 1.0067
	if held := targetValueCount(count, metric, 75, 0.01, 2, 20); held != count {
		t.Fatalf("target-value with its default threshold chose %d, want it to hold %d", held, count)
	}
	prob := problemFor(p, count)
	prob.Penalty = penaltyFor(p, prob.ReplicaCost)
	prob.Demand = make([]float64, 120)
	for i := range prob.Demand {
		prob.Demand[i] = metric * count
	}
	plan, err := optimize.DPSolver{}.Solve(context.Background(), prob)
	if err != nil {
		t.Fatal(err)
	}
	if got := plan.Serving[60]; got != 5 {
		t.Errorf("plan settles at %d, want 5 (302 of demand at 75 per replica)", got)
	}
}
