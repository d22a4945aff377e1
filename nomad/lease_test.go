package nomad

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/nomadscalerd/nomadscalerd/clock"
)

// renewal is how a fakeNomadLock answers renewals.
type renewal int

const (
	renewOK       renewal = iota
	renewFails            // a transport error, as from an unreachable server
	renewHangs            // no answer until the request's context ends
	renewConflict         // the servers say the lock is not ours
)

// fakeNomadLock stands in for Nomad's variable lock API (api.Locks) in unit
// tests on a fake clock: acquires are granted or refused as the test says,
// renewals answer as renew says, and every call is recorded at the fake
// clock's time.
type fakeNomadLock struct {
	clk   *clock.Fake
	grant bool
	renew renewal

	mu       sync.Mutex
	acquires []time.Time
	renews   []time.Time
	releases int
	calls    chan string // "acquire", "renew" or "release", one per call
}

func newFakeNomadLock(clk *clock.Fake, grant bool, renew renewal) *fakeNomadLock {
	return &fakeNomadLock{clk: clk, grant: grant, renew: renew, calls: make(chan string, 1024)}
}

func (f *fakeNomadLock) Acquire(context.Context) (string, error) {
	f.mu.Lock()
	f.acquires = append(f.acquires, f.clk.Now())
	f.mu.Unlock()
	f.calls <- "acquire"
	if !f.grant {
		return "", nomadapi.ErrLockConflict
	}
	return LeaderLockPath, nil
}

func (f *fakeNomadLock) Renew(ctx context.Context) error {
	f.mu.Lock()
	f.renews = append(f.renews, f.clk.Now())
	f.mu.Unlock()
	f.calls <- "renew"
	switch f.renew {
	case renewFails:
		return errors.New("dial tcp 127.0.0.1:4646: connect: connection refused")
	case renewHangs:
		<-ctx.Done()
		return ctx.Err()
	case renewConflict:
		return nomadapi.ErrLockConflict
	}
	return nil
}

func (f *fakeNomadLock) Release(context.Context) error {
	f.mu.Lock()
	f.releases++
	f.mu.Unlock()
	f.calls <- "release"
	return nil
}

func (f *fakeNomadLock) LockTTL() time.Duration { return 10 * time.Second }

// waitCall waits, in real time, for the fake's next call and checks it is
// want.
func (f *fakeNomadLock) waitCall(t *testing.T, want string) {
	t.Helper()
	select {
	case got := <-f.calls:
		if got != want {
			t.Fatalf("the fake Nomad got a %s call, want %s", got, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("no %s call reached the fake Nomad", want)
	}
}

var leaseT0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// runFakeLeader runs a Leader with a 10 s TTL on a fake clock and a fake
// Nomad lock until the test ends, recording its leadership changes.
// setup, if any, runs on the Leader before Run starts.
func runFakeLeader(t *testing.T, clk *clock.Fake, lk *fakeNomadLock, setup ...func(*Leader)) (*Leader, func() []bool) {
	t.Helper()
	var mu sync.Mutex
	var changes []bool
	l := newLeader(func() (nomadapi.Locker, error) { return lk, nil }, LeaderLockPath, 10*time.Second, clk,
		func(v bool) { mu.Lock(); changes = append(changes, v); mu.Unlock() }, slog.New(slog.DiscardHandler))
	for _, f := range setup {
		f(l)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Run did not return within 5 s of its context ending")
		}
	})
	return l, func() []bool { mu.Lock(); defer mu.Unlock(); return append([]bool(nil), changes...) }
}

