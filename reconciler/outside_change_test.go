package reconciler

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nomadscalerd/nomadscalerd/store"
)

// heldUntil fails the test unless d holds a scale-down until until, and,
// when outside is set, says that the count changed so outside nomadscalerd
// (or, when it is empty, says nothing of such a change).
func heldUntil(t *testing.T, when string, d Decision, until time.Time, outside string) {
	t.Helper()
	if d.Action != "cooldown" || !strings.Contains(d.Reason, "cooldown until "+until.Format(time.RFC3339)) {
		t.Fatalf("%s: decision %+v, want a cooldown until %s", when, d, until.Format(time.RFC3339))
	}
	if outside == "" && strings.Contains(d.Reason, "outside nomadscalerd") {
		t.Fatalf("%s: decision %+v takes the reconciler's own doing for a change outside nomadscalerd", when, d)
	}
	if outside != "" && !strings.Contains(d.Reason, outside) {
		t.Fatalf("%s: decision %+v, want its reason to say %q", when, d, outside)
	}
}

func TestAnOperatorsScaleUpDuringTheTermIsHeldAgainstAScaleDownForThePolicysCooldownFromWhenItWasSeenWithAFakeNomad(t *testing.T) {
	for _, tc := range []struct {
		name string
		// event: Nomad records a scaling event (`nomad job scale`); a
		// `nomad job run` with a new count records none.
		event bool
	}{{"nomad job scale", true}, {"nomad job run with a new count", false}} {
		t.Run(tc.name, func(t *testing.T) {
			threes := slices.Repeat([]int{3}, 10)
			h := newHarness(t, 5, threes)
			t0 := h.clock.t
			rec := h.replica(t, "a", newFakeLease())
			// The term's one read of Nomad's last scaling event is spent
			// on the way to this scale-down, and its cooldown runs out.
			h.reconcileOn(t, rec)
			h.clock.advance(31 * time.Second)
			if d := h.reconcileOn(t, rec); d.Action != "none" {
				t.Fatalf("31 s in: decision %+v, want at plan", d)
			}
			if got := h.nomad.counts(); !slices.Equal(got, []int{3}) || h.nomad.eventReads != 1 {
				t.Fatalf("scaled to %v after %d reads, want to 3 after one", got, h.nomad.eventReads)
			}

			// An operator raises the count to 8 at 40 s; the plan still
			// wants 3.
			h.clock.advance(9 * time.Second)
			h.nomad.desired = 8
			if tc.event {
				h.nomad.events = append(h.nomad.events, ScalingEvent{Time: h.clock.t, Count: new(8), PreviousCount: 3, Message: "scaled by hand"})
			}
			h.clock.advance(time.Second)
			seen := h.clock.t
			heldUntil(t, "the reconcile that sees 8", h.reconcileOn(t, rec), seen.Add(30*time.Second), "after the count changed from 3 to 8 outside nomadscalerd")
			h.clock.advance(29 * time.Second)
			heldUntil(t, "29 s after", h.reconcileOn(t, rec), seen.Add(30*time.Second), "after the count changed from 3 to 8 outside nomadscalerd")
			if got := h.nomad.counts(); len(got) != 1 {
				t.Fatalf("scaled %v inside the policy's cooldown after an operator's change", got[1:])
			}
			h.clock.advance(time.Second)
			h.reconcileOn(t, rec)
			if got := h.nomad.counts(); !slices.Equal(got, []int{3, 3}) {
				t.Errorf("scaled to %v, want back to 3 once the policy's 30 s cooldown from %s ended", got, seen.Sub(t0))
			}
			if h.nomad.eventReads != 1 {
				t.Errorf("read Nomad's last scaling event %d times, want once in the term", h.nomad.eventReads)
			}
		})
	}
}

