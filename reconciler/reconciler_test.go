package reconciler

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/nomadscalerd/nomadscalerd/migrations"
	"github.com/nomadscalerd/nomadscalerd/model"
	"github.com/nomadscalerd/nomadscalerd/optimize"
	"github.com/nomadscalerd/nomadscalerd/predict"
	"github.com/nomadscalerd/nomadscalerd/store"
)

// fakeNomad stands in for Nomad in unit tests of decisions a real agent
// cannot be made to produce on demand (deployment blocks, outages at an
// exact moment).
type fakeNomad struct {
	mu      sync.Mutex
	desired int
	exists  bool
	calls   []ScaleRequest
	failErr error
	// minHealthy is the group's update block's min_healthy_time.
	minHealthy time.Duration
	// now, when set, times the scaling events Scale records in events
	// (oldest first), which LastScalingEvent reads back, counting its
	// reads in eventReads and failing with eventErr when set.
	now        func() time.Time
	events     []ScalingEvent
	eventReads int
	eventErr   error
}

func (f *fakeNomad) Scale(_ context.Context, r ScaleRequest) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, r)
	if f.failErr != nil {
		return f.failErr
	}
	if f.now != nil {
		ev := ScalingEvent{Time: f.now(), PreviousCount: f.desired, Message: r.Message, Meta: r.Meta}
		if r.Count != nil {
			n := *r.Count
			ev.Count = &n
		}
		f.events = append(f.events, ev)
	}
	if r.Count != nil {
		f.desired = *r.Count
	}
	return nil
}

func (f *fakeNomad) LastScalingEvent(context.Context, string, string, string) (ScalingEvent, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.eventReads++
	if f.eventErr != nil {
		return ScalingEvent{}, false, f.eventErr
	}
	if len(f.events) == 0 {
		return ScalingEvent{}, false, nil
	}
	return f.events[len(f.events)-1], true, nil
}

func (f *fakeNomad) GroupStatus(context.Context, string, string, string) (GroupStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return GroupStatus{Exists: f.exists, Desired: f.desired, Running: f.desired, MinHealthy: f.minHealthy}, nil
}

// fixedPlanner plans the counts a test gives it and reports the recent
// demand the test sets.
type fixedPlanner struct {
	desired []int
	err     error
	calls   int
	recent  []float64
	// recentErr, when set, is what Recent fails with.
	recentErr error
	// recentCalls counts Recent's calls.
	recentCalls int
	horizon     int // of the last request
	burst       float64
}

func (p *fixedPlanner) PlanAhead(_ context.Context, pol Policy, r predict.PlanRequest) (optimize.Plan, error) {
	p.calls++
	p.horizon = r.Horizon
	if p.err != nil {
		return optimize.Plan{}, p.err
	}
	return optimize.Plan{ID: r.Now.Format("150405.000"), Start: r.Now, Desired: p.desired, MinReplicas: pol.Min, MaxReplicas: pol.Max, Burst: p.burst}, nil
}

func (p *fixedPlanner) Recent(context.Context, Policy, time.Time, time.Duration) ([]float64, error) {
	p.recentCalls++
	if p.recentErr != nil {
		return nil, p.recentErr
	}
	return p.recent, nil
}

type freshAt map[string]time.Time

func (f freshAt) LastSample(s string) (time.Time, bool) { t, ok := f[s]; return t, ok }

type stepClock struct{ t time.Time }

func (c *stepClock) now() time.Time          { return c.t }
func (c *stepClock) advance(d time.Duration) { c.t = c.t.Add(d) }

type follower struct{}

func (follower) IsLeader() bool { return false }

func testPolicy() Policy {
	p := DefaultPolicy(1, 8)
	p.Key, p.Job, p.Group = "default/web/api", "web", "api"
	p.Checks = []Check{{Name: "requests", Source: "prometheus", Query: "q"}}
	p.Target.StartupDelaySet = true // instant replicas: the plan's dips are taken as planned
	p.CooldownSet = true            // the 30 s default as written: the tests below time it
	return p
}

type harness struct {
	nomad   *fakeNomad
	planner *fixedPlanner
	db      *store.DB
	clock   *stepClock
	fresh   freshAt
	rec     *Reconciler
}

func newHarness(t *testing.T, desired int, plan []int) *harness {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "r.db"), store.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	h := &harness{nomad: &fakeNomad{desired: desired, exists: true}, planner: &fixedPlanner{desired: plan}, db: db,
		clock: &stepClock{t: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}}
	h.fresh = freshAt{"default/web/api/requests": h.clock.t}
	h.rec = h.build(DepsOverride{})
	return h
}

type DepsOverride struct {
	leader Leadership
	dryRun bool
}

func (h *harness) build(o DepsOverride) *Reconciler {
	return New(Deps{Scaler: h.nomad, Observer: h.nomad, Planner: h.planner, Freshness: h.fresh, State: h.db,
		Leader: o.leader, DryRun: o.dryRun, Now: h.clock.now})
}

// reconcile runs one reconcile with fresh metrics; it fails the test on an
// error unless the test expects one (wantErr).
func (h *harness) reconcile(t *testing.T, wantErr ...bool) Result {
	t.Helper()
	h.fresh["default/web/api/requests"] = h.clock.t
	res, err := h.rec.Reconcile(context.Background(), testPolicy())
	if err != nil && (len(wantErr) == 0 || !wantErr[0]) {
		t.Fatalf("reconcile: %v", err)
	}
	return res
}