func TestAFollowerOnAFakeClockAsksAFakeNomadForTheLockOncePerSecond(t *testing.T) {
	clk := clock.NewFake(leaseT0)
	lk := newFakeNomadLock(clk, false, renewOK)
	l, changes := runFakeLeader(t, clk, lk)
	lk.waitCall(t, "acquire")
	for i := 0; i < 10; i++ {
		if !clk.BlockUntil(1, 5*time.Second) {
			t.Fatalf("after %d refused acquires the follower is not waiting on its clock", i+1)
		}
		// Nothing is asked before the second is up.
		clk.Advance(999 * time.Millisecond)
		select {
		case c := <-lk.calls:
			t.Fatalf("a %s call %s after the last acquire, before the second was up", c, 999*time.Millisecond)
		case <-time.After(20 * time.Millisecond):
		}
		clk.Advance(time.Millisecond)
		lk.waitCall(t, "acquire")
	}
	lk.mu.Lock()
	acquires := append([]time.Time(nil), lk.acquires...)
	lk.mu.Unlock()
	if len(acquires) != 11 {
		t.Fatalf("%d acquires in 10 s, want 11 (one at once, then one a second)", len(acquires))
	}
	for i, at := range acquires {
		if want := leaseT0.Add(time.Duration(i) * time.Second); !at.Equal(want) {
			t.Errorf("acquire %d at +%s, want +%s", i, at.Sub(leaseT0), want.Sub(leaseT0))
		}
	}
	if l.IsLeader() || len(changes()) != 0 {
		t.Errorf("a follower refused every acquire is leader %v with changes %v", l.IsLeader(), changes())
	}
}

func TestALeaderOnAFakeNomadWhoseRenewalFailsStepsDownBeforeItsTTLElapses(t *testing.T) {
	const ttl = 10 * time.Second
	for _, c := range []struct {
		name    string
		renew   renewal
		stepsAt time.Duration // after the acquire
		release bool
	}{
		// Retried every second from the first renewal at TTL/2, until the
		// lease runs out at TTL - 1 s.
		{"renewals fail: it retries, then steps down when its lease runs out at TTL - 1 s, and releases", renewFails, ttl - leaseMargin, true},
		// The watchdog ends the term while the request hangs.
		{"a renewal hangs: it steps down when its lease runs out at TTL - 1 s, and releases", renewHangs, ttl - leaseMargin, true},
		{"a renewal is refused as a conflict: it steps down at once and releases nothing", renewConflict, ttl / 2, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			clk := clock.NewFake(leaseT0)
			lk := newFakeNomadLock(clk, true, c.renew)
			l, changes := runFakeLeader(t, clk, lk)
			lk.waitCall(t, "acquire")
			// A term waits on two timers: its next renewal and the
			// watchdog at the lease's end.
			if !clk.BlockUntil(2, 5*time.Second) {
				t.Fatal("the new leader is not waiting on its renewal and its watchdog")
			}
			if !l.IsLeader() {
				t.Fatal("the fake Nomad granted the lock, but the replica is not leader")
			}
			term := l.Context()
			// Advance 100 ms at a time up to just before the expected
			// step-down, letting the renewal loop answer each step.
			for clk.Now().Before(leaseT0.Add(c.stepsAt - 100*time.Millisecond)) {
				clk.Advance(100 * time.Millisecond)
				drainRenewals(t, lk, clk, c.renew)
				if !l.IsLeader() || term.Err() != nil {
					t.Fatalf("stepped down at +%s, want at +%s", clk.Now().Sub(leaseT0), c.stepsAt)
				}
			}
			clk.Advance(100 * time.Millisecond)
			if c.renew == renewConflict {
				lk.waitCall(t, "renew")
			}
			select {
			case <-term.Done():
			case <-time.After(5 * time.Second):
				t.Fatalf("the term's context is live at +%s, want it ended at +%s", clk.Now().Sub(leaseT0), c.stepsAt)
			}
			if at := clk.Now().Sub(leaseT0); at != c.stepsAt || at >= ttl {
				t.Fatalf("stepped down at +%s, want +%s (before the %s TTL)", at, c.stepsAt, ttl)
			}
			if l.IsLeader() {
				t.Fatal("the term ended but IsLeader is true")
			}
			if c.release {
				waitRelease(t, lk)
			}
			if got := changes(); len(got) < 2 || !got[0] || got[1] {
				t.Errorf("leadership changes %v, want true then false", got)
			}
			lk.mu.Lock()
			renews, releases := len(lk.renews), lk.releases
			lk.mu.Unlock()
			if c.renew == renewFails && renews != 4 {
				t.Errorf("%d renewals before stepping down, want 4 (at +5, +6, +7, +8 s)", renews)
			}
			if !c.release && releases != 0 {
				t.Errorf("%d releases of a lock the servers say is not ours, want 0", releases)
			}
		})
	}
}

