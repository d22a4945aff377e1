package reconciler

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nomadscalerd/nomadscalerd/store"
)

// lapsingLease is a fake lease whose lock has run out (IsLeader, read on
// the clock, says so) while its term's context may still be live: the
// elector's watchdog has not run yet, as after a process wakes from a
// pause.
type lapsingLease struct {
	lapsed atomic.Bool
	term   context.Context
}

func (l *lapsingLease) IsLeader() bool           { return !l.lapsed.Load() }
func (l *lapsingLease) Context() context.Context { return l.term }

// pausingJournal is a fake journal: after an intent is written it runs
// paused, standing for a replica stalled in the write (an fsync, SIGSTOP)
// past the end of its lease.
type pausingJournal struct {
	State
	paused func()
}

func (j pausingJournal) Append(e store.JournalEntry) (store.JournalEntry, error) {
	got, err := j.State.Append(e)
	if e.State == store.StateIntent {
		j.paused()
	}
	return got, err
}

// ctxScaler is a fake Nomad that records whether each scale arrived on a
// live context: one that did is sent to Nomad.
type ctxScaler struct {
	*fakeNomad
	mu   sync.Mutex
	sent int
}

func (s *ctxScaler) Scale(ctx context.Context, r ScaleRequest) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	s.sent++
	s.mu.Unlock()
	return s.fakeNomad.Scale(ctx, r)
}

func TestAScaleIsNotSentWhenTheFakeLeaseRunsOutWhileItsIntentIsWrittenEvenBeforeTheTermIsCancelled(t *testing.T) {
	for _, c := range []struct {
		name string
		// endTerm says whether the term's context is cancelled by the
		// time the scale would go out (the watchdog ran during the
		// pause) or still live (it has not run yet).
		endTerm bool
	}{
		{"the watchdog has not run yet", false},
		{"the watchdog ended the term during the pause", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			// Repeated: an ended term's cancellation reaching the scale
			// late is a race, not a certainty.
			for i := range 200 {
				h := newHarness(t, 2, []int{5, 5, 5, 5, 5, 5, 5, 5, 5, 5})
				term, endTerm := context.WithCancel(context.Background())
				lease := &lapsingLease{term: term}
				sc := &ctxScaler{fakeNomad: h.nomad}
				journal := pausingJournal{State: h.db, paused: func() {
					lease.lapsed.Store(true)
					if c.endTerm {
						endTerm()
					}
				}}
				rec := New(Deps{Scaler: sc, Observer: h.nomad, Planner: h.planner, Freshness: h.fresh, State: journal, Leader: lease, Now: h.clock.now})
				if _, err := rec.Reconcile(context.Background(), testPolicy()); err != nil {
					t.Fatalf("reconcile: %v", err)
				}
				endTerm()
				if sc.sent != 0 {
					t.Fatalf("run %d: a scale was sent to Nomad after the lease ran out (desired now %d)", i, h.nomad.desired)
				}
				if d, _ := rec.LastDecision("default/web/api"); d.Reason != "lost leadership while scaling" {
					t.Fatalf("run %d: decision %+v, want the scale abandoned for the lost lease", i, d)
				}
				last, err := h.db.LastAction("default/web/api")
				if err != nil {
					t.Fatalf("run %d: journal: %v", i, err)
				}
				if last.State != store.StateIntent {
					t.Fatalf("run %d: journal's last entry %+v, want the intent left open for the next term to settle", i, last)
				}
			}
		})
	}
}

// fakeShardOwner is a fake Owner (as nomad.Shards) that holds every
// policy's shard in one term the test ends.
type fakeShardOwner struct {
	term context.Context
}

func (o fakeShardOwner) Owns(string) bool                 { return o.term.Err() == nil }
func (o fakeShardOwner) ContextOf(string) context.Context { return o.term }

func TestAScaleInFlightIsAbandonedWhenTheFakeShardOfItsPolicyIsLost(t *testing.T) {
	h := newHarness(t, 2, []int{5, 5, 5, 5, 5, 5, 5, 5, 5, 5})
	term, loseShard := context.WithCancel(context.Background())
	defer loseShard()
	hs := hangingScaler{fakeNomad: h.nomad, started: make(chan struct{})}
	// With shards the daemon's leadership is always held: the shard's
	// lock is the lease.
	rec := New(Deps{Scaler: hs, Observer: h.nomad, Planner: h.planner, Freshness: h.fresh, State: h.db,
		Leader: alwaysLeads{}, Owner: fakeShardOwner{term: term}, Now: h.clock.now})
	go func() { <-hs.started; loseShard() }()
	done := make(chan error, 1)
	go func() {
		_, err := rec.Reconcile(context.Background(), testPolicy())
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("reconcile: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the scale is still in flight 5 s after the policy's shard was lost")
	}
	if d, _ := rec.LastDecision("default/web/api"); d.Reason != "lost the policy's shard while scaling" {
		t.Fatalf("decision %+v, want the scale abandoned for the lost shard", d)
	}
	last, err := h.db.LastAction("default/web/api")
	if err != nil {
		t.Fatalf("journal: %v", err)
	}
	if last.State != store.StateIntent {
		t.Fatalf("journal's last entry %+v, want the intent left open", last)
	}
}

// alwaysLeads is a fake leadership that is never lost (nomad.AlwaysLeader).
type alwaysLeads struct{}

func (alwaysLeads) IsLeader() bool           { return true }
func (alwaysLeads) Context() context.Context { return context.Background() }
