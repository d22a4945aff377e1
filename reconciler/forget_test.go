package reconciler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nomadscalerd/nomadscalerd/history"
	"github.com/nomadscalerd/nomadscalerd/migrations"
	"github.com/nomadscalerd/nomadscalerd/optimize"
	"github.com/nomadscalerd/nomadscalerd/predict"
	"github.com/nomadscalerd/nomadscalerd/store"
)

// A policy re-added while the reconciler forgets its removed self (a job
// stopped and run again, a shard lost and regained) runs again only once
// the forgetting is done, whether the removal cut a run off or came
// between runs: otherwise Forget meets the new policy's first reconcile
// and drops part of what it built (its decider, its count last seen) and
// keeps the rest. In a synctest bubble, so "no run yet" is a fact, not a
// wait.
func TestAPolicyReaddedWhileTheReconcilerForgetsItRunsOnlyOnceItIsForgotten(t *testing.T) {
	for _, inFlight := range []bool{true, false} {
		t.Run(fmt.Sprintf("run in flight %t", inFlight), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { readdWhileForgetting(t, inFlight) })
		})
	}
}

func readdWhileForgetting(t *testing.T, inFlight bool) {
	var mu sync.Mutex
	var events []string
	note := func(e string) {
		mu.Lock()
		events = append(events, e)
		mu.Unlock()
	}
	seen := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), events...)
	}
	release := make(chan struct{})
	var released sync.Once
	letGo := func() { released.Do(func() { close(release) }) }
	runs := 0
	p := newPool(2, nil, func(ctx context.Context, key string, _ time.Time) time.Duration {
		note("run " + key)
		if runs++; inFlight && runs == 1 {
			<-ctx.Done() // cut off by the removal
		}
		return time.Hour
	}, func(key string) {
		note("forget " + key)
		<-release // a Forget that waits (for the planner's lock, held by a plan)
		note("forgotten " + key)
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	removed := make(chan struct{})
	defer func() { letGo(); <-removed; cancel(); <-done }()

	p.Add("a")
	synctest.Wait()
	go func() { p.Remove("a"); close(removed) }() // returns once forgotten when no run was in flight
	synctest.Wait()
	if got := seen(); len(got) != 2 || got[1] != "forget a" {
		t.Fatalf("events %v, want the run, then the forgetting under way", got)
	}
	p.Add("a")
	synctest.Wait()
	if got := seen(); len(got) != 2 {
		t.Fatalf("events %v: the re-added policy ran while the reconciler was still forgetting it", got)
	}
	letGo()
	synctest.Wait()
	want := []string{"run a", "forget a", "forgotten a", "run a"}
	if got := seen(); !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v: the re-added policy runs at once after the forgetting", got, want)
	}
	if p.Len() != 1 {
		t.Errorf("%d keys scheduled, want the re-added one", p.Len())
	}
}

// scaleUntilCancelled is a Nomad whose scale call does not answer until
// its context ends (a slow or partitioned server), and then reports that
// it did nothing.
type scaleUntilCancelled struct {
	*fakeNomad
	entered, returned chan struct{}
	enter, ret        sync.Once
}

func (s *scaleUntilCancelled) Scale(ctx context.Context, r ScaleRequest) error {
	s.fakeNomad.mu.Lock()
	s.fakeNomad.calls = append(s.fakeNomad.calls, r)
	s.fakeNomad.mu.Unlock()
	s.enter.Do(func() { close(s.entered) })
	<-ctx.Done()
	s.ret.Do(func() { close(s.returned) })
	return ctx.Err()
}

// heldFor names what the reconciler and its metrics still hold for key.
func heldFor(r *Reconciler, reg *prometheus.Registry, key string) []string {
	r.mu.Lock()
	var held []string
	for name, kept := range map[string]bool{
		"plan": has(r.plans, key), "unsaved plan": has(r.unsaved, key), "decider": has(r.deciders, key),
		"tuning": has(r.tunings, key), "tune wait": has(r.tuneWaits, key), "startup delay": has(r.delays, key),
		"backoff": has(r.backoffs, key), "last decision": has(r.last, key), "settled mark": has(r.settled, key),
		"group": has(r.groups, key), "events read": has(r.eventsRead, key), "observed count": has(r.observed, key),
	} {
		if kept {
			held = append(held, name)
		}
	}
	r.mu.Unlock()
	mfs, err := reg.Gather()
	if err != nil {
		held = append(held, "unreadable metrics: "+err.Error())
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "policy" && l.GetValue() == key {
					held = append(held, "metric "+mf.GetName())
				}
			}
		}
	}
	sort.Strings(held)
	return held
}

