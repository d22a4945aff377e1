package reconciler

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nomadscalerd/nomadscalerd/optimize"
	"github.com/nomadscalerd/nomadscalerd/predict"
	"github.com/nomadscalerd/nomadscalerd/store"
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
	h := newHarness(t, 3, slices.Repeat([]int{3}, 120))
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
	want := every - phase
	if got := h.clock.t.Sub(start); got != want {
		t.Errorf("second plan %s after the first, want %s (interval %s less the key's phase %s)", got, want, every, phase)
	}
}

// planTimes records when each policy's plans were asked for.
type planTimes struct {
	fixedPlanner
	at map[string][]time.Time
}

func (p *planTimes) PlanAhead(ctx context.Context, pol Policy, r predict.PlanRequest) (optimize.Plan, error) {
	p.at[pol.Key] = append(p.at[pol.Key], r.Now)
	return p.fixedPlanner.PlanAhead(ctx, pol, r)
}

func TestPoliciesWhoseReplansRanTogetherAfterAStallSpreadOutAgain(t *testing.T) {
	h := newHarness(t, 3, nil)
	planner := &planTimes{fixedPlanner: fixedPlanner{desired: slices.Repeat([]int{3}, 120)}, at: map[string][]time.Time{}}
	rec := New(Deps{Scaler: h.nomad, Observer: h.nomad, Planner: planner, Freshness: h.fresh, State: h.db, Now: h.clock.now})
	const n = 100
	start := h.clock.t
	next := map[string]time.Time{}
	policies := map[string]Policy{}
	for i := range n {
		p := testPolicy()
		p.Key, p.Job = fmt.Sprintf("default/job-%03d/api", i), fmt.Sprintf("job-%03d", i)
		policies[p.Key] = p
		// Their first reconciles within the daemon's first second.
		next[p.Key] = start.Add(time.Duration(i) * 10 * time.Millisecond)
	}
	// Every worker is busy from 3 s to 33 s (the start-up fits): what
	// falls due then runs at 33 s, all of it at once.
	stallFrom, stallTo := start.Add(3*time.Second), start.Add(33*time.Second)
	end := start.Add(100 * time.Second)
	for {
		key := ""
		for k, at := range next {
			if key == "" || at.Before(next[key]) || (at.Equal(next[key]) && k < key) {
				key = k
			}
		}
		at := next[key]
		if !at.Before(end) {
			break
		}
		if !at.Before(stallFrom) && at.Before(stallTo) {
			next[key] = stallTo
			continue
		}
		h.clock.t = at
		h.fresh[store.SeriesName(key, "requests")] = at
		res, err := rec.Reconcile(context.Background(), policies[key])
		if err != nil {
			t.Fatalf("%s at %s: %v", key, at.Sub(start), err)
		}
		next[key] = at.Add(res.RequeueAfter)
	}
	// After the stall's backlog, plans in each second of the last 40 s.
	perSecond := map[int]int{}
	for _, times := range planner.at {
		for _, at := range times {
			if s := int(at.Sub(start) / time.Second); s >= 60 {
				perSecond[s]++
			}
		}
	}
	most, total := 0, 0
	for _, c := range perSecond {
		most, total = max(most, c), total+c
	}
	if total < 3*n {
		t.Fatalf("%d plans in the last 40 s of %d policies re-planning every 10 s", total, n)
	}
	// 10 a second if even; without phases all 100 in one second.
	if most > 25 {
		t.Errorf("up to %d of %d policies re-planned in one second after the stall, want them spread (at most 25)", most, n)
	}
	t.Logf("at most %d of %d policies re-planned in one second after the stall", most, n)
}
