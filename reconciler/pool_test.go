package reconciler

import (
	"context"
	"github.com/nomadscalerd/nomadscalerd/clock"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is package clock's manual clock: a timer fires only when
// Advance passes its deadline, so scheduling tests do not depend on the
// machine's speed.
type fakeClock = clock.Fake

func newFakeClock() *fakeClock { return clock.NewFake(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)) }

type fakeRun struct {
	key string
	at  time.Time
	by  time.Time // the trigger it served
}

// startFakePool runs a pool of size workers until the test ends.
func startFakePool(t *testing.T, size int, clk Clock, run runFunc, onRemoved func(string)) *pool {
	t.Helper()
	p := newPool(size, clk, run, onRemoved)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return p
}

func nextRun(t *testing.T, runs <-chan fakeRun) fakeRun {
	t.Helper()
	select {
	case r := <-runs:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("no run within 5 s")
	}
	return fakeRun{}
}

func noRun(t *testing.T, runs <-chan fakeRun) {
	t.Helper()
	select {
	case r := <-runs:
		t.Fatalf("unexpected run of %s at %s", r.key, r.at.Format(time.TimeOnly))
	case <-time.After(50 * time.Millisecond):
	}
}

// settle gives the dispatcher time to set its next timer after a run: the
// fake clock only fires timers that exist when it advances.
func settle() { time.Sleep(20 * time.Millisecond) }

func TestEachPolicyOnTheFakeClockRunsAtItsOwnWakeTimeOnASingleWorker(t *testing.T) {
	clk := newFakeClock()
	t0 := clk.Now()
	runs := make(chan fakeRun, 16)
	every := map[string]time.Duration{"a": 5 * time.Second, "b": 2 * time.Second}
	p := startFakePool(t, 1, clk, func(_ context.Context, key string, _ time.Time) time.Duration {
		runs <- fakeRun{key: key, at: clk.Now()}
		return every[key]
	}, nil)
	p.Add("a")
	p.Add("b")
	first := map[string]bool{nextRun(t, runs).key: true, nextRun(t, runs).key: true}
	if !first["a"] || !first["b"] {
		t.Fatalf("first runs %v, want a and b at once", first)
	}
	want := []struct {
		advance time.Duration
		key     string
	}{{2 * time.Second, "b"}, {2 * time.Second, "b"}, {time.Second, "a"}, {time.Second, "b"}}
	for _, w := range want {
		settle()
		noRun(t, runs)
		clk.Advance(w.advance)
		r := nextRun(t, runs)
		if r.key != w.key {
			t.Fatalf("at +%s ran %s, want %s", r.at.Sub(t0), r.key, w.key)
		}
	}
	noRun(t, runs)
}

func TestTriggersDuringAFakeRunCoalesceIntoOneMoreRunThatReportsTheEarliestTrigger(t *testing.T) {
	clk := newFakeClock()
	runs := make(chan fakeRun, 16)
	release := make(chan struct{})
	p := startFakePool(t, 4, clk, func(_ context.Context, key string, by time.Time) time.Duration {
		runs <- fakeRun{key: key, at: clk.Now(), by: by}
		<-release
		return time.Hour
	}, nil)
	p.Add("a")
	nextRun(t, runs) // the first run, now blocked
	t1 := clk.Now().Add(time.Second)
	p.Trigger("a", t1)
	p.Trigger("a", t1.Add(time.Second))
	p.Trigger("a", t1.Add(-time.Millisecond))
	noRun(t, runs) // never two runs of one policy at once
	release <- struct{}{}
	r := nextRun(t, runs)
	if !r.by.Equal(t1.Add(-time.Millisecond)) {
		t.Errorf("coalesced run served the trigger of %s, want the earliest, %s", r.by, t1.Add(-time.Millisecond))
	}
	release <- struct{}{}
	noRun(t, runs) // three triggers, one extra run
}

