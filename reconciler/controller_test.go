package reconciler

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"
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
