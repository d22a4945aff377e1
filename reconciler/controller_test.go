package reconciler

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/nomadscalerd/nomadscalerd/history"
	"github.com/nomadscalerd/nomadscalerd/store"
)

// mutablePolicies is a fake policy source the test edits.
type mutablePolicies struct {
	mu   sync.Mutex
	list []*nomadapi.ScalingPolicy
}

func (m *mutablePolicies) ListPolicies(context.Context) ([]*nomadapi.ScalingPolicy, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]*nomadapi.ScalingPolicy(nil), m.list...), nil
}

func (m *mutablePolicies) set(list ...*nomadapi.ScalingPolicy) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.list = list
}

// freshNow says every series was sampled just now by the fake clock.
type freshNow struct{ clk *fakeClock }

func (f freshNow) LastSample(string) (time.Time, bool) { return f.clk.Now(), true }

// untilFake advances the fake clock a second at a time until cond holds.
func untilFake(t *testing.T, clk *fakeClock, what string, cond func() bool) {
	t.Helper()
	for i := 0; i < 120; i++ {
		for j := 0; j < 50 && !cond(); j++ {
			time.Sleep(time.Millisecond)
		}
		if cond() {
			return
		}
		clk.Advance(time.Second)
	}
	t.Fatalf("%s: not after 120 fake seconds", what)
}

func TestTheControllerWithAFakeSourceNomadAndClockAddsUpdatesAndRemovesAPolicy(t *testing.T) {
	h := newHarness(t, 2, []int{5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5})
	clk := newFakeClock()
	// One fake clock for the worker pool, the reconciler (cooldowns) and
	// the metrics' freshness.
	rec := New(Deps{Scaler: h.nomad, Observer: h.nomad, Planner: h.planner, Freshness: freshNow{clk}, State: h.db, Now: clk.Now})
	src := &mutablePolicies{}
	ctrl := NewController(rec, src, Defaults{CacheSize: 10, ForecastHorizon: 60}, nil, slog.New(slog.DiscardHandler))
	ctrl.SetClock(clk)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ctrl.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	calls := func() []ScaleRequest {
		h.nomad.mu.Lock()
		defer h.nomad.mu.Unlock()
		return append([]ScaleRequest(nil), h.nomad.calls...)
	}
	// Added: scheduled at once and scaled to the plan.
	sp := scalingPolicy(reqCheck, map[string]any{"capacity_per_replica": 10.0, "startup_delay": "0s"}, map[string]any{"evaluation_interval": "1s", "cooldown": "1s"})
	sp.Max = i64(8)
	src.set(sp)
	if err := ctrl.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	untilFake(t, clk, "a scale to the plan's 5", func() bool {
		cs := calls()
		return len(cs) == 1 && *cs[0].Count == 5
	})
	if ps := ctrl.Policies(); len(ps) != 1 || ps[0].Max != 8 {
		t.Fatalf("active policies %+v, want the one with max 8", ps)
	}
	// Updated: the next run reads the new bounds (and a new decider).
	edited := scalingPolicy(reqCheck, map[string]any{"capacity_per_replica": 10.0, "startup_delay": "0s"}, map[string]any{"evaluation_interval": "1s", "cooldown": "1s"})
	edited.Max = i64(3)
	src.set(edited)
	if err := ctrl.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	untilFake(t, clk, "a scale down to the new max 3", func() bool {
		cs := calls()
		return len(cs) == 2 && *cs[1].Count == 3
	})
	// Removed: unscheduled, and the reconciler forgets it.
	src.set()
	if err := ctrl.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if ps := ctrl.Policies(); len(ps) != 0 {
		t.Fatalf("active policies after removal: %+v", ps)
	}
	untilFake(t, clk, "the reconciler to forget the removed policy", func() bool {
		_, ok := rec.LastDecision("default/web/api")
		return !ok
	})
	before := len(calls())
	for range 30 {
		clk.Advance(time.Second)
	}
	time.Sleep(20 * time.Millisecond)
	if n := len(calls()); n != before {
		t.Fatalf("%d scale calls after the policy was removed", n-before)
	}
}