// drainRenewals waits, after an advance, for the renewal the leader sends at
// this instant, if one is due (every second from TTL/2 while they fail, once
// at TTL/2 otherwise), and for it to be waiting on its clock again.
func drainRenewals(t *testing.T, lk *fakeNomadLock, clk *clock.Fake, r renewal) {
	t.Helper()
	since := clk.Now().Sub(leaseT0)
	due := since == 5*time.Second || (r == renewFails && since > 5*time.Second && since%time.Second == 0)
	if !due {
		return
	}
	lk.waitCall(t, "renew")
	want := 2 // the retry and the watchdog
	if r == renewHangs {
		want = 1 // the watchdog alone
	}
	if !clk.BlockUntil(want, 5*time.Second) {
		t.Fatalf("after the renewal at +%s the leader is not waiting on %d timers", since, want)
	}
}

func waitRelease(t *testing.T, lk *fakeNomadLock) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		lk.mu.Lock()
		n := lk.releases
		lk.mu.Unlock()
		if n > 0 {
			return
		}
	}
	t.Fatal("a leader that stepped down did not release the lock: followers wait for the servers to expire it")
}

func TestALeaderPausedPastItsLeaseIsNotLeaderOnWakingBeforeAnythingElseRuns(t *testing.T) {
	clk := clock.NewFake(leaseT0)
	l := newLeader(nil, LeaderLockPath, 15*time.Second, clk, nil, slog.New(slog.DiscardHandler))
	l.extend(clk.Now())
	l.set(true)
	for _, c := range []struct {
		at   time.Duration
		want bool
	}{{0, true}, {13 * time.Second, true}, {14*time.Second + 500*time.Millisecond, false}, {40 * time.Second, false}} {
		clk.Advance(leaseT0.Add(c.at).Sub(clk.Now()))
		if got := l.IsLeader(); got != c.want {
			t.Errorf("%s after acquiring with a 15 s TTL and no renewal: leader %v, want %v", c.at, got, c.want)
		}
	}
	// A renewal sent at +30 s extends the lease to +45 s, 1 s of margin
	// before it.
	l.extend(leaseT0.Add(30 * time.Second))
	if !l.IsLeader() {
		t.Error("at +40 s with a lease renewed at +30 s: not leader, want leader until +44 s")
	}
	clk.Advance(4*time.Second + time.Millisecond)
	if l.IsLeader() {
		t.Error("at +44 s with the last renewal at +30 s: still leader")
	}
}

func TestTheLeadersContextEndsWithItsTermAndANewTermGetsANewOne(t *testing.T) {
	l := newLeader(nil, LeaderLockPath, 15*time.Second, clock.Real{}, nil, slog.New(slog.DiscardHandler))
	if l.Context().Err() == nil {
		t.Fatal("a replica that never led has a live term context")
	}
	l.set(true)
	first := l.Context()
	if first.Err() != nil {
		t.Fatal("the term context is cancelled while leading")
	}
	l.set(false)
	select {
	case <-first.Done():
	case <-time.After(time.Second):
		t.Fatal("stepping down did not cancel the term's context")
	}
	l.set(true)
	if second := l.Context(); second.Err() != nil || second == first {
		t.Fatalf("a new term reuses the old context or starts cancelled (err %v)", second.Err())
	}
	if (AlwaysLeader{}).Context().Err() != nil {
		t.Fatal("a single replica's term ended")
	}
}

