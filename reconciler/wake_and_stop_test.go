package reconciler

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nomadscalerd/nomadscalerd/predict"
	"github.com/nomadscalerd/nomadscalerd/store"
)

// A policy removed while its reconcile runs and added again before that
// run ends runs again at once (Add's contract): the run in flight was
// cancelled by the removal and read the policy as it was before, and the
// wake time it returned (an hour here) is not the re-added policy's.
func TestAPolicyReaddedWhileItsCancelledRunIsInFlightRunsAgainAtOnce(t *testing.T) {
	clk := newFakeClock()
	runs := make(chan fakeRun, 4)
	release := make(chan struct{})
	p := startFakePool(t, 2, clk, func(ctx context.Context, key string, _ time.Time) time.Duration {
		runs <- fakeRun{key: key, at: clk.Now()}
		<-release // work that does not watch ctx (a model fit)
		return time.Hour
	}, nil)
	p.Add("a")
	nextRun(t, runs) // the run in flight
	p.Remove("a")    // cancels it
	p.Add("a")       // the policy is back (a job re-registered, a shard regained)
	release <- struct{}{}
	select {
	case r := <-runs:
		if r.key != "a" {
			t.Fatalf("ran %s, want a", r.key)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("a policy re-added while its cancelled run was in flight did not run again at once; it waits for the cancelled run's wake time (1h)")
	}
	close(release)
}

// A scale that failed because Nomad rate-limited (or was unavailable, or
// the job was gone) retries on its backoff: a sample of rising demand does
// not bypass it, or an overloaded Nomad would get a scale call per policy
// per recorder tick.
func TestARateLimitedScaleIsNotWokenByASampleBeforeItsBackoff(t *testing.T) {
	h := newHarness(t, 2, []int{3, 3, 3, 3, 3, 3, 3, 3, 3, 3})
	h.nomad.failErr = fmt.Errorf("scale web/api: %w", ErrRateLimited)
	src := &mutablePolicies{}
	ctrl := NewController(h.rec, src, Defaults{CacheSize: 10, ForecastHorizon: 60}, nil, slog.New(slog.DiscardHandler))
	sp := scalingPolicy(reqCheck, map[string]any{"capacity_per_replica": 10.0}, nil)
	sp.Max = i64(30)
	src.set(sp)
	if err := ctrl.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	const key, series = "default/web/api", "default/web/api/requests"
	pol := ctrl.Policies()[0]
	h.fresh[series] = h.clock.t
	if _, err := h.rec.Reconcile(context.Background(), pol); err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	d, _ := h.rec.LastDecision(key)
	if d.Action != "rate_limited" {
		t.Fatalf("decision %+v, want the scale rate limited", d)
	}
	at := h.clock.t
	for _, v := range []float64{150, 150, 160, 160} {
		ctrl.ObservePoints([]store.Point{{Series: series, T: at, V: v}})
		at = at.Add(time.Second)
	}
	if triggeredKeys(ctrl)[key] {
		t.Fatalf("a sample triggered a policy whose last scale was rate limited (action %q): it bypasses the backoff", d.Action)
	}
}

// scaleThenStop is a Nomad that applies the scale, then is slow to answer:
// the daemon stops (SIGTERM cancels the pool's context) before it does.
type scaleThenStop struct {
	*fakeNomad
	stop context.CancelFunc
}

func (s scaleThenStop) Scale(ctx context.Context, r ScaleRequest) error {
	_ = s.fakeNomad.Scale(ctx, r) // Nomad applied it
	s.stop()                      // SIGTERM arrives before the answer
	<-ctx.Done()
	return ctx.Err()
}

// A scale cut off by the daemon stopping may have been applied by Nomad:
// like one cut off by a lost lease, its intent stays open so the next
// start settles it from what Nomad shows, with its cooldown (journaled
// failed, the restart would do neither).
func TestAScaleCutOffByAStopLeavesItsIntentOpenForTheRestart(t *testing.T) {
	h := newHarness(t, 8, []int{3, 3, 3, 3, 3, 3, 3, 3, 3, 3})
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	rec := New(Deps{Scaler: scaleThenStop{fakeNomad: h.nomad, stop: stop}, Observer: h.nomad, Planner: h.planner, Freshness: h.fresh, State: h.db, Now: h.clock.now})
	h.fresh["default/web/api/requests"] = h.clock.t
	_, _ = rec.Reconcile(ctx, testPolicy())
	last, err := h.db.LastAction("default/web/api")
	if err != nil || last.State != store.StateIntent {
		t.Fatalf("journal's last entry is %q (%v) after a scale cut off by shutdown that Nomad applied (desired now %d); want the intent left open", last.State, err, h.nomad.desired)
	}
}

// A policy file that is a symlink (config management, NixOS's /etc, a
// ConfigMap-style ..data link) is read, as nomad-autoscaler reads it:
// skipped, its group would go unscaled without a word.
func TestASymlinkedPolicyFileIsRead(t *testing.T) {
	dir, elsewhere := t.TempDir(), t.TempDir()
	target := filepath.Join(elsewhere, "web.hcl")
	writeFile(t, target, filePolicy("web", "web", "api", ""))
	if err := os.Symlink(target, filepath.Join(dir, "web.hcl")); err != nil {
		t.Fatal(err)
	}
	d, err := NewPolicyDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	fps, err := d.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(fps) != 1 || fps[0].Err != nil {
		t.Fatalf("listed %+v from a directory holding a symlink to a valid policy file; want its one policy", fps)
	}
}

// A policy on the seed's demand formula (it has an avg_response_time
// check) is decided on demand = requests*avg_response_time*0.05+..., not
// on requests/s, and its capacity_per_replica is in demand's units: its
// samples do not wake it (a floor of raw requests against that capacity
// woke it on every sample of a load it already served, a reconcile per
// recorder tick per such policy).
func TestASteadyLoadOnTheSeedsDemandFormulaDoesNotWakeThePolicy(t *testing.T) {
	h := newHarness(t, 1, []int{1})
	src := &mutablePolicies{}
	ctrl := NewController(h.rec, src, Defaults{CacheSize: 10, ForecastHorizon: 60}, nil, slog.New(slog.DiscardHandler))
	sp := scalingPolicy(map[string]map[string]any{
		"requests":          {"source": "prometheus", "query": "q1"},
		"avg_response_time": {"source": "prometheus", "query": "q2"},
	}, map[string]any{"capacity_per_replica": 10.0}, nil)
	sp.Max = i64(30)
	src.set(sp)
	if err := ctrl.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	const key, series = "default/web/api", "default/web/api/requests"
	pol := ctrl.Policies()[0]
	steady := make([]float64, 60)
	for i := range steady {
		steady[i] = 100 // requests/s, with avg_response_time 0.1 s
	}
	// What the decider serves: the floor of the demand Recent returns.
	ds := pol.DeciderSettings()
	demand := SeedDemand(pol, steady, map[string]float64{"avg_response_time": 0.1})
	want := predict.Floor(demand, ds.Capacity, ds.FloorMargin, 0)
	h.rec.mu.Lock()
	h.rec.last[key], h.rec.delays[key] = Decision{Want: want, Floor: want, Source: "floor", Action: "none"}, 0
	h.rec.mu.Unlock()
	at := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	for _, v := range steady {
		ctrl.ObservePoints([]store.Point{{Series: series, T: at, V: v}})
		at = at.Add(time.Second)
	}
	if triggeredKeys(ctrl)[key] {
		t.Fatalf("a steady 100 req/s (demand %.2f, the decider's floor %d replicas, served) woke the policy: the wake floor reads raw requests as demand", demand[0], want)
	}
}