func has[V any](m map[string]V, key string) bool { _, ok := m[key]; return ok }

// A policy removed while its reconcile waits on Nomad (here its scale call)
// leaves nothing behind once that reconcile returns: the removal cancels
// the call, the pool forgets the policy only after the reconcile has
// written its last decision, metrics and plan, and no later run or flush
// brings any of it back. Were Forget called at the removal itself, the
// returning reconcile would write its decision and evaluation series back
// for a policy that no longer exists.
func TestAPolicyRemovedWhileItsReconcileIsInFlightLeavesNothingBehind(t *testing.T) {
	const key = "default/web/api"
	h := newHarness(t, 2, []int{5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5})
	clk := newFakeClock()
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	nomad := &scaleUntilCancelled{fakeNomad: h.nomad, entered: make(chan struct{}), returned: make(chan struct{})}
	rec := New(Deps{Scaler: nomad, Observer: h.nomad, Planner: h.planner, Freshness: freshNow{clk}, State: h.db, Now: clk.Now, Metrics: m, Log: slog.New(slog.DiscardHandler)})
	src := &mutablePolicies{}
	ctrl := NewController(rec, src, Defaults{CacheSize: 10, ForecastHorizon: 60}, m, slog.New(slog.DiscardHandler))
	ctrl.SetClock(clk)
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	var runErr error
	go func() { runErr = ctrl.Run(ctx); close(stopped) }()
	defer func() { cancel(); <-stopped }()

	sp := scalingPolicy(reqCheck, map[string]any{"capacity_per_replica": 10.0, "startup_delay": "0s"}, map[string]any{"evaluation_interval": "1s"})
	sp.Max = i64(8)
	src.set(sp)
	if err := ctrl.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-nomad.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("no scale call within 5 s")
	}
	src.set()
	if err := ctrl.Refresh(ctx); err != nil { // the removal, seen while the scale waits
		t.Fatal(err)
	}
	select {
	case <-nomad.returned:
	case <-time.After(5 * time.Second):
		t.Fatal("the scale call of a removed policy was not cancelled within 5 s")
	}
	// Every run has returned once the pool has stopped; what a late write
	// would have put back is there to be seen.
	cancel()
	<-stopped
	if runErr != nil {
		t.Fatal(runErr)
	}
	if held := heldFor(rec, reg, key); len(held) != 0 {
		t.Errorf("the removed policy's reconcile returned after its removal and left behind: %v", held)
	}
	if _, _, ok := rec.wakeOn(key); ok {
		t.Error("a sample can still wake the removed policy")
	}
	if n, err := rec.FlushPlans(); err != nil || n != 0 {
		t.Errorf("a flush after the removal wrote %d plans (%v), want none", n, err)
	}
	var stored optimize.Plan
	if err := h.db.GetJSON(migrations.BucketPlans, key, &stored); err == nil {
		t.Errorf("the removed policy's plan %s reached the database after its removal", stored.ID)
	}
	h.nomad.mu.Lock()
	calls := len(h.nomad.calls)
	h.nomad.mu.Unlock()
	if calls != 1 {
		t.Errorf("%d scale calls, want only the one cut off by the removal", calls)
	}
}

// forgetDuringFlush is a store whose batch write of plans fails once,
// slowly enough that the policy is forgotten while it is under way.
type forgetDuringFlush struct {
	*store.DB
	during func()
}

func (f *forgetDuringFlush) PutJSONs(bucket []byte, values map[string]any) error {
	if f.during == nil {
		return f.DB.PutJSONs(bucket, values)
	}
	f.during()
	f.during = nil
	return errors.New("fake: disk full")
}