func TestReconcileScalesToThePlanValueAndJournalsIt(t *testing.T) {
	h := newHarness(t, 2, []int{5, 5, 5, 5, 5, 5, 5, 5, 5, 5})
	h.reconcile(t)
	if len(h.nomad.calls) != 1 || *h.nomad.calls[0].Count != 5 {
		t.Fatalf("calls = %+v, want one scale to 5", h.nomad.calls)
	}
	c := h.nomad.calls[0]
	if c.Meta["plan_id"] == "" || c.Meta["reason"] == "" || c.Message == "" {
		t.Errorf("scale call does not explain itself: %+v", c)
	}
	entries, _ := h.db.Entries(0, 0)
	if len(entries) != 2 || entries[0].State != store.StateIntent || entries[1].State != store.StateDone {
		t.Errorf("journal = %+v, want intent then done", entries)
	}
}

func TestAScaleUpCoversThePlanUntilTheGroupsDeploymentLetsTheNextChangeThrough(t *testing.T) {
	// The plan wants 2 for 10 s, then 6. Replicas start at once and a
	// change disrupts for 5 s, so a count looks 5 s ahead: 2. A group
	// whose update block waits 20 s for a new allocation to run healthy
	// refuses the next change that long, so its scale-up asks for 6 now.
	plan := append(slices.Repeat([]int{2}, 10), slices.Repeat([]int{6}, 50)...)
	for _, c := range []struct {
		minHealthy time.Duration
		want       int
	}{{0, 2}, {20 * time.Second, 6}} {
		h := newHarness(t, 1, plan)
		h.nomad.minHealthy = c.minHealthy
		h.reconcile(t)
		if len(h.nomad.calls) != 1 || *h.nomad.calls[0].Count != c.want {
			t.Errorf("min_healthy_time %s: calls %+v, want one scale to %d", c.minHealthy, h.nomad.calls, c.want)
		}
		d, ok := h.rec.LastDecision(testPolicy().Key)
		if !ok || d.MinHealthy != c.minHealthy.String() || d.StartupDelay != "0s" {
			t.Errorf("min_healthy_time %s: last decision %+v, want it to show the min healthy time and the 0s startup delay planned with", c.minHealthy, d)
		}
	}
}

func TestTheLastDecisionShowsTheBurstHeadroomItsPlanHolds(t *testing.T) {
	h := newHarness(t, 2, slices.Repeat([]int{4}, 60))
	h.planner.burst = 17.5
	h.reconcile(t)
	if d, ok := h.rec.LastDecision(testPolicy().Key); !ok || d.BurstHeadroom != 17.5 {
		t.Errorf("last decision %+v, want the plan's burst headroom 17.5", d)
	}
}

func TestReconcileDecidesFromNomadsDesiredCountAndDoesNothingAtPlan(t *testing.T) {
	h := newHarness(t, 5, []int{5, 5, 5})
	h.reconcile(t)
	if len(h.nomad.calls) != 0 {
		t.Fatalf("scaled although desired equals the plan: %+v", h.nomad.calls)
	}
}

func TestServedCountsAreClampedToThePolicyBounds(t *testing.T) {
	h := newHarness(t, 3, []int{50})
	h.reconcile(t)
	if len(h.nomad.calls) != 1 || *h.nomad.calls[0].Count != 8 {
		t.Fatalf("calls = %+v, want a scale to max 8", h.nomad.calls)
	}
}

func TestCooldownHoldsTheNextActionAndSurvivesARestart(t *testing.T) {
	h := newHarness(t, 2, []int{5, 5, 5, 5, 5, 5, 5, 5, 5, 5})
	h.reconcile(t)
	h.planner.desired = []int{1, 1, 1, 1, 1, 1, 1, 1, 1, 1}
	h.clock.advance(21 * time.Second) // plan refresh due (2 passes of 10 s), cooldown 30 s not over
	h.rec = h.build(DepsOverride{})   // a restart: a new reconciler on the same database
	h.reconcile(t)
	if len(h.nomad.calls) != 1 {
		t.Fatalf("acted during cooldown: %+v", h.nomad.calls)
	}
	if d, _ := h.rec.LastDecision("default/web/api"); d.Action != "cooldown" {
		t.Fatalf("decision = %+v, want cooldown", d)
	}
	h.clock.advance(10 * time.Second)
	h.reconcile(t)
	if len(h.nomad.calls) != 2 || *h.nomad.calls[1].Count != 1 {
		t.Fatalf("calls = %+v, want a scale down to 1 after the cooldown", h.nomad.calls)
	}
}

func TestAnUnwrittenCooldownHoldsAScaleDownOnlyAsLongAsAReplicaTakesToComeBack(t *testing.T) {
	// Instant replicas: one taken away serves again after the 5 s
	// disruption, so an unwritten cooldown is 5 s; a written one is kept.
	for _, c := range []struct {
		name    string
		written bool
		want    []int
	}{
		{"unwritten: the scale-down 11 s later is made", false, []int{5, 1}},
		{"written 30s: the scale-down 11 s later waits", true, []int{5}},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, 2, []int{5, 5, 5, 5, 5, 5, 5, 5, 5, 5})
			p := testPolicy()
			p.CooldownSet = c.written
			reconcile := func() {
				h.fresh["default/web/api/requests"] = h.clock.t
				if _, err := h.rec.Reconcile(context.Background(), p); err != nil {
					t.Fatalf("reconcile: %v", err)
				}
			}
			reconcile()
			h.planner.desired = []int{1, 1, 1, 1, 1, 1, 1, 1, 1, 1}
			h.clock.advance(11 * time.Second) // past the 10 s re-plan, within 30 s
			reconcile()
			var got []int
			for _, call := range h.nomad.calls {
				got = append(got, *call.Count)
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("scaled to %v, want %v", got, c.want)
			}
		})
	}
}