// jobGroupPolicy is a requests policy on the group of a job in the
// default namespace, with the ID "job-group".
func jobGroupPolicy(job, group string) *nomadapi.ScalingPolicy {
	sp := scalingPolicy(reqCheck, map[string]any{}, nil)
	sp.ID = job + "-" + group
	sp.Target = map[string]string{"Namespace": "default", "Job": job, "Group": group}
	return sp
}

// triggeredKeys are the pool's items with a trigger not yet served (the
// pool is not running in the test, so none is served).
func triggeredKeys(c *Controller) map[string]bool {
	c.pool.mu.Lock()
	defer c.pool.mu.Unlock()
	out := map[string]bool{}
	for key, it := range c.pool.items {
		if !it.triggered.IsZero() {
			out[key] = true
		}
	}
	return out
}

func TestAJobEventTriggersThatJobsPoliciesOnlyAndAFailedAllocationItsGroupWithAFakeSource(t *testing.T) {
	h := newHarness(t, 2, []int{2})
	src := &mutablePolicies{}
	ctrl := NewController(h.rec, src, Defaults{CacheSize: 10, ForecastHorizon: 60}, nil, slog.New(slog.DiscardHandler))
	src.set(jobGroupPolicy("web", "api"), jobGroupPolicy("web", "worker"), jobGroupPolicy("db", "main"), jobGroupPolicy("cache", "main"))
	ctx := context.Background()
	if err := ctrl.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	jobEvent := func(job string) nomadapi.Event {
		return nomadapi.Event{Topic: nomadapi.TopicJob, Type: "JobRegistered", Key: job, Payload: map[string]any{
			"Job": map[string]any{"ID": job, "Namespace": "default", "TaskGroups": []any{map[string]any{"Name": "api"}}}}}
	}
	ctrl.HandleEvents(ctx, 10, []nomadapi.Event{jobEvent("web")})
	if got := triggeredKeys(ctrl); len(got) != 2 || !got["default/web/api"] || !got["default/web/worker"] {
		t.Fatalf("after web's job event, triggered %v; want web's two groups only", got)
	}
	failed := nomadapi.Event{Topic: nomadapi.TopicAllocation, Type: "AllocationUpdated", Payload: map[string]any{
		"Allocation": map[string]any{"ID": "a1", "Namespace": "default", "JobID": "db", "TaskGroup": "main", "ClientStatus": nomadapi.AllocClientStatusFailed}}}
	ctrl.HandleEvents(ctx, 11, []nomadapi.Event{failed})
	if got := triggeredKeys(ctrl); len(got) != 3 || !got["default/db/main"] || got["default/cache/main"] {
		t.Fatalf("after db's failed allocation, triggered %v; want db's group added", got)
	}
	// A removed job's policies are not triggered by its later events.
	src.set(jobGroupPolicy("cache", "main"))
	if err := ctrl.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	ctrl.HandleEvents(ctx, 12, []nomadapi.Event{jobEvent("cache")})
	if got := triggeredKeys(ctrl); !got["default/cache/main"] || len(ctrl.byScope) != 1 {
		t.Fatalf("after the others were removed and cache's event, triggered %v and %d jobs indexed; want cache's group and 1 job", got, len(ctrl.byScope))
	}
}