// A plan whose flush failed is kept for the next flush only while its
// policy is: one forgotten during the failed write (removed while the disk
// was full) is not put back, or the next flush would store the plan of a
// policy that no longer exists and keep it until its history ages out.
func TestAPlanWhoseFlushFailedIsNotKeptForAPolicyForgottenDuringIt(t *testing.T) {
	const key = "default/web/api"
	h := newHarness(t, 2, []int{3, 3, 3, 3, 3, 3, 3, 3, 3, 3})
	st := &forgetDuringFlush{DB: h.db}
	rec := New(Deps{Scaler: h.nomad, Observer: h.nomad, Planner: h.planner, Freshness: h.fresh, State: st, Now: h.clock.now, Log: slog.New(slog.DiscardHandler)})
	if _, err := rec.Reconcile(context.Background(), testPolicy()); err != nil {
		t.Fatal(err)
	}
	st.during = func() { rec.Forget(key) }
	if _, err := rec.FlushPlans(); err == nil {
		t.Fatal("the failing flush reported no error")
	}
	if n, err := rec.FlushPlans(); err != nil || n != 0 {
		t.Errorf("the next flush wrote %d plans (%v), want none: the policy was forgotten", n, err)
	}
	var stored optimize.Plan
	if err := h.db.GetJSON(migrations.BucketPlans, key, &stored); err == nil {
		t.Errorf("the forgotten policy's plan %s was stored", stored.ID)
	}
	if held := heldFor(rec, prometheus.NewRegistry(), key); len(held) != 0 {
		t.Errorf("the forgotten policy is held again: %v", held)
	}
}

// removingTuner is a fake tuner during whose first tuning the policies
// named in removes are removed: they leave active and are forgotten, as
// the controller's apply and the pool do.
type removingTuner struct {
	rec     *Reconciler
	mu      sync.Mutex
	active  map[string]bool
	removes []string
	tuned   []string
}

func (f *removingTuner) isActive(key string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.active[key]
}

func (f *removingTuner) Tune(_ context.Context, p Policy, demand []float64, _ time.Time, _ time.Duration) (Tuning, error) {
	f.mu.Lock()
	f.tuned = append(f.tuned, p.Key)
	removes := f.removes
	f.removes = nil
	for _, key := range removes {
		delete(f.active, key)
	}
	f.mu.Unlock()
	for _, key := range removes {
		f.rec.Forget(key)
	}
	return Tuning{ForecastMargin: 1.5, ModelStep: p.Target.ModelStep, Cost: 1, PolicyCost: 1, Seconds: len(demand)}, nil
}

// The tuner tunes the policies listed at the start of its pass, one at a
// time with rests between (hours for a thousand at a small CPU share).
// A policy removed during its own tuning leaves no cached tuning behind,
// and one removed before its turn is not replayed at all: otherwise each
// removed self-tuning policy would cost a replay of hours of its history
// and stay in the reconciler's tunings for the daemon's life.
func TestAPolicyRemovedDuringATunerPassIsNotTunedAfterwardsNorHeldAgain(t *testing.T) {
	h := newHarness(t, 2, []int{2})
	h.planner.recent = make([]float64, 3*3600)
	pols := testPoliciesNamed("a", "b", "c")
	tuner := &removingTuner{rec: h.rec, active: map[string]bool{}, removes: []string{"default/web/a", "default/web/b"}}
	for _, p := range pols {
		tuner.active[p.Key] = true
	}
	stop := errors.New("stop")
	err := h.rec.RunTuner(context.Background(), func() []Policy { return pols }, tuner, TunerOptions{
		Check: time.Minute, Active: tuner.isActive,
		Sleep: func(context.Context, time.Duration) error { return stop }})
	if !errors.Is(err, stop) {
		t.Fatalf("RunTuner: %v", err)
	}
	if want := []string{"default/web/a", "default/web/c"}; !slices.Equal(tuner.tuned, want) {
		t.Errorf("tuned %v, want %v: b was removed before its turn", tuner.tuned, want)
	}
	for _, key := range []string{"default/web/a", "default/web/b"} {
		if held := heldFor(h.rec, prometheus.NewRegistry(), key); len(held) != 0 {
			t.Errorf("%s, removed during the pass, is held again: %v", key, held)
		}
	}
	if _, ok := h.rec.TuningOf("default/web/c"); !ok {
		t.Error("c, still active, was not tuned")
	}
}