func TestActiveDeploymentIsRetriedWithBackoffAndStartsNoCooldown(t *testing.T) {
	h := newHarness(t, 2, []int{4, 4, 4, 4, 4, 4, 4, 4, 4, 4})
	h.nomad.failErr = fmt.Errorf("scale web/api: %w: Unexpected response code: 400", ErrActiveDeployment)
	r1 := h.reconcile(t)
	r2 := h.reconcile(t)
	if r1.RequeueAfter <= 0 || r1.RequeueAfter >= testPolicy().EvaluationInterval || r2.RequeueAfter <= 0 {
		t.Errorf("requeue %s then %s: want a backoff retry sooner than the interval", r1.RequeueAfter, r2.RequeueAfter)
	}
	if d, _ := h.rec.LastDecision("default/web/api"); d.Action != "blocked" {
		t.Fatalf("decision = %+v, want blocked", d)
	}
	h.nomad.failErr = nil
	h.clock.advance(time.Second) // well inside a cooldown, had one started
	h.reconcile(t)
	if n := len(h.nomad.calls); n != 3 || *h.nomad.calls[2].Count != 4 || h.nomad.desired != 4 {
		t.Fatalf("calls = %d, desired %d: the retry after the deployment should scale at once", n, h.nomad.desired)
	}
}

func TestAPlannerFailureKeepsServingTheCachedPlan(t *testing.T) {
	h := newHarness(t, 2, []int{3, 3, 3, 3, 3, 3, 3, 3, 3, 3})
	h.reconcile(t)
	h.planner.err = errors.New("forecast diverged")
	h.clock.advance(45 * time.Second) // plan due for refresh, cooldown over
	h.nomad.desired = 1               // scaled down by hand: raised at once, a scale-up is never held
	h.reconcile(t)
	if h.nomad.desired != 3 {
		t.Fatalf("desired = %d, want 3 from the cached plan", h.nomad.desired)
	}
	if h.planner.calls != 2 {
		t.Fatalf("planner calls = %d, want a refresh attempt", h.planner.calls)
	}
}

func TestStaleMetricsNeverScaleDownAndScaleUpOnlyOnFreshEvidence(t *testing.T) {
	for _, tc := range []struct {
		name    string
		desired int
		plan    int
	}{{"down", 6, 2}, {"up", 2, 6}} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.desired, []int{tc.plan})
			h.fresh["default/web/api/requests"] = h.clock.t.Add(-5 * time.Minute)
			if _, err := h.rec.Reconcile(context.Background(), testPolicy()); err != nil {
				t.Fatal(err)
			}
			if len(h.nomad.calls) != 0 {
				t.Fatalf("scaled %s on stale metrics: %+v", tc.name, h.nomad.calls)
			}
			if d, _ := h.rec.LastDecision("default/web/api"); !d.Conservative {
				t.Fatalf("decision %+v not marked conservative", d)
			}
		})
	}
}

func TestAnIntentLeftByACrashIsSettledFromNomadWithoutScalingTwice(t *testing.T) {
	h := newHarness(t, 5, []int{5, 5, 5, 5, 5, 5, 5, 5, 5, 5})
	// The previous process wrote its intent, Nomad applied it, then it died.
	_, err := h.db.Append(store.JournalEntry{ActionID: "a1", Kind: "scale", State: store.StateIntent, Target: "default/web/api",
		Data: mustJSON(scaleData{From: 2, To: 5})})
	if err != nil {
		t.Fatal(err)
	}
	h.reconcile(t)
	if len(h.nomad.calls) != 0 {
		t.Fatalf("scaled again: %+v", h.nomad.calls)
	}
	last, _ := h.db.LastAction("default/web/api")
	if last.ActionID != "a1" || last.State != store.StateDone {
		t.Fatalf("last journal entry = %+v, want a1 settled done", last)
	}
}

func TestAnActionSettledDoneAfterACrashKeepsTheCooldownItStarted(t *testing.T) {
	fives := []int{5, 5, 5, 5, 5, 5, 5, 5, 5, 5}
	ones := []int{1, 1, 1, 1, 1, 1, 1, 1, 1, 1}
	// An uninterrupted scale-up journals its intent with the cooldown it
	// starts.
	h := newHarness(t, 2, fives)
	h.reconcile(t)
	entries, err := h.db.Entries(0, 10)
	if err != nil {
		t.Fatal(err)
	}
	var intent store.JournalEntry
	for _, e := range entries {
		if e.State == store.StateIntent {
			intent = e
		}
	}
	var data scaleData
	if err := jsonUnmarshal(intent.Data, &data); err != nil || data.To != 5 || !data.CooldownUntil.After(h.clock.t) {
		t.Fatalf("intent %+v (data %+v, err %v): want the scale to 5 with a cooldown ending after now", intent, data, err)
	}

	// The same intent left open by a crash after Nomad applied it (Nomad
	// shows 5, no done entry, no cooldown stored): the restart settles it
	// done and holds the next plan's scale-down as the uninterrupted
	// action would have.
	h = newHarness(t, 5, ones)
	if _, err := h.db.Append(store.JournalEntry{ActionID: "a1", Kind: "scale", State: store.StateIntent, Target: "default/web/api",
		Data: mustJSON(scaleData{From: 2, To: 5, CooldownUntil: h.clock.t.Add(30 * time.Second)})}); err != nil {
		t.Fatal(err)
	}
	h.reconcile(t)
	if len(h.nomad.calls) != 0 {
		t.Fatalf("a scale-up applied before the crash was undone at once: %+v", h.nomad.calls)
	}
	if d, _ := h.rec.LastDecision("default/web/api"); d.Action != "cooldown" {
		t.Fatalf("decision %+v, want the scale-down held by the settled action's cooldown", d)
	}
	h.clock.advance(31 * time.Second)
	h.reconcile(t)
	if len(h.nomad.calls) != 1 || *h.nomad.calls[0].Count != 1 {
		t.Fatalf("after the cooldown: calls %+v, want one scale to 1", h.nomad.calls)
	}
}

