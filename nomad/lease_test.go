package nomad

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"
)

// fakeLocker stands in for Nomad's lock API in a unit test of the lease
// arithmetic: renewals succeed or fail as the test says.
type fakeLocker struct{ fail bool }

func (f *fakeLocker) Acquire(context.Context) (string, error) { return "nomadscalerd/leader", nil }
func (f *fakeLocker) Release(context.Context) error           { return nil }
func (f *fakeLocker) LockTTL() time.Duration                  { return 15 * time.Second }
func (f *fakeLocker) Renew(context.Context) error {
	if f.fail {
		return nomadapi.ErrLockConflict
	}
	return nil
}

func TestALeaderWhoseLeaseRanOutIsNotLeaderEvenBeforeTheLeaserNotices(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	now := t0
	l := &Leader{ttl: 15 * time.Second, log: slog.New(slog.DiscardHandler), now: func() time.Time { return now }}
	fl := &fakeLocker{}
	lk := fencedLocker{Locker: fl, l: l}
	if _, err := lk.Acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	l.set(true)
	for _, c := range []struct {
		at   time.Duration
		want bool
	}{{0, true}, {13 * time.Second, true}, {14*time.Second + 500*time.Millisecond, false}, {40 * time.Second, false}} {
		now = t0.Add(c.at)
		if got := l.IsLeader(); got != c.want {
			t.Errorf("%s after acquiring with a 15 s TTL and no renewal: leader %v, want %v", c.at, got, c.want)
		}
	}
	// A renewal sent at +10 s extends the lease to +25 s; a failed one does
	// not.
	now = t0.Add(10 * time.Second)
	if err := lk.Renew(context.Background()); err != nil {
		t.Fatal(err)
	}
	fl.fail = true
	now = t0.Add(20 * time.Second)
	if err := lk.Renew(context.Background()); !errors.Is(err, nomadapi.ErrLockConflict) {
		t.Fatalf("renew: %v", err)
	}
	if !l.IsLeader() {
		t.Error("at +20 s with a lease renewed at +10 s: not leader, want leader until +24 s")
	}
	now = t0.Add(24*time.Second + time.Millisecond)
	if l.IsLeader() {
		t.Error("at +24 s with the last renewal at +10 s: still leader")
	}
}

func TestTheLeadersContextEndsWithItsTermAndANewTermGetsANewOne(t *testing.T) {
	l := &Leader{ttl: 15 * time.Second, log: slog.New(slog.DiscardHandler), now: time.Now}
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

func TestAnElectorHeldOffAsksNomadForNothingAndStepDownEndsItsTerm(t *testing.T) {
	l := &Leader{ttl: 15 * time.Second, log: slog.New(slog.DiscardHandler), now: time.Now}
	lk := fencedLocker{Locker: &fakeLocker{}, l: l}
	l.SetCompete(false)
	id, err := lk.Acquire(context.Background())
	if err != nil || id != "" {
		t.Fatalf("held off: acquire gave %q, %v; want no lock and no error", id, err)
	}
	if l.IsLeader() {
		t.Fatal("held off: leader")
	}
	l.SetCompete(true)
	if id, err := lk.Acquire(context.Background()); err != nil || id == "" {
		t.Fatalf("competing: acquire gave %q, %v; want the lock", id, err)
	}
	// A term as runOnce starts it: StepDown cancels the term's yield.
	yctx, yield := context.WithCancel(context.Background())
	l.mu.Lock()
	l.yield = yield
	l.mu.Unlock()
	l.set(true)
	l.StepDown()
	select {
	case <-yctx.Done():
	case <-time.After(time.Second):
		t.Fatal("StepDown did not end the term")
	}
}
