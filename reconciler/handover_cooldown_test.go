package reconciler

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nomadscalerd/nomadscalerd/store"
)

// replica is one nomadscalerd replica on the harness's fake Nomad, clock
// and planner, with a database of its own (as each replica of an HA pair
// has) and lease as its leadership.
func (h *harness) replica(t *testing.T, name string, lease Leadership) *Reconciler {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), name+".db"), store.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	h.nomad.now = h.clock.now
	return New(Deps{Scaler: h.nomad, Observer: h.nomad, Events: h.nomad, Planner: h.planner, Freshness: h.fresh, State: db,
		Leader: lease, Now: h.clock.now, Replica: name})
}

// reconcileOn runs one reconcile of the test policy on rec with fresh
// metrics and returns its decision.
func (h *harness) reconcileOn(t *testing.T, rec *Reconciler) Decision {
	t.Helper()
	h.fresh["default/web/api/requests"] = h.clock.t
	if _, err := rec.Reconcile(context.Background(), testPolicy()); err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	d, _ := rec.LastDecision(testPolicy().Key)
	return d
}

// counts are the counts of the scale calls the fake Nomad got.
func (f *fakeNomad) counts() []int {
	var out []int
	for _, c := range f.calls {
		if c.Count != nil {
			out = append(out, *c.Count)
		}
	}
	return out
}

func TestANewLeaderHoldsAScaleDownInTheCooldownThePreviousLeaderWroteIntoAFakeNomad(t *testing.T) {
	h := newHarness(t, 2, []int{5, 5, 5, 5, 5, 5, 5, 5, 5, 5})
	t0 := h.clock.t
	a := h.replica(t, "a", newFakeLease())
	h.reconcileOn(t, a)
	if got := h.nomad.counts(); len(got) != 1 || got[0] != 5 {
		t.Fatalf("the first leader scaled to %v, want 5", got)
	}
	if got, want := h.nomad.calls[0].Meta[CooldownUntilMeta], t0.Add(30*time.Second).Format(time.RFC3339Nano); got != want {
		t.Errorf("the scale's meta %s = %v, want the cooldown's end %s", CooldownUntilMeta, got, want)
	}

	// a fails over to b, whose database holds no cooldown; the plan now
	// wants 1, 11 s into a's 30 s cooldown.
	h.planner.desired = []int{1, 1, 1, 1, 1, 1, 1, 1, 1, 1}
	h.clock.advance(11 * time.Second)
	b := h.replica(t, "b", newFakeLease())
	d := h.reconcileOn(t, b)
	if got := h.nomad.counts(); len(got) != 1 {
		t.Fatalf("the new leader scaled %v inside the previous leader's cooldown", got[1:])
	}
	if d.Action != "cooldown" || !strings.Contains(d.Reason, "from Nomad's last scaling event (nomadscalerd a,") ||
		!strings.Contains(d.Reason, t0.Add(30*time.Second).Format(time.RFC3339)) {
		t.Errorf("decision %+v, want a cooldown until %s that names Nomad's last scaling event, by a", d, t0.Add(30*time.Second).Format(time.RFC3339))
	}

	// Stored: held again without asking Nomad, and released on time.
	h.clock.advance(10 * time.Second)
	if d := h.reconcileOn(t, b); d.Action != "cooldown" || !strings.Contains(d.Reason, "Nomad's last scaling event") {
		t.Errorf("21 s in: decision %+v, want still the cooldown read from Nomad", d)
	}
	h.clock.advance(10 * time.Second)
	h.reconcileOn(t, b)
	if got := h.nomad.counts(); len(got) != 2 || got[1] != 1 {
		t.Errorf("scaled to %v, want 5 then, once the cooldown ended, 1", got)
	}
	if h.nomad.eventReads != 1 {
		t.Errorf("the new leader read Nomad's last scaling event %d times, want once", h.nomad.eventReads)
	}
}