func TestDryRunRecordsAScalingEventWithoutACount(t *testing.T) {
	h := newHarness(t, 2, []int{4})
	h.rec = h.build(DepsOverride{dryRun: true})
	h.reconcile(t)
	if len(h.nomad.calls) != 1 || h.nomad.calls[0].Count != nil || h.nomad.desired != 2 {
		t.Fatalf("dry run calls = %+v, desired %d", h.nomad.calls, h.nomad.desired)
	}
}

func TestFollowersNeverScale(t *testing.T) {
	h := newHarness(t, 2, []int{4})
	h.rec = h.build(DepsOverride{leader: follower{}})
	h.reconcile(t)
	if len(h.nomad.calls) != 0 || h.planner.calls != 0 {
		t.Fatalf("a follower acted: %+v", h.nomad.calls)
	}
}

func TestThePlanIsStoredAndServedAfterARestart(t *testing.T) {
	h := newHarness(t, 2, []int{3, 3, 3, 3, 3, 3, 3, 3, 3, 3})
	h.reconcile(t)
	if n, err := h.rec.FlushPlans(); n != 1 || err != nil {
		t.Fatalf("flush: %d plans, %v; want the one made", n, err)
	}
	h.planner.err = errors.New("down")
	h.rec = h.build(DepsOverride{})
	p, ok := h.rec.CurrentPlan("default/web/api")
	if !ok || len(p.Desired) != 10 {
		t.Fatalf("plan after restart = %+v, %v", p, ok)
	}
}

func TestABurningGroupIsScaledAtItsFirstReconcileBeforeTheModelHasHistory(t *testing.T) {
	h := newHarness(t, 1, nil)
	h.planner.err = fmt.Errorf("forecast: %w", errors.New("history too short to forecast"))
	h.planner.recent = []float64{64} // one sample: 64 requests/s at 10 per replica
	want := int(math.Ceil(64 * predict.DefaultSettings().FloorMargin / 10))
	h.reconcile(t)
	if len(h.nomad.calls) != 1 || *h.nomad.calls[0].Count != want {
		t.Fatalf("calls = %+v, want one scale to the floor's %d", h.nomad.calls, want)
	}
	if d, _ := h.rec.LastDecision("default/web/api"); d.Source != "floor" || d.Floor != want {
		t.Errorf("decision %+v, want it set by the floor", d)
	}
}

func TestAnIdleGroupScalesInToItsMinimum(t *testing.T) {
	h := newHarness(t, 3, nil)
	h.planner.err = errors.New("no model")
	h.planner.recent = make([]float64, 60)
	h.reconcile(t)
	if len(h.nomad.calls) != 1 || *h.nomad.calls[0].Count != 1 {
		t.Fatalf("calls = %+v, want a scale in to the minimum 1", h.nomad.calls)
	}
}

func TestTheCooldownHoldsScaleDownsButNeverAScaleUp(t *testing.T) {
	h := newHarness(t, 2, []int{4})
	h.reconcile(t)
	h.planner.desired = []int{7}
	h.clock.advance(11 * time.Second) // a new plan, inside the 30 s cooldown
	h.reconcile(t)
	if len(h.nomad.calls) != 2 || *h.nomad.calls[1].Count != 7 {
		t.Fatalf("calls = %+v, want 4 then 7 within the cooldown", h.nomad.calls)
	}
}

func TestTheWorkerIsWokenWhenThePlanChangesNotAfterTheFullInterval(t *testing.T) {
	// The plan rises at its 10th second; a change reaches Nomad's
	// deployment 5 s (the default disruption, with instant replicas)
	// before the count is due, so the worker wakes at second 5.
	h := newHarness(t, 3, []int{3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 6, 6, 6, 6, 6, 6, 6, 6})
	res := h.reconcile(t)
	if res.RequeueAfter != 5*time.Second {
		t.Fatalf("requeue after %s, want 5s: the plan rises at its 10th second", res.RequeueAfter)
	}
	h.clock.advance(res.RequeueAfter)
	h.reconcile(t)
	if len(h.nomad.calls) != 1 || *h.nomad.calls[0].Count != 6 {
		t.Fatalf("calls = %+v, want a scale to 6 at the plan's change", h.nomad.calls)
	}
}

