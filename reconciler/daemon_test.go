package reconciler

import (
	"math"
	"testing"
)

func TestSeedDemandUsesTheExogenousChecksWhenThePolicyRecordsThem(t *testing.T) {
	p := Policy{Target: Target{DemandResponseTime: 0.05, DemandQueue: 0.1, DemandAuthWaiting: 0.2}}
	got := SeedDemand(p, []float64{100, 200}, map[string]float64{"avg_response_time": 2, "queue_waiting": 10, "authentication_awaiting_users": 5})
	// 100*2*0.05 + 10*0.1 + 5*0.2 = 12; 200*2*0.05 + 2 = 22
	if len(got) != 2 || math.Abs(got[0]-12) > 1e-12 || math.Abs(got[1]-22) > 1e-12 {
		t.Fatalf("demand = %v, want [12 22]", got)
	}
	plain := SeedDemand(p, []float64{100, 200}, map[string]float64{"requests": 1})
	if plain[0] != 100 || plain[1] != 200 {
		t.Fatalf("without exogenous checks demand = %v, want the forecast itself", plain)
	}
}

func TestATargetValueCheckIsRecordedAsItsGroupTotalAndOthersAsTheyAre(t *testing.T) {
	p := Policy{Key: "default/web/api", Namespace: "default", Job: "web", Group: "api", Checks: []Check{
		{Name: "cpu", Source: "nomad-apm", Query: "avg_cpu_percent", TargetValue: 75},
		{Name: "mem", Source: "nomad-apm", Query: "avg_memory_percent"},
	}}
	got := RecordTargets([]Policy{p})
	if len(got) != 2 {
		t.Fatalf("targets = %+v, want one per check", got)
	}
	if !got[0].Query.TimesCount || got[1].Query.TimesCount {
		t.Errorf("TimesCount = %v, %v; want only the target-value check's set", got[0].Query.TimesCount, got[1].Query.TimesCount)
	}
}
