package reconciler

import (
	"fmt"
	"testing"
	"time"
)

func TestAThousandPoliciesReplanSpreadAcrossTheIntervalByTheirKeys(t *testing.T) {
	every := 10 * time.Second
	perSecond := make([]int, 10)
	for i := range 1000 {
		key := fmt.Sprintf("default/bench-%04d/web", i)
		ph := replanPhase(key, every)
		if ph < 0 || ph >= every {
			t.Fatalf("%s: phase %s outside [0, %s)", key, ph, every)
		}
		if again := replanPhase(key, every); again != ph {
			t.Fatalf("%s: phase %s then %s: not a function of the key", key, ph, again)
		}
		perSecond[ph/time.Second]++
	}
	// 100 a second if even; a hash leaves a few dozen either way.
	for s, n := range perSecond {
		if n < 60 || n > 140 {
			t.Errorf("%d of 1,000 policies re-plan in second %d of the interval, want 60-140 (all seconds: %v)", n, s, perSecond)
		}
	}
}

func TestAReplanIntervalUnderAMillisecondHasNoPhase(t *testing.T) {
	if got := replanPhase("default/web/web", time.Microsecond); got != 0 {
		t.Errorf("phase %s of a 1µs interval, want 0", got)
	}
}

func TestAPolicysSecondPlanComesAtItsKeysPhaseAndTheWorkerWakesForIt(t *testing.T) {
	h := newHarness(t, 3, steadyPlan(120, 3))
	p := testPolicy()
	every := p.Target.ReplanInterval
	phase := replanPhase(p.Key, every)
	if phase == 0 {
		t.Fatalf("the test policy's key has phase 0: the test would not tell a phase from none")
	}
	start := h.clock.t
	h.reconcile(t)
	if h.planner.calls != 1 {
		t.Fatalf("%d plans at the first reconcile, want 1", h.planner.calls)
	}
	// Wake when told to, as the pool does, until the second plan.
	for range 20 {
		res := h.reconcile(t)
		if h.planner.calls == 2 {
			break
		}
		h.clock.advance(res.RequeueAfter)
	}
	if h.planner.calls != 2 {
		t.Fatalf("%d plans, want a second one", h.planner.calls)
	}
	want := max(every-phase, 2*time.Second)
	if got := h.clock.t.Sub(start); got != want {
		t.Errorf("second plan %s after the first, want %s (interval %s less the key's phase %s)", got, want, every, phase)
	}
}

func steadyPlan(n, v int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = v
	}
	return out
}