func TestAnEditedPolicyGetsANewDecider(t *testing.T) {
	h := newHarness(t, 2, []int{3})
	h.reconcile(t)
	p := testPolicy()
	p.Target.FloorMargin = 2
	h.planner.recent = []float64{30}
	if _, err := h.rec.Reconcile(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	if h.planner.calls != 2 {
		t.Errorf("planner calls %d, want a new plan for the edited policy", h.planner.calls)
	}
	if d, _ := h.rec.LastDecision(p.Key); d.Floor != 6 {
		t.Errorf("floor %d with floor_margin 2 at 30 requests/s, want 6", d.Floor)
	}
}

// fakeTuner stands in for the backtest's replay in unit tests of when
// tuning runs and how its result is applied.
type fakeTuner struct {
	calls  int
	margin float64
}

func (f *fakeTuner) Tune(_ context.Context, p Policy, demand []float64, _ time.Time, _ time.Duration) (Tuning, error) {
	f.calls++
	return Tuning{ForecastMargin: f.margin, ModelStep: p.Target.ModelStep, Cost: 90, PolicyCost: 100, Seconds: len(demand)}, nil
}

func TestSelfTuningIsStoredAppliedAndRepeatedOnlyAfterItsInterval(t *testing.T) {
	h := newHarness(t, 2, []int{2})
	h.planner.recent = make([]float64, 3*3600)
	tuner := &fakeTuner{margin: 1.75}
	p := testPolicy()
	if err := h.rec.TuneOnce(context.Background(), p, tuner); err != nil {
		t.Fatal(err)
	}
	if err := h.rec.TuneOnce(context.Background(), p, tuner); !errors.Is(err, errNotDue) || tuner.calls != 1 {
		t.Fatalf("second tuning within the interval: err %v, %d calls; want not due", err, tuner.calls)
	}
	// A restart reads the stored tuning and plans with it.
	h.rec = h.build(DepsOverride{})
	got, ok := h.rec.TuningOf(p.Key)
	if !ok || got.ForecastMargin != 1.75 || got.Cost != 90 {
		t.Fatalf("stored tuning %+v, %v", got, ok)
	}
	if e := h.rec.effective(p); e.Target.ForecastMargin != 1.75 {
		t.Errorf("effective margin %g, want the tuned 1.75", e.Target.ForecastMargin)
	}
	h.clock.advance(p.Target.TuneInterval)
	if err := h.rec.TuneOnce(context.Background(), p, tuner); err != nil || tuner.calls != 2 {
		t.Errorf("after the interval: err %v, %d calls; want a new tuning", err, tuner.calls)
	}
}

func TestSelfTuningOfAPolicyWithNoRecordedPointYetIsNotDueRatherThanAFailure(t *testing.T) {
	h := newHarness(t, 2, []int{2})
	h.planner.recentErr = fmt.Errorf("load recent history: series %q: %w", "default/web/api/requests", store.ErrNotFound)
	tuner := &fakeTuner{margin: 1.75}
	if err := h.rec.TuneOnce(context.Background(), testPolicy(), tuner); !errors.Is(err, errNotDue) || tuner.calls != 0 {
		t.Fatalf("no history yet: err %v, %d tuner calls; want not due (no warning) and no tuning", err, tuner.calls)
	}
}

func TestAPolicyWithTooLittleHistoryToTuneIsNotLoadedAgainUntilItCouldHaveEnough(t *testing.T) {
	h := newHarness(t, 2, []int{2})
	h.planner.recent = make([]float64, 3600) // an hour of the two tuning needs
	tuner := &fakeTuner{margin: 1.75}
	p := testPolicy()
	notDue := func(when string, wantLoads int) {
		t.Helper()
		if err := h.rec.TuneOnce(context.Background(), p, tuner); !errors.Is(err, errNotDue) || tuner.calls != 0 {
			t.Fatalf("%s: err %v, %d tuner calls; want not due", when, err, tuner.calls)
		}
		if h.planner.recentCalls != wantLoads {
			t.Fatalf("%s: history loaded %d times, want %d", when, h.planner.recentCalls, wantLoads)
		}
	}
	notDue("an hour of history", 1)
	h.clock.advance(time.Minute)
	notDue("a minute later", 1)
	edited := p
	edited.Target.RequestsCheck = "other"
	if err := h.rec.TuneOnce(context.Background(), edited, tuner); !errors.Is(err, errNotDue) || h.planner.recentCalls != 2 {
		t.Fatalf("an edited policy: err %v, history loaded %d times; want it loaded anew (2)", err, h.planner.recentCalls)
	}
	h.clock.advance(time.Hour - time.Minute)
	h.planner.recent = make([]float64, 2*3600)
	if err := h.rec.TuneOnce(context.Background(), p, tuner); err != nil || tuner.calls != 1 {
		t.Fatalf("an hour after an hour of history: err %v, %d tuner calls; want a tuning", err, tuner.calls)
	}
}

func TestSelfTuningNeverOverridesWhatThePolicySetsOrRunsWhenOff(t *testing.T) {
	sp := scalingPolicy(reqCheck, map[string]any{"forecast_margin": 0.8}, nil)
	p, err := ParsePolicy(sp, Defaults{})
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Tuned(Tuning{At: time.Now(), ForecastMargin: 2, ModelStep: time.Minute}); got.Target.ForecastMargin != 0.8 || got.Target.ModelStep != time.Minute {
		t.Errorf("tuned target %+v: the policy's own margin must stay, the default step may change", got.Target)
	}
	off, err := ParsePolicy(scalingPolicy(reqCheck, map[string]any{"self_tune": false}, nil), Defaults{})
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, 2, []int{2})
	h.planner.recent = make([]float64, 3*3600)
	tuner := &fakeTuner{margin: 2}
	if err := h.rec.TuneOnce(context.Background(), off, tuner); !errors.Is(err, errNotDue) || tuner.calls != 0 {
		t.Errorf("self_tune = false: err %v, %d calls", err, tuner.calls)
	}
}