// removedDuringFit is a fake planner during whose fit the policy is
// removed: the run's context is cancelled, and the fit, done by then,
// returns its plan all the same.
type removedDuringFit struct {
	*fixedPlanner
	remove context.CancelFunc
}

func (p removedDuringFit) PlanAhead(ctx context.Context, pol Policy, r predict.PlanRequest) (optimize.Plan, error) {
	p.remove()
	return p.fixedPlanner.PlanAhead(ctx, pol, r)
}

// A run whose policy was removed before it acts (during its fit, which
// takes seconds) journals no intent: nothing is sent to Nomad, so there is
// nothing for a restart to settle, and an intent left open for a policy
// that never runs again would never be settled, and journal compaction
// keeps open intents for good.
func TestARunWhosePolicyIsRemovedDuringItsFakeFitWritesNoIntentAndCallsNoNomad(t *testing.T) {
	const key = "default/web/api"
	h := newHarness(t, 2, []int{5, 5, 5, 5, 5, 5, 5, 5, 5, 5})
	ctx, remove := context.WithCancel(context.Background())
	defer remove()
	rec := New(Deps{Scaler: h.nomad, Observer: h.nomad, Planner: removedDuringFit{h.planner, remove}, Freshness: h.fresh, State: h.db, Now: h.clock.now})
	if _, err := rec.Reconcile(ctx, testPolicy()); err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	if h.planner.calls != 1 {
		t.Fatalf("%d fits, want the one the removal came during", h.planner.calls)
	}
	if len(h.nomad.calls) != 0 {
		t.Errorf("%d scale calls after the removal, want none", len(h.nomad.calls))
	}
	if last, err := h.db.LastAction(key); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("journal's last entry is the %s of %s (%v), want none: nothing was sent", last.State, last.ActionID, err)
	}
	if open, err := h.db.OpenActions(); err != nil || len(open) != 0 {
		t.Errorf("%d open actions (%v), want none", len(open), err)
	}
	if d, _ := rec.LastDecision(key); d.Action != "none" || d.Reason != "stopped before scaling" {
		t.Errorf("decision %+v, want the scale given up for the stop", d)
	}
}

// removedDuringForecast is a fake forecaster during whose fit its policy
// is removed; the fit then returns the last value as its forecast.
type removedDuringForecast struct{ remove func() }

func (f removedDuringForecast) Forecast(ctx context.Context, h optimize.History, steps int) ([]float64, error) {
	f.remove()
	return optimize.LastValueForecaster{}.Forecast(ctx, h, steps)
}

// removedDuringRead is a fake history during whose read the policy is
// removed; the read then returns what is stored.
type removedDuringRead struct {
	*store.DB
	remove func()
}

func (r removedDuringRead) Range(series string, from, to time.Time) ([]store.Sample, error) {
	r.remove()
	return r.DB.Range(series, from, to)
}

// A plugin-owned policy removed while POST /optimize plans for it (a fit
// takes seconds, reading hours of history a while too) is not held again
// once the answer is made: neither the fitted forecaster the planner
// keeps per policy (built after the removal when it came during the read)
// nor its forecast and observed gauges (set after it when it came during
// the fit), all of which Forget drops, come back for the daemon's life.
func TestAPolicyRemovedWhileAFakeOptimizePlansForItIsNotHeldAgainByThePlannerOrItsGauges(t *testing.T) {
	for _, during := range []string{"history read", "fit"} {
		t.Run("removed during its "+during, func(t *testing.T) { removeDuringOptimize(t, during) })
	}
}