func TestTheReconcilersOwnScaleDryRunOrBlockedScaleStartsNoSecondLongerHoldWithAFakeNomad(t *testing.T) {
	for _, tc := range []struct {
		name    string
		dryRun  bool
		blocked bool
		// after is how long after the operator's change (at 5 s) the
		// scale-down is held: the reconciler's own action at 10 s holds
		// until 40 s; a blocked scale starts none, so the operator's
		// change, seen at 5 s, holds until 35 s.
		after   time.Duration
		outside string
	}{
		{name: "scale", after: 35 * time.Second},
		{name: "dry run", dryRun: true, after: 35 * time.Second},
		{name: "blocked by a deployment", blocked: true, after: 30 * time.Second, outside: "after the count changed from 2 to 5 outside nomadscalerd"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Plans of 5 s: each reconcile below, 5 s or more apart,
			// makes a new one from the planner's counts.
			h := newHarness(t, 2, slices.Repeat([]int{2}, 5))
			rec := h.replica(t, "a", newFakeLease())
			rec.d.DryRun = tc.dryRun
			h.reconcileOn(t, rec)

			// An operator raises the count to 5, which the plan now
			// wants too.
			h.clock.advance(5 * time.Second)
			changed := h.clock.t
			h.nomad.desired = 5
			h.planner.desired = slices.Repeat([]int{5}, 5)
			if d := h.reconcileOn(t, rec); d.Action != "none" {
				t.Fatalf("at the operator's count: decision %+v, want at plan", d)
			}

			// The plan wants 7: a scale-up is not held by the change.
			h.clock.advance(5 * time.Second)
			h.planner.desired = slices.Repeat([]int{7}, 5)
			if tc.blocked {
				h.nomad.failErr = fmt.Errorf("scale web/api: %w", ErrActiveDeployment)
			}
			d := h.reconcileOn(t, rec)
			if want := map[bool]string{false: "scale", true: "dry_run"}[tc.dryRun]; tc.blocked && d.Action != "blocked" || !tc.blocked && d.Action != want || len(h.nomad.calls) != 1 {
				t.Fatalf("scale-up after the operator's change: decision %+v and calls %v, want one %s", d, h.nomad.calls, map[bool]string{false: want, true: "blocked"}[tc.blocked])
			}
			h.nomad.failErr = nil

			// The plan falls to 2: held, until the hold ends and not longer.
			h.clock.advance(10 * time.Second)
			h.planner.desired = slices.Repeat([]int{2}, 5)
			until := changed.Add(tc.after)
			heldUntil(t, "10 s after the scale-up", h.reconcileOn(t, rec), until, tc.outside)
			h.clock.t = until.Add(-time.Second)
			heldUntil(t, "a second before the hold ends", h.reconcileOn(t, rec), until, tc.outside)
			h.clock.t = until
			d = h.reconcileOn(t, rec)
			if len(h.nomad.calls) != 2 || (d.Action != "scale" && d.Action != "dry_run") || (!tc.dryRun && *h.nomad.calls[1].Count != 2) {
				t.Errorf("when the hold ends: decision %+v, calls %v, want a scale-down to 2", d, h.nomad.calls)
			}
		})
	}
}

func TestTheFirstReconcileAfterAStartTakesTheCountAsItFindsItAndOnlyALaterChangeAsSomeoneElsesWithAFakeNomad(t *testing.T) {
	t.Run("a fresh start", func(t *testing.T) {
		// Nomad has no scaling event: the group was registered with 8.
		h := newHarness(t, 8, slices.Repeat([]int{3}, 10))
		rec := h.replica(t, "a", newFakeLease())
		if d := h.reconcileOn(t, rec); d.Action != "scale" || !slices.Equal(h.nomad.counts(), []int{3}) {
			t.Fatalf("first reconcile: decision %+v, calls %v, want a scale-down to 3 at once", d, h.nomad.counts())
		}
		// Once its own cooldown is over, a change by hand is someone
		// else's.
		h.clock.advance(31 * time.Second)
		h.nomad.desired = 6
		heldUntil(t, "after a change by hand", h.reconcileOn(t, rec), h.clock.t.Add(30*time.Second), "after the count changed from 3 to 6 outside nomadscalerd")
	})

	t.Run("a restart that finds its own half-done scale in the journal", func(t *testing.T) {
		// The previous process scaled 3 -> 8 20 s ago, with a 30 s
		// cooldown, and died before journaling it done.
		h := newHarness(t, 8, slices.Repeat([]int{3}, 10))
		rec := h.replica(t, "a", newFakeLease())
		until := h.clock.t.Add(10 * time.Second)
		if _, err := rec.d.State.Append(store.JournalEntry{ActionID: "a1", Kind: "scale", State: store.StateIntent, Target: testPolicy().Key,
			Data: mustJSON(scaleData{From: 3, To: 8, CooldownUntil: until})}); err != nil {
			t.Fatal(err)
		}
		heldUntil(t, "first reconcile", h.reconcileOn(t, rec), until, "")
		h.clock.t = until
		h.reconcileOn(t, rec)
		if got := h.nomad.counts(); !slices.Equal(got, []int{3}) {
			t.Errorf("scaled to %v when the settled action's cooldown ended, want 3", got)
		}
	})
}