func TestAFailedScaleIsNamedForWhatNomadAnswered(t *testing.T) {
	cases := map[error]string{
		fmt.Errorf("scale: %w", ErrActiveDeployment): "blocked",
		fmt.Errorf("scale: %w", ErrRateLimited):      "rate_limited",
		fmt.Errorf("scale: %w", ErrUnavailable):      "unavailable",
		fmt.Errorf("scale: %w", ErrNotFound):         "not_found",
		errors.New("scale: invalid count"):           "error",
	}
	for err, want := range cases {
		if got := scaleOutcome(err); got != want {
			t.Errorf("scaleOutcome(%v) = %q, want %q", err, got, want)
		}
	}
}

func TestPlannedPeaksReportEachGroupsCountAndItsPlansHighestCountAhead(t *testing.T) {
	h := newHarness(t, 2, []int{2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 6, 6})
	h.reconcile(t)
	now := h.clock.t
	peaks := h.rec.PlannedPeaks(now, now.Add(30*time.Second))
	if len(peaks) != 1 {
		t.Fatalf("peaks %+v, want one group", peaks)
	}
	g := peaks[0]
	if g.Namespace != "default" || g.Job != "web" || g.Group != "api" || g.Current != 2 || g.Peak != 6 {
		t.Fatalf("peak %+v, want default/web/api at 2 rising to 6", g)
	}
	if near := h.rec.PlannedPeaks(now, now.Add(5*time.Second)); near[0].Peak != 2 {
		t.Errorf("peak over the next 5 s = %d, want 2 (the rise is 18 s away)", near[0].Peak)
	}
	h.rec.Forget("default/web/api")
	if after := h.rec.PlannedPeaks(now, now.Add(30*time.Second)); len(after) != 0 {
		t.Errorf("a forgotten policy still has peaks: %+v", after)
	}
}

func TestAPolicyOwnedByTheNomadscalerPluginIsNeverScaledByTheDaemon(t *testing.T) {
	h := newHarness(t, 2, []int{5, 5, 5})
	p := testPolicy()
	p.Target.OptimizerURL = "http://nomadscalerd:8000"
	h.fresh["default/web/api/requests"] = h.clock.t
	if _, err := h.rec.Reconcile(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	if len(h.nomad.calls) != 0 {
		t.Fatalf("scaled a plugin-owned group: %+v", h.nomad.calls)
	}
	if d, ok := h.rec.LastDecision(p.Key); !ok || !strings.Contains(d.Reason, "owned by the nomadscaler plugin") {
		t.Errorf("decision = %+v, want it to name the plugin as the owner", d)
	}
}

// fakeLease is a leadership whose term the test ends.
type fakeLease struct {
	mu     sync.Mutex
	ctx    context.Context
	cancel context.CancelFunc
}

func newFakeLease() *fakeLease {
	l := &fakeLease{}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	return l
}

func (l *fakeLease) IsLeader() bool { return l.Context().Err() == nil }
func (l *fakeLease) Context() context.Context {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ctx
}
func (l *fakeLease) newTerm() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ctx, l.cancel = context.WithCancel(context.Background())
}

// hangingScaler is a Nomad whose scale call hangs until its context ends,
// after announcing that it started.
type hangingScaler struct {
	*fakeNomad
	started chan struct{}
}

func (h hangingScaler) Scale(ctx context.Context, r ScaleRequest) error {
	close(h.started)
	<-ctx.Done()
	return ctx.Err()
}

func TestAScaleInFlightIsAbandonedWhenTheLeaseEndsAndItsIntentSettledInTheNextTerm(t *testing.T) {
	h := newHarness(t, 2, []int{5, 5, 5, 5, 5, 5, 5, 5, 5, 5})
	lease := newFakeLease()
	hs := hangingScaler{fakeNomad: h.nomad, started: make(chan struct{})}
	rec := New(Deps{Scaler: hs, Observer: h.nomad, Planner: h.planner, Freshness: h.fresh, State: h.db, Leader: lease, Now: h.clock.now})
	go func() { <-hs.started; lease.cancel() }()
	h.fresh["default/web/api/requests"] = h.clock.t
	if _, err := rec.Reconcile(context.Background(), testPolicy()); err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	if d, _ := rec.LastDecision("default/web/api"); d.Reason != "lost leadership while scaling" {
		t.Fatalf("decision %+v, want the scale abandoned for the lost lease", d)
	}
	last, err := h.db.LastAction("default/web/api")
	if err != nil || last.State != store.StateIntent {
		t.Fatalf("journal's last entry %+v (%v), want the intent left open", last, err)
	}
	// Nomad did apply it before the lease ended; in the next term the
	// intent is settled from Nomad, and nothing is scaled twice.
	h.nomad.desired = 5
	lease.newTerm()
	rec.d.Scaler = h.nomad
	h.clock.advance(time.Second)
	h.fresh["default/web/api/requests"] = h.clock.t
	if _, err := rec.Reconcile(context.Background(), testPolicy()); err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	if len(h.nomad.calls) != 0 {
		t.Fatalf("scaled again after settling: %+v", h.nomad.calls)
	}
	last, err = h.db.LastAction("default/web/api")
	if err != nil || last.State != store.StateDone {
		t.Fatalf("journal's last entry %+v (%v), want the intent settled done", last, err)
	}
}

func TestPlansReachAtLeastTheMinimumHorizonPredictivePoolsNeed(t *testing.T) {
	h := newHarness(t, 2, []int{2, 2, 2})
	h.reconcile(t)
	if h.planner.horizon >= 240 {
		t.Fatalf("horizon %d without a minimum; the test needs a shorter default", h.planner.horizon)
	}
	h2 := newHarness(t, 2, []int{2, 2, 2})
	h2.rec = New(Deps{Scaler: h2.nomad, Observer: h2.nomad, Planner: h2.planner, Freshness: h2.fresh, State: h2.db, Now: h2.clock.now,
		MinHorizon: 4 * time.Minute})
	h2.reconcile(t)
	if h2.planner.horizon < 240 {
		t.Fatalf("horizon %d s, want at least the 240 s a predictive pool reads ahead", h2.planner.horizon)
	}
}

