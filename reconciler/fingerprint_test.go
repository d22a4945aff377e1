package reconciler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/nomadscalerd/nomadscalerd/optimize"
	"github.com/nomadscalerd/nomadscalerd/store"
)

// fingerprintSkips are the unexported fields the fingerprint leaves out on
// purpose: set shows in the values the policy wrote, and an event's expr
// is parsed from its Cron.
var fingerprintSkips = map[string]bool{"Target.set": true, "Event.expr": true}

// changeField edits one exported field of v (addressable) to another value
// and reports false for a kind the fingerprint does not know how to encode.
func changeField(f reflect.Value) bool {
	switch f.Kind() {
	case reflect.Int, reflect.Int64:
		f.SetInt(f.Int() + 1)
	case reflect.Float64:
		f.SetFloat(f.Float() + 0.25)
	case reflect.Bool:
		f.SetBool(!f.Bool())
	case reflect.String:
		f.SetString(f.String() + "x")
	case reflect.Slice:
		f.Set(reflect.Append(f, reflect.New(f.Type().Elem()).Elem()))
	default:
		return false
	}
	return true
}

// eachFieldChanged calls check with p edited in one field of the struct
// at, for every field of it, and fails on a field it cannot edit.
func eachFieldChanged(t *testing.T, base Policy, typ string, at func(*Policy) reflect.Value, check func(name string, p Policy)) {
	t.Helper()
	v := at(&base)
	for i := range v.NumField() {
		sf := v.Type().Field(i)
		name := typ + "." + sf.Name
		if !sf.IsExported() {
			if !fingerprintSkips[name] {
				t.Errorf("%s is unexported and not among the fields the fingerprint skips: encode it in appendFingerprint or skip it here with a reason", name)
			}
			continue
		}
		p := base
		p.Checks = append([]Check(nil), base.Checks...)
		p.Target.Seasonality = append([]time.Duration(nil), base.Target.Seasonality...)
		p.Target.Events = append([]Event(nil), base.Target.Events...)
		if !changeField(at(&p).Field(i)) {
			t.Errorf("%s is a %s: teach appendFingerprint and this test its kind", name, sf.Type)
			continue
		}
		check(name, p)
	}
}

func TestTheFingerprintChangesWithEverySetting(t *testing.T) {
	base := testPolicy()
	base.Target.Seasonality = []time.Duration{time.Hour}
	base.Target.Events = []Event{{Name: "noon", Cron: "0 12 * * *", Duration: time.Minute}}
	fp := base.fingerprint()
	if !base.matches(fp) {
		t.Fatal("a policy does not match its own fingerprint")
	}
	differs := func(name string, p Policy) {
		if p.matches(fp) || p.fingerprint() == fp {
			t.Errorf("editing %s leaves the fingerprint as it was: a decider or forecaster built before the edit would be kept", name)
		}
	}
	eachFieldChanged(t, base, "Target", func(p *Policy) reflect.Value { return reflect.ValueOf(&p.Target).Elem() }, differs)
	eachFieldChanged(t, base, "Check", func(p *Policy) reflect.Value { return reflect.ValueOf(&p.Checks[0]).Elem() }, differs)
	eachFieldChanged(t, base, "Event", func(p *Policy) reflect.Value { return reflect.ValueOf(&p.Target.Events[0]).Elem() }, differs)
	for name, edit := range map[string]func(*Policy){
		"Min":         func(p *Policy) { p.Min++ },
		"Max":         func(p *Policy) { p.Max++ },
		"a new check": func(p *Policy) { p.Checks = append(p.Checks, p.Checks[0]) },
	} {
		p := base
		edit(&p)
		differs(name, p)
	}
	// Length prefixes keep neighbouring strings apart.
	a, b := base, base
	a.Checks = []Check{{Name: "ab", Source: "c"}}
	b.Checks = []Check{{Name: "a", Source: "bc"}}
	if a.fingerprint() == b.fingerprint() {
		t.Error("checks named ab/c and a/bc share a fingerprint")
	}
}

func TestATuningThatChangesTheSettingsGetsANewDeciderAndTheSameTuningKeepsIt(t *testing.T) {
	h := newHarness(t, 2, []int{2})
	h.reconcile(t)
	if h.planner.calls != 1 {
		t.Fatalf("planner calls %d after the first reconcile, want 1", h.planner.calls)
	}
	h.reconcile(t)
	if h.planner.calls != 1 {
		t.Fatalf("planner calls %d after an unchanged reconcile, want the decider kept (1)", h.planner.calls)
	}
	h.planner.recent = make([]float64, 3*3600)
	p := testPolicy()
	if !p.Target.SelfTune {
		t.Fatal("the test policy must self-tune")
	}
	if err := h.rec.TuneOnce(context.Background(), p, &fakeTuner{margin: p.Target.ForecastMargin + 0.5}); err != nil {
		t.Fatal(err)
	}
	h.reconcile(t)
	if h.planner.calls != 2 {
		t.Errorf("planner calls %d after a tuning changed the forecast margin, want a new decider that plans (2)", h.planner.calls)
	}
	h.reconcile(t)
	if h.planner.calls != 2 {
		t.Errorf("planner calls %d after a reconcile with the same tuning, want the tuned decider kept (2)", h.planner.calls)
	}
}