func removeDuringOptimize(t *testing.T, during string) {
	const key = "default/web/api"
	h := newHarness(t, 2, []int{2})
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	now := h.clock.t
	var pts []store.Point
	for i := 120; i > 0; i-- {
		pts = append(pts, store.Point{Series: store.SeriesName(key, "requests"), T: now.Add(-time.Duration(i) * time.Second), V: 50})
	}
	if err := h.db.WritePoints(pts); err != nil {
		t.Fatal(err)
	}
	src := &mutablePolicies{}
	var ctrl *Controller
	var once sync.Once
	// The removal as the daemon makes it: the controller's refresh no
	// longer lists the policy, and the pool forgets it at once (a
	// plugin-owned policy's run never waits on anything).
	remove := func() {
		once.Do(func() {
			src.set()
			if err := ctrl.Refresh(context.Background()); err != nil {
				t.Error(err)
			}
		})
	}
	var hist history.RangeReader = h.db
	fc := optimize.Forecaster(optimize.LastValueForecaster{})
	if during == "fit" {
		fc = removedDuringForecast{remove}
	} else {
		hist = removedDuringRead{h.db, remove}
	}
	hp := NewHistoryPlanner(hist, func(Policy) optimize.Forecaster { return fc }, nil, optimize.DPSolver{}, nil, slog.New(slog.DiscardHandler)).WithMetrics(m)
	rec := New(Deps{Scaler: h.nomad, Observer: h.nomad, Planner: hp, Freshness: h.fresh, State: h.db, Now: h.clock.now, Metrics: m, Log: slog.New(slog.DiscardHandler)})
	ctrl = NewController(rec, src, Defaults{CacheSize: 10, ForecastHorizon: 60}, m, slog.New(slog.DiscardHandler))
	src.set(scalingPolicy(reqCheck, map[string]any{"optimizer_url": "http://optimizer:8000", "capacity_per_replica": 10.0}, nil))
	if err := ctrl.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !ctrl.Active(key) || !ctrl.Policies()[0].PluginOwned() {
		t.Fatalf("policies %v, want the one plugin-owned policy active", ctrl.Policies())
	}
	s := &OptimizeService{Controller: ctrl, Planner: hp, Now: h.clock.now}
	if _, err := s.Optimize(context.Background(), optimize.Request{Check: optimize.Check{MetricAppName: key}, CurrentReplicas: 2, MinReplicas: 1, MaxReplicas: 5, CacheSize: 10}); err != nil {
		t.Fatalf("optimize: %v", err)
	}
	if ctrl.Active(key) {
		t.Fatal("the policy is still active: the fake did not remove it")
	}
	hp.mu.Lock()
	kept := has(hp.forecaster, key)
	hp.mu.Unlock()
	if kept {
		t.Error("the planner holds the removed policy's forecaster again")
	}
	if held := heldFor(rec, reg, key); len(held) != 0 {
		t.Errorf("the removed policy is held again: %v", held)
	}
}

// removedDuringTuningRead is a fake store during whose read of a tuning
// the policy is removed.
type removedDuringTuningRead struct {
	*store.DB
	remove func()
}

func (s removedDuringTuningRead) GetJSON(bucket []byte, key string, v any) error {
	if strings.HasPrefix(key, TuningKey("")) {
		s.remove()
	}
	return s.DB.GetJSON(bucket, key, v)
}

// GET /v1/status reads each active policy's tuning through TuningOf,
// which caches what it read. A policy removed while the status is made
// (a thousand policies' plans, decisions and journal reads) is not held
// again by that cache: otherwise each status made across a removal would
// keep one more policy's tuning for the daemon's life.
func TestAPolicyRemovedWhileAFakeStatusReadsItsTuningIsNotHeldAgain(t *testing.T) {
	const key = "default/web/api"
	h := newHarness(t, 2, []int{2})
	src := &mutablePolicies{}
	var ctrl *Controller
	var once sync.Once
	st := removedDuringTuningRead{DB: h.db, remove: func() {
		once.Do(func() {
			src.set()
			if err := ctrl.Refresh(context.Background()); err != nil {
				t.Error(err)
			}
		})
	}}
	rec := New(Deps{Scaler: h.nomad, Observer: h.nomad, Planner: h.planner, Freshness: h.fresh, State: st, Now: h.clock.now, Log: slog.New(slog.DiscardHandler)})
	ctrl = NewController(rec, src, Defaults{CacheSize: 10, ForecastHorizon: 60}, nil, slog.New(slog.DiscardHandler))
	src.set(scalingPolicy(reqCheck, map[string]any{"capacity_per_replica": 10.0}, nil))
	if err := ctrl.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := ctrl.Status(context.Background()); len(got.Policies) != 1 {
		t.Fatalf("status of %d policies, want the one active when it began", len(got.Policies))
	}
	if ctrl.Active(key) {
		t.Fatal("the policy is still active: the fake did not remove it")
	}
	if held := heldFor(rec, prometheus.NewRegistry(), key); len(held) != 0 {
		t.Errorf("the removed policy is held again: %v", held)
	}
}