// clockTuner is a fake tuner whose every tuning takes took on the test's
// clock.
type clockTuner struct {
	clock *stepClock
	took  time.Duration
	calls int
}

func (c *clockTuner) Tune(_ context.Context, p Policy, demand []float64, _ time.Time, _ time.Duration) (Tuning, error) {
	c.calls++
	c.clock.advance(c.took)
	return Tuning{ForecastMargin: 1.5, ModelStep: p.Target.ModelStep, Cost: 1, PolicyCost: 1, Seconds: len(demand)}, nil
}

// testPoliciesNamed is testPolicy once per name, keyed default/web/NAME.
func testPoliciesNamed(names ...string) []Policy {
	var pols []Policy
	for _, n := range names {
		p := testPolicy()
		p.Key = "default/web/" + n
		pols = append(pols, p)
	}
	return pols
}

func TestTheTunerRestsAfterEachTuningToKeepToItsShareOfACoreWithAFakeClock(t *testing.T) {
	h := newHarness(t, 2, []int{2})
	h.planner.recent = make([]float64, 3*3600)
	pols := testPoliciesNamed("a", "b", "c")
	tuner := &clockTuner{clock: h.clock, took: 10 * time.Second}
	var pauses []time.Duration
	stop := errors.New("stop")
	err := h.rec.RunTuner(context.Background(), func() []Policy { return pols }, tuner, TunerOptions{
		Check: time.Minute, CPUShare: 0.1,
		Sleep: func(_ context.Context, d time.Duration) error {
			pauses = append(pauses, d)
			h.clock.advance(d)
			if d == time.Minute {
				return stop // the first round is over
			}
			return nil
		}})
	if !errors.Is(err, stop) {
		t.Fatalf("RunTuner: %v", err)
	}
	// 10 s of tuning at a tenth of a core: 90 s of rest after each.
	want := []time.Duration{90 * time.Second, 90 * time.Second, 90 * time.Second, time.Minute}
	if tuner.calls != 3 || !slices.Equal(pauses, want) {
		t.Errorf("%d tunings, pauses %v; want 3 and %v", tuner.calls, pauses, want)
	}
}

func TestTunePauseKeepsTheTunerToItsShare(t *testing.T) {
	for _, c := range []struct {
		took  time.Duration
		share float64
		want  time.Duration
	}{
		{10 * time.Second, 0.1, 90 * time.Second},
		{10 * time.Second, 0.5, 10 * time.Second},
		{10 * time.Second, 1, 0},
		{10 * time.Second, 0, 0}, // unset: no limit
		{0, 0.1, 0},
	} {
		if got := TunePause(c.took, c.share); got != c.want {
			t.Errorf("TunePause(%s, %g) = %s, want %s", c.took, c.share, got, c.want)
		}
	}
}

// failingTuner is a fake tuner whose every replay fails.
type failingTuner struct{ calls int }

func (f *failingTuner) Tune(context.Context, Policy, []float64, time.Time, time.Duration) (Tuning, error) {
	f.calls++
	return Tuning{}, errors.New("fake: replay failed")
}

func TestAFailedTuningIsNotRetriedBeforeATuneIntervalAndAFixedCountIsNeverTuned(t *testing.T) {
	h := newHarness(t, 2, []int{2})
	h.planner.recent = make([]float64, 3*3600)
	tuner := &failingTuner{}
	p := testPolicy()
	if err := h.rec.TuneOnce(context.Background(), p, tuner); err == nil || errors.Is(err, errNotDue) {
		t.Fatalf("first tuning: %v, want the replay's failure", err)
	}
	reads := h.planner.recentCalls
	h.clock.advance(time.Minute)
	if err := h.rec.TuneOnce(context.Background(), p, tuner); !errors.Is(err, errNotDue) || tuner.calls != 1 || h.planner.recentCalls != reads {
		t.Fatalf("a minute after a failure: %v, %d replays, %d history reads; want not due, without reading history again", err, tuner.calls, h.planner.recentCalls-reads)
	}
	h.clock.advance(p.Target.TuneInterval)
	if err := h.rec.TuneOnce(context.Background(), p, tuner); errors.Is(err, errNotDue) || tuner.calls != 2 {
		t.Fatalf("a tune_interval after a failure: %v, %d replays; want another try", err, tuner.calls)
	}
	fixed := testPolicy()
	fixed.Key, fixed.Min, fixed.Max = "default/web/fixed", 0, 0
	if err := h.rec.TuneOnce(context.Background(), fixed, tuner); !errors.Is(err, errNotDue) || tuner.calls != 2 {
		t.Errorf("a group held at 0: %v, %d replays; want never tuned", err, tuner.calls)
	}
}

// putCounter counts the commits of plans, and fails them while fail is set.
type putCounter struct {
	*store.DB
	puts, batches int
	fail          bool
}

func (c *putCounter) PutJSON(bucket []byte, key string, v any) error {
	if string(bucket) == string(migrations.BucketPlans) {
		c.puts++
	}
	return c.DB.PutJSON(bucket, key, v)
}

func (c *putCounter) PutJSONs(bucket []byte, values map[string]any) error {
	c.batches++
	if c.fail {
		return errors.New("fake: disk full")
	}
	return c.DB.PutJSONs(bucket, values)
}