func TestTheHistoryPlannerBuildsANewForecasterForATunedPolicyOnly(t *testing.T) {
	built := 0
	hp := NewHistoryPlanner(nil, func(Policy) optimize.Forecaster { built++; return optimize.LastValueForecaster{} }, nil, optimize.DPSolver{}, nil, nil)
	p := testPolicy()
	use := func(hp *HistoryPlanner, p Policy) {
		_, unlock, err := hp.forecasterFor(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		unlock()
	}
	use(hp, p)
	use(hp, p)
	if built != 1 {
		t.Fatalf("%d forecasters for one unchanged policy, want 1", built)
	}
	// POST /optimize plans with the request's bounds and cache size.
	asked := p
	asked.Min, asked.Max, asked.Target.CacheSize, asked.Target.ForecastHorizon = 3, 7, 45, 90
	use(hp, asked)
	use(hp, p)
	if built != 1 {
		t.Fatalf("%d forecasters after plans with another request's bounds and cache size, want the policy's kept (1)", built)
	}
	tuned := p.Tuned(Tuning{At: time.Unix(1, 0), ForecastMargin: p.Target.ForecastMargin, ModelStep: p.Target.ModelStep + time.Second})
	use(hp, tuned)
	if built != 2 {
		t.Errorf("%d forecasters after a tuning changed model_step, want a new one (2)", built)
	}
	use(hp, tuned)
	if built != 2 {
		t.Errorf("%d forecasters after the same tuned policy again, want the tuned one kept (2)", built)
	}
}

// BenchmarkPolicyFingerprintMatches is the per-reconcile and per-plan cost
// of telling whether a decider or forecaster is stale.
func BenchmarkPolicyFingerprintMatches(b *testing.B) {
	p := testPolicy()
	p.Checks[0].Query = `sum(rate(http_requests_total{job="web",group="api"}[1m]))`
	fp := p.fingerprint()
	b.ReportAllocs()
	for b.Loop() {
		if !p.matches(fp) {
			b.Fatal("no match")
		}
	}
}

// BenchmarkObservePointsOfAThousandPolicies is one recorder tick at 1,000
// policies: a sample each, every policy with a full floor window and a
// decision to compare against (none of them stepping up).
func BenchmarkObservePointsOfAThousandPolicies(b *testing.B) {
	rec := New(Deps{Log: slog.New(slog.DiscardHandler)})
	src := &mutablePolicies{}
	ctrl := NewController(rec, src, Defaults{CacheSize: 10, ForecastHorizon: 60}, nil, slog.New(slog.DiscardHandler))
	var list []*nomadapi.ScalingPolicy
	pts := make([]store.Point, 0, 1000)
	for i := range 1000 {
		job := fmt.Sprintf("job%04d", i)
		list = append(list, jobGroupPolicy(job, "api"))
		key := PolicyKey("default", job, "api")
		rec.last[key], rec.delays[key] = Decision{Want: 5, Source: "plan", Action: "none"}, 30*time.Second
		pts = append(pts, store.Point{Series: store.SeriesName(key, "requests"), V: 20})
	}
	src.set(list...)
	if err := ctrl.Refresh(context.Background()); err != nil {
		b.Fatal(err)
	}
	for range 60 {
		ctrl.ObservePoints(pts)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		ctrl.ObservePoints(pts)
	}
	b.StopTimer()
	if n := len(triggeredKeys(ctrl)); n != 0 {
		b.Fatalf("%d policies woken by a steady level", n)
	}
}

func TestAPlanWaitingForItsPolicysForecasterStopsWaitingWhenItsRequestIsGivenUp(t *testing.T) {
	hp := NewHistoryPlanner(nil, func(Policy) optimize.Forecaster { return optimize.LastValueForecaster{} }, nil, optimize.DPSolver{}, nil, nil)
	p := testPolicy()
	// A plan (a slow fit, say) holds the forecaster.
	_, unlock, err := hp.forecasterFor(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := hp.forecasterFor(ctx, p); !errors.Is(err, context.Canceled) {
		t.Fatalf("a given-up request waiting for the forecaster: %v, want context.Canceled", err)
	}
	unlock()
	// Released, the forecaster is had at once.
	_, unlock, err = hp.forecasterFor(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	unlock()
}