func TestTheLockTTLAskedOfNomadMakesItsExpiryTheConfiguredHandOverAndNeverGoesBelowTenSeconds(t *testing.T) {
	for _, c := range []struct{ handOver, want time.Duration }{
		// Nomad frees a lock 2 x TTL + 1 s lock delay after the last renewal.
		{21 * time.Second, 10 * time.Second},
		{31 * time.Second, 15 * time.Second},
		{30 * time.Second, 14500 * time.Millisecond},
		{121 * time.Second, time.Minute},
		// Below 21 s Nomad cannot do it: its shortest TTL is 10 s.
		{10 * time.Second, 10 * time.Second},
		{0, 10 * time.Second},
	} {
		got := NomadLockTTL(c.handOver)
		if got != c.want {
			t.Errorf("NomadLockTTL(%s) = %s, want %s", c.handOver, got, c.want)
		}
		if c.handOver >= MinHandOver && 2*got+lockDelay != c.handOver {
			t.Errorf("a lock TTL of %s is freed by Nomad %s after the last renewal, want %s", got, 2*got+lockDelay, c.handOver)
		}
	}
}

func TestALeaderOnAFakeNomadRenewsEveryHalfTTLAndStaysLeaderInOneTerm(t *testing.T) {
	clk := clock.NewFake(leaseT0)
	lk := newFakeNomadLock(clk, true, renewOK)
	l, changes := runFakeLeader(t, clk, lk)
	lk.waitCall(t, "acquire")
	if !clk.BlockUntil(2, 5*time.Second) {
		t.Fatal("the new leader is not waiting on its renewal and its watchdog")
	}
	term := l.Context()
	for i := 1; i <= 6; i++ {
		clk.Advance(5 * time.Second)
		lk.waitCall(t, "renew")
		if !clk.BlockUntil(2, 5*time.Second) {
			t.Fatalf("after renewal %d the leader is not waiting on its next renewal and its watchdog", i)
		}
		if !l.IsLeader() || term.Err() != nil {
			t.Fatalf("at +%s, renewed every 5 s: leader %v, term ended %v", clk.Now().Sub(leaseT0), l.IsLeader(), term.Err())
		}
	}
	lk.mu.Lock()
	renews := append([]time.Time(nil), lk.renews...)
	lk.mu.Unlock()
	for i, at := range renews {
		if want := leaseT0.Add(time.Duration(i+1) * 5 * time.Second); !at.Equal(want) {
			t.Errorf("renewal %d at +%s, want +%s (every half of the 10 s TTL)", i+1, at.Sub(leaseT0), want.Sub(leaseT0))
		}
	}
	if got := changes(); len(got) != 1 || !got[0] {
		t.Errorf("leadership changes %v in 30 s of good renewals, want one: true", got)
	}
}

func TestAnElectorHeldOffAsksAFakeNomadForNothingAndStepDownReleasesTheLock(t *testing.T) {
	clk := clock.NewFake(leaseT0)
	lk := newFakeNomadLock(clk, true, renewOK)
	l, _ := runFakeLeader(t, clk, lk, func(l *Leader) { l.SetCompete(false) })
	// quiet lets n follower polls pass and checks Nomad was asked nothing.
	quiet := func(when string, n int) {
		t.Helper()
		for i := 0; i < n; i++ {
			if !clk.BlockUntil(1, 5*time.Second) {
				t.Fatalf("%s, look %d: the elector is not waiting on its clock", when, i+1)
			}
			clk.Advance(time.Second)
		}
		select {
		case c := <-lk.calls:
			t.Fatalf("%s, the elector sent Nomad a %s call", when, c)
		case <-time.After(20 * time.Millisecond):
		}
	}
	quiet("held off", 5)
	if l.IsLeader() {
		t.Fatal("held off: leader")
	}
	l.SetCompete(true)
	clk.Advance(time.Second)
	lk.waitCall(t, "acquire")
	deadline := time.Now().Add(5 * time.Second)
	for !l.IsLeader() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if !l.IsLeader() {
		t.Fatal("competing again: the granted lock did not make it leader")
	}
	term := l.Context()
	l.SetCompete(false)
	l.StepDown()
	lk.waitCall(t, "release")
	if term.Err() == nil || l.IsLeader() {
		t.Fatalf("after StepDown: term ended %v, leader %v; want the term over and not leader", term.Err(), l.IsLeader())
	}
	// Held off again, it does not take the lock back.
	quiet("stepped down and held off", 3)
}