func TestAScaleByAnotherHandHoldsScaleDownsForThePolicysOwnCooldownFromItsTimeWithAFakeNomad(t *testing.T) {
	// An operator's `nomad job scale` to 5: an event without
	// nomadscalerd's meta.
	h := newHarness(t, 5, []int{1, 1, 1, 1, 1, 1, 1, 1, 1, 1})
	t0 := h.clock.t
	rec := h.replica(t, "a", newFakeLease())
	h.nomad.events = []ScalingEvent{{Time: t0, Count: new(5), PreviousCount: 2, Message: "scaled by hand"}}
	h.clock.advance(10 * time.Second)
	d := h.reconcileOn(t, rec)
	if len(h.nomad.calls) != 0 {
		t.Fatalf("scaled %v 10 s after an operator's scale, inside the policy's 30 s cooldown", h.nomad.counts())
	}
	if d.Action != "cooldown" || !strings.Contains(d.Reason, "with no nomadscalerd cooldown: the policy's 30s scale-down cooldown") ||
		!strings.Contains(d.Reason, t0.Add(30*time.Second).Format(time.RFC3339)) {
		t.Errorf("decision %+v, want the policy's cooldown from the operator's event", d)
	}
	h.clock.advance(20 * time.Second)
	h.reconcileOn(t, rec)
	if got := h.nomad.counts(); len(got) != 1 || got[0] != 1 {
		t.Errorf("scaled to %v 30 s after the operator's event, want 1", got)
	}
}

func TestNomadsLastScalingEventIsReadOnlyOnTheWayToAScaleDownAndOncePerTermWithAFakeNomad(t *testing.T) {
	h := newHarness(t, 2, []int{5, 5, 5, 5, 5, 5, 5, 5, 5, 5})
	lease := newFakeLease()
	rec := h.replica(t, "a", lease)
	h.reconcileOn(t, rec) // up to 5
	h.clock.advance(time.Second)
	h.reconcileOn(t, rec) // at plan
	if h.nomad.eventReads != 0 {
		t.Fatalf("read Nomad's scaling events %d times for a scale-up and a count at plan, want none", h.nomad.eventReads)
	}

	// Down, its own cooldown over: one read, which finds that cooldown
	// (its own action's) over too, and the scale-down is made.
	h.planner.desired = []int{1, 1, 1, 1, 1, 1, 1, 1, 1, 1}
	h.clock.advance(30 * time.Second)
	h.reconcileOn(t, rec)
	if got := h.nomad.counts(); len(got) != 2 || got[1] != 1 || h.nomad.eventReads != 1 {
		t.Fatalf("scaled to %v after %d reads, want 5 then 1 after one", got, h.nomad.eventReads)
	}

	// A failed read holds the scale-down and is retried.
	h.nomad.desired = 4 // raised by hand, unseen in events
	h.clock.advance(31 * time.Second)
	h.nomad.eventErr = fmt.Errorf("scale status web: %w", ErrUnavailable)
	lease.newTerm()
	h.fresh["default/web/api/requests"] = h.clock.t
	if _, err := rec.Reconcile(context.Background(), testPolicy()); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("reconcile with Nomad's events unreadable: %v, want ErrUnavailable", err)
	}
	if got := h.nomad.counts(); len(got) != 2 {
		t.Fatalf("scaled down to %d without reading the new term's last scaling event", got[2])
	}
	h.nomad.eventErr = nil
	h.reconcileOn(t, rec)
	if got := h.nomad.counts(); len(got) != 3 || got[2] != 1 || h.nomad.eventReads != 3 {
		t.Fatalf("scaled to %v after %d reads, want a scale-down to 1 after the failed read and one more", got, h.nomad.eventReads)
	}

	// Within the term, nothing more is read: a count raised by hand is
	// held from when it is seen, and scaled down after its cooldown.
	h.nomad.desired = 4
	h.clock.advance(31 * time.Second)
	h.reconcileOn(t, rec)
	h.clock.advance(30 * time.Second)
	h.reconcileOn(t, rec)
	if got := h.nomad.counts(); len(got) != 4 || h.nomad.eventReads != 3 {
		t.Errorf("scaled to %v after %d reads, want a fourth scale without a read in the same term", got, h.nomad.eventReads)
	}
}