func TestPlansOfManyPoliciesAreWrittenInOneTransactionAndAFailedFlushKeepsThem(t *testing.T) {
	h := newHarness(t, 2, []int{3, 3, 3, 3, 3, 3, 3, 3, 3, 3})
	st := &putCounter{DB: h.db}
	rec := New(Deps{Scaler: h.nomad, Observer: h.nomad, Planner: h.planner, Freshness: h.fresh, State: st, Now: h.clock.now})
	var keys []string
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		p := testPolicy()
		p.Key = "default/web/" + k
		keys = append(keys, p.Key)
		h.fresh[p.Key+"/requests"] = h.clock.t
		if _, err := rec.Reconcile(context.Background(), p); err != nil {
			t.Fatal(err)
		}
	}
	if st.puts != 0 {
		t.Fatalf("%d plans written one by one during reconciles, want none", st.puts)
	}
	st.fail = true
	if n, err := rec.FlushPlans(); err == nil || n != 0 {
		t.Fatalf("flush on a failing store: %d, %v; want an error", n, err)
	}
	st.fail = false
	if n, err := rec.FlushPlans(); err != nil || n != 5 || st.batches != 2 {
		t.Fatalf("flush after the failure: %d plans, %v, %d transactions; want the 5 kept, in a second transaction", n, err, st.batches)
	}
	for _, k := range keys {
		var p optimize.Plan
		if err := h.db.GetJSON(migrations.BucketPlans, k, &p); err != nil || len(p.Desired) != 10 {
			t.Errorf("stored plan of %s: %+v, %v", k, p, err)
		}
	}
	if n, err := rec.FlushPlans(); n != 0 || err != nil || st.batches != 2 {
		t.Errorf("a flush with nothing new: %d, %v, %d transactions; want none", n, err, st.batches)
	}
}

// Once a policy is gone (the pool calls Reconciler.Forget), /metrics stops
// reporting its group's desired and planned replicas.
func TestARemovedPolicysSeriesLeaveTheMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, 2, []int{5, 5, 5, 5, 5, 5, 5, 5, 5, 5})
	h.rec = New(Deps{Scaler: h.nomad, Observer: h.nomad, Planner: h.planner, Freshness: h.fresh, State: h.db, Now: h.clock.now, Metrics: m})
	h.reconcile(t)
	h.rec.Forget("default/web/api")
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetType() != dto.MetricType_GAUGE {
			continue
		}
		for _, mt := range mf.GetMetric() {
			for _, l := range mt.GetLabel() {
				if l.GetName() == "policy" && l.GetValue() == "default/web/api" {
					t.Errorf("removed policy still reported: %s{policy=%q} %v", mf.GetName(), l.GetValue(), mt.GetGauge().GetValue())
				}
			}
		}
	}
}

func TestEndedCooldownsAreDroppedAndRunningOnesKept(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), "c.db"), store.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	states := map[string]any{
		cooldownKey("default/gone/web"):  cooldownState{Until: now.Add(-time.Hour)},
		cooldownKey("default/ended/web"): cooldownState{Until: now.Add(-time.Second)},
		cooldownKey("default/held/web"):  cooldownState{Until: now.Add(time.Minute)},
		TuningKey("default/gone/web"):    Tuning{At: now.Add(-time.Hour)}, // not a cooldown: kept
	}
	if err := db.PutJSONs(migrations.BucketState, states); err != nil {
		t.Fatal(err)
	}
	n, err := DropExpiredCooldowns(db, now)
	if err != nil || n != 2 {
		t.Fatalf("dropped %d (%v), want the 2 ended cooldowns", n, err)
	}
	keys, err := db.Keys(migrations.BucketState)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{cooldownKey("default/held/web"), TuningKey("default/gone/web")}; !slices.Equal(keys, want) && !slices.Equal(keys, []string{want[1], want[0]}) {
		t.Errorf("state keys after the drop %v, want %v", keys, want)
	}
}

func TestTheFitPlanAndTuningOfAPolicyWithoutHistoryAreDroppedAndThoseOfARecordedOneKept(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), "o.db"), store.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	if err := db.WritePoints([]store.Point{{Series: store.SeriesName("default/kept/web", "requests"), T: now, V: 3}}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"default/kept/web", "default/gone/web"} {
		if err := db.PutJSON(migrations.BucketFits, p, model.Record{TrainedAt: now}); err != nil {
			t.Fatal(err)
		}
		if err := db.PutJSON(migrations.BucketPlans, p, optimize.Plan{Start: now, Desired: []int{1}}); err != nil {
			t.Fatal(err)
		}
		if err := db.PutJSONs(migrations.BucketState, map[string]any{TuningKey(p): Tuning{At: now}, cooldownKey(p): cooldownState{Until: now}}); err != nil {
			t.Fatal(err)
		}
	}
	n, err := DropStateWithoutHistory(db)
	if err != nil || n != 3 {
		t.Fatalf("dropped %d (%v), want default/gone/web's fit, plan and tuning", n, err)
	}
	for _, b := range []struct {
		bucket []byte
		want   []string
	}{
		{migrations.BucketFits, []string{"default/kept/web"}},
		{migrations.BucketPlans, []string{"default/kept/web"}},
		// A cooldown is dropped when it ends, not with the history.
		{migrations.BucketState, []string{cooldownKey("default/gone/web"), cooldownKey("default/kept/web"), TuningKey("default/kept/web")}},
	} {
		keys, err := db.Keys(b.bucket)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(keys, b.want) {
			t.Errorf("%s keys after the drop %v, want %v", b.bucket, keys, b.want)
		}
	}
}