func TestTheRecordedTargetsAreBuiltAgainOnlyWhenAPolicysChecksChangeWithAFakeSource(t *testing.T) {
	h := newHarness(t, 2, []int{2})
	src := &mutablePolicies{}
	ctrl := NewController(h.rec, src, Defaults{CacheSize: 10, ForecastHorizon: 60}, nil, slog.New(slog.DiscardHandler))
	ctx := context.Background()
	refresh := func(min int64, query string) []history.Target {
		t.Helper()
		sp := scalingPolicy(map[string]map[string]any{"requests": {"source": "prometheus", "query": query}}, map[string]any{}, nil)
		sp.Min = i64(min)
		src.set(sp)
		if err := ctrl.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		return ctrl.RecordTargets()
	}
	first := refresh(1, "q1")
	if len(first) != 1 || first[0].Query.Query != "q1" || first[0].Series != "default/web/api/requests" {
		t.Fatalf("targets %+v, want the one check q1", first)
	}
	if again := refresh(2, "q1"); &again[0] != &first[0] {
		t.Error("an edit of min alone built the targets again; want the list kept")
	}
	if edited := refresh(2, "q2"); len(edited) != 1 || edited[0].Query.Query != "q2" {
		t.Errorf("targets after the query changed: %+v, want q2", edited)
	}
	src.set()
	if err := ctrl.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if gone := ctrl.RecordTargets(); len(gone) != 0 {
		t.Errorf("targets after the policy was removed: %+v", gone)
	}
}

// jobPolicies is a fake source that also answers one job's policies, as
// the cluster state does.
type jobPolicies struct{ mutablePolicies }

func (j *jobPolicies) JobPolicies(namespace, job string) []*nomadapi.ScalingPolicy {
	list, _ := j.ListPolicies(context.Background())
	var out []*nomadapi.ScalingPolicy
	for _, sp := range list {
		if sp.Target["Namespace"] == namespace && sp.Target["Job"] == job {
			out = append(out, sp)
		}
	}
	return out
}

func TestAJobEventAppliesThatJobsPoliciesAloneWithAFakeSource(t *testing.T) {
	h := newHarness(t, 2, []int{2})
	src := &jobPolicies{}
	ctrl := NewController(h.rec, src, Defaults{CacheSize: 10, ForecastHorizon: 60}, nil, slog.New(slog.DiscardHandler))
	ctx := context.Background()
	src.set(jobGroupPolicy("web", "api"), jobGroupPolicy("web", "worker"), jobGroupPolicy("webhooks", "main"), jobGroupPolicy("db", "main"))
	if err := ctrl.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	// web loses its worker group and db is gone from the source too; only
	// web's event arrives, so only web's policies change.
	src.set(jobGroupPolicy("web", "api"), jobGroupPolicy("webhooks", "main"))
	jobEvent := nomadapi.Event{Topic: nomadapi.TopicJob, Type: "JobRegistered", Key: "web", Payload: map[string]any{
		"Job": map[string]any{"ID": "web", "Namespace": "default"}}}
	ctrl.HandleEvents(ctx, 10, []nomadapi.Event{jobEvent})
	var keys []string
	for _, p := range ctrl.Policies() {
		keys = append(keys, p.Key)
	}
	if want := "default/db/main default/web/api default/webhooks/main"; strings.Join(keys, " ") != want {
		t.Errorf("policies after web's event: %v, want %s", keys, want)
	}
	for key, want := range map[string]string{"default/web/api": "default/web/", "default/web/": "default/web/", "default/a/b/g": "default/a/", "default": "default"} {
		if got := keyScope(key); got != want {
			t.Errorf("keyScope(%q) = %q, want %q", key, got, want)
		}
	}
}