func TestAThousandFakePoliciesNeverRunMoreThanThePoolSizeAtOnceNorOnePolicyTwice(t *testing.T) {
	clk := newFakeClock()
	var inFlight, peak atomic.Int64
	var mu sync.Mutex
	running := map[string]bool{}
	twice := atomic.Bool{}
	var total atomic.Int64
	p := startFakePool(t, 8, clk, func(_ context.Context, key string, _ time.Time) time.Duration {
		n := inFlight.Add(1)
		for {
			old := peak.Load()
			if n <= old || peak.CompareAndSwap(old, n) {
				break
			}
		}
		mu.Lock()
		if running[key] {
			twice.Store(true)
		}
		running[key] = true
		mu.Unlock()
		time.Sleep(100 * time.Microsecond)
		mu.Lock()
		running[key] = false
		mu.Unlock()
		inFlight.Add(-1)
		total.Add(1)
		return time.Second
	}, nil)
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = "k" + string(rune('a'+i%26)) + time.Duration(i).String()
		p.Add(keys[i])
	}
	// Triggers rain on every key while the first runs go.
	for range 3 {
		for _, k := range keys {
			p.Trigger(k, clk.Now())
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for total.Load() < 1000 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if total.Load() < 1000 {
		t.Fatalf("%d runs, want every one of 1000 policies run", total.Load())
	}
	if peak.Load() > 8+1 {
		t.Errorf("%d runs at once, want at most the pool size 8 plus its one reserve worker", peak.Load())
	}
	if twice.Load() {
		t.Error("a policy ran on two workers at once")
	}
	if p.Len() != 1000 {
		t.Errorf("%d keys scheduled, want 1000", p.Len())
	}
}

func TestRemovingAFakePolicyCancelsItsRunAndItsDoneChannelWaitsForIt(t *testing.T) {
	clk := newFakeClock()
	runs := make(chan fakeRun, 4)
	finished := make(chan struct{})
	var forgotten atomic.Value
	p := startFakePool(t, 2, clk, func(ctx context.Context, key string, _ time.Time) time.Duration {
		runs <- fakeRun{key: key}
		<-ctx.Done()
		time.Sleep(20 * time.Millisecond) // work that outlives the cancel
		close(finished)
		return time.Second
	}, func(key string) { forgotten.Store(key) })
	p.Add("a")
	nextRun(t, runs)
	done := p.Remove("a")
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("removal not finished within 5 s of cancelling the run")
	}
	select {
	case <-finished:
	default:
		t.Fatal("Remove's channel closed before the run in flight ended")
	}
	if got, _ := forgotten.Load().(string); got != "a" {
		t.Errorf("onRemoved got %q, want a", got)
	}
	if p.Len() != 0 {
		t.Errorf("%d keys scheduled after removal, want 0", p.Len())
	}
	clk.Advance(time.Hour)
	noRun(t, runs)
}

func TestATriggeredFakePolicyStartsOnAReserveWorkerWhileEveryOtherWorkerIsBusy(t *testing.T) {
	clk := newFakeClock()
	runs := make(chan fakeRun, 16)
	release := make(chan struct{})
	defer close(release)
	p := startFakePool(t, 1, clk, func(_ context.Context, key string, by time.Time) time.Duration {
		runs <- fakeRun{key: key, by: by}
		if key == "slow" {
			<-release
		}
		return time.Hour
	}, nil)
	p.Add("slow")
	nextRun(t, runs) // the only regular worker is busy
	p.Add("timed")
	noRun(t, runs) // a timed run waits for a regular worker
	p.Trigger("timed", clk.Now())
	if r := nextRun(t, runs); r.key != "timed" || r.by.IsZero() {
		t.Fatalf("ran %+v, want the triggered policy at once on the reserve worker", r)
	}
}

func TestATriggeredFakePolicyRunsBeforeTimedOnesThatCameDueEarlier(t *testing.T) {
	clk := newFakeClock()
	runs := make(chan fakeRun, 16)
	release := make(chan struct{})
	hold := make(chan struct{})
	defer close(hold)
	p := startFakePool(t, 1, clk, func(_ context.Context, key string, by time.Time) time.Duration {
		runs <- fakeRun{key: key, by: by}
		switch key {
		case "blocker":
			<-release
		case "reserve-blocker":
			<-hold
		}
		return time.Hour
	}, nil)
	p.Add("blocker")
	nextRun(t, runs) // the only regular worker is busy
	p.Add("reserve-blocker")
	p.Trigger("reserve-blocker", clk.Now())
	nextRun(t, runs) // and so is the reserve worker
	for _, k := range []string{"t1", "t2", "t3"} {
		p.Add(k) // new policies wait in the timed queue
	}
	p.Trigger("t3", clk.Now())
	p.Trigger("t2", clk.Now())
	release <- struct{}{}
	var order []string
	for range 3 {
		order = append(order, nextRun(t, runs).key)
	}
	if order[0] != "t3" || order[1] != "t2" || order[2] != "t1" {
		t.Errorf("run order %v, want the triggered t3 and t2 first, then t1", order)
	}
	noRun(t, runs) // t2 and t3 were not run twice
}
