package nomad

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/nomadscalerd/nomadscalerd/clock"
)

// slowNomadLock is a fake Nomad lock that grants the lock and answers each
// renewal only when the test says (as Nomad's api.Locks does when it
// retries a renewal the servers answered 5xx).
type slowNomadLock struct {
	clk     *clock.Fake
	renews  chan time.Time // the fake clock's time of each renewal sent
	answers chan error
}

func (f *slowNomadLock) Acquire(context.Context) (string, error) { return LeaderLockPath, nil }
func (f *slowNomadLock) Release(context.Context) error           { return nil }
func (f *slowNomadLock) LockTTL() time.Duration                  { return 10 * time.Second }
func (f *slowNomadLock) Renew(ctx context.Context) error {
	f.renews <- f.clk.Now()
	select {
	case err := <-f.answers:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func TestALeaderWhoseFakeNomadAnswersARenewalLateRenewsHalfATTLAfterSendingItAndKeepsItsLease(t *testing.T) {
	clk := clock.NewFake(leaseT0)
	lk := &slowNomadLock{clk: clk, renews: make(chan time.Time, 16), answers: make(chan error, 16)}
	var mu sync.Mutex
	var changes []bool
	l := newLeader(func() (nomadapi.Locker, error) { return lk, nil }, LeaderLockPath, 10*time.Second, clk,
		func(v bool) { mu.Lock(); changes = append(changes, v); mu.Unlock() }, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	renewal := func(want time.Duration) {
		t.Helper()
		select {
		case at := <-lk.renews:
			if got := at.Sub(leaseT0); got != want {
				t.Fatalf("a renewal sent at +%s, want +%s", got, want)
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("at +%s no renewal was sent, want one sent at +%s (half the 10 s TTL after the last was sent); "+
				"the lease runs out at +14 s", clk.Now().Sub(leaseT0), want)
		}
	}
	// Acquired at +0: waiting on its first renewal (+5 s) and its
	// watchdog (+9 s).
	if !clk.BlockUntil(2, 5*time.Second) {
		t.Fatal("the new leader is not waiting on its renewal and its watchdog")
	}
	clk.Advance(5 * time.Second)
	renewal(5 * time.Second)
	// Nomad answers it 3.9 s later (two 5xx retried inside api.Locks): the
	// lease now runs to +14 s (+5 s + TTL - 1 s).
	clk.Advance(3900 * time.Millisecond)
	lk.answers <- nil
	if !clk.BlockUntil(2, 5*time.Second) {
		t.Fatal("after the late answer the leader is not waiting on its next renewal and its watchdog")
	}
	clk.Advance(1100 * time.Millisecond) // +10 s: the watchdog re-arms for +14 s
	renewal(10 * time.Second)
	// This one takes 1.5 s.
	clk.Advance(1500 * time.Millisecond)
	lk.answers <- nil
	if !clk.BlockUntil(2, 5*time.Second) {
		t.Fatal("after the second answer the leader is not waiting on its next renewal and its watchdog")
	}
	clk.Advance(3 * time.Second) // +14.5 s: past the first lease, within the second
	if !l.IsLeader() {
		t.Fatalf("at +%s, every renewal answered: not leader", clk.Now().Sub(leaseT0))
	}
	mu.Lock()
	defer mu.Unlock()
	if len(changes) != 1 || !changes[0] {
		t.Fatalf("leadership changes %v, want one: true", changes)
	}
}