func TestASettingThatDoesNothingIsLoggedOnceWhenThePolicyBecomesActiveAndAgainOnlyWhenItChangesWithAFakeSource(t *testing.T) {
	h := newHarness(t, 2, []int{2})
	src := &mutablePolicies{}
	var logs bytes.Buffer
	ctrl := NewController(h.rec, src, Defaults{CacheSize: 10, ForecastHorizon: 60}, nil, slog.New(slog.NewTextHandler(&logs, nil)))
	ctx := context.Background()
	refresh := func(target map[string]any) int {
		t.Helper()
		src.set(scalingPolicy(reqCheck, target, nil))
		if err := ctrl.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		n := strings.Count(logs.String(), `msg="policy setting has no effect"`)
		return n
	}
	if n := refresh(map[string]any{"seasonality": []any{"24h"}}); n != 1 {
		t.Fatalf("%d warnings after the policy became active, want 1:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "seasonality 24h0m0s is never fitted") {
		t.Errorf("the warning does not say which setting: %s", logs.String())
	}
	if n := refresh(map[string]any{"seasonality": []any{"24h"}}); n != 1 {
		t.Errorf("%d warnings after a refresh that changed nothing, want still 1", n)
	}
	if n := refresh(map[string]any{"seasonality": []any{"12h"}}); n != 2 {
		t.Errorf("%d warnings after the season changed, want 2", n)
	}
	if n := refresh(map[string]any{"seasonality": []any{"12h"}, "history_window": "13h"}); n != 2 {
		t.Errorf("%d warnings after the window was made long enough, want still 2", n)
	}
	if got := ctrl.Status(ctx).Policies; len(got) != 1 || len(got[0].Warnings) != 0 {
		t.Errorf("status %+v, want the one policy without warnings", got)
	}
}

func TestASampleThatStepsDemandUpTriggersItsPolicyAtOnceAndNoiseOrAFailedLastDecisionDoesNotWithAFakeSource(t *testing.T) {
	h := newHarness(t, 2, []int{2})
	src := &mutablePolicies{}
	ctrl := NewController(h.rec, src, Defaults{CacheSize: 10, ForecastHorizon: 60}, nil, slog.New(slog.DiscardHandler))
	src.set(scalingPolicy(reqCheck, map[string]any{"capacity_per_replica": 10.0}, nil))
	if err := ctrl.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	const key, series = "default/web/api", "default/web/api/requests"
	decided := func(d Decision) {
		h.rec.mu.Lock()
		h.rec.last[key], h.rec.delays[key] = d, 30*time.Second
		h.rec.mu.Unlock()
	}
	at := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	observe := func(vs ...float64) bool {
		t.Helper()
		for _, v := range vs {
			ctrl.ObservePoints([]store.Point{{Series: series, T: at, V: v}, {Series: "default/other/x/requests", T: at, V: 1e6}})
			at = at.Add(time.Second)
		}
		return triggeredKeys(ctrl)[key]
	}
	clearTriggers := func() {
		ctrl.pool.mu.Lock()
		ctrl.pool.items[key].triggered = time.Time{}
		ctrl.pool.mu.Unlock()
	}
	steady := make([]float64, 60)
	for i := range steady {
		steady[i] = 15 + float64(i%5) // around 17, 2 replicas
	}
	if observe(steady...) {
		t.Fatal("samples before the policy's first decision triggered it")
	}
	decided(Decision{Want: 2, Source: "plan", Action: "none"})
	if observe(steady...) {
		t.Fatal("a steady level within the count asked for triggered the policy")
	}
	if !observe(150, 150) {
		t.Fatal("two seconds of a step to 150 (15 replicas) did not trigger the policy asking for 2")
	}
	clearTriggers()
	decided(Decision{Want: 2, Source: "plan", Action: "error"})
	if observe(160, 160) {
		t.Error("a sample triggered a policy whose last reconcile failed (it retries on its backoff)")
	}
	decided(Decision{Want: 2, Action: "none", Reason: "follower: the leader scales"})
	if observe(170, 170) {
		t.Error("a sample triggered a policy the decider did not decide (a follower)")
	}
	decided(Decision{Want: 5, Source: "bounds", Action: "none"})
	if observe(180, 180) {
		t.Error("a sample triggered a policy already at its max of 5")
	}
	src.set()
	if err := ctrl.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(ctrl.recent) != 0 || len(ctrl.requestsOf) != 0 {
		t.Errorf("a removed policy's samples are kept: %d windows, %d series", len(ctrl.recent), len(ctrl.requestsOf))
	}
}
