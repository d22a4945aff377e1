package optimize

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func TestPlanValueSelectsByWholeSecondsElapsedModuloTheCacheSize(t *testing.T) {
	pl := Plan{Start: t0, Desired: []int{1, 2, 3}, MinReplicas: 0, MaxReplicas: 10}
	cases := []struct {
		after       time.Duration
		want        int
		wantRefresh bool
	}{
		{-5 * time.Second, 1, false}, // before the start: the first value
		{0, 1, false},
		{1900 * time.Millisecond, 2, false},
		{2 * time.Second, 3, false},
		{3 * time.Second, 1, false}, // second pass
		{5*time.Second + 999*time.Millisecond, 3, false},
		{6 * time.Second, 1, true}, // served through twice
		{100 * time.Second, 2, true},
	}
	for _, c := range cases {
		got, refresh := pl.Value(t0.Add(c.after))
		if got != c.want || refresh != c.wantRefresh {
			t.Errorf("after %v: (%d, %v), want (%d, %v)", c.after, got, refresh, c.want, c.wantRefresh)
		}
	}
}

func TestPlanValueClampsToMinAndMax(t *testing.T) {
	pl := Plan{Start: t0, Desired: []int{0, 20, 5}, MinReplicas: 1, MaxReplicas: 10}
	var got []int
	for s := 0; s < 3; s++ {
		v, _ := pl.Value(t0.Add(time.Duration(s) * time.Second))
		got = append(got, v)
	}
	if want := []int{1, 10, 5}; !slices.Equal(got, want) {
		t.Fatalf("served %v, want %v", got, want)
	}
}

func TestAnEmptyPlanServesMinAndAsksForRefresh(t *testing.T) {
	v, refresh := Plan{MinReplicas: 2, MaxReplicas: 4}.Value(t0)
	if v != 2 || !refresh {
		t.Fatalf("got (%d, %v), want (2, true)", v, refresh)
	}
}

func TestServeKeepsTheCachedPlanWhileItIsFresh(t *testing.T) {
	cur := Plan{ID: "a", Start: t0, Desired: []int{4, 5}, MaxReplicas: 10}
	calls := 0
	produce := func(context.Context) (Plan, error) { calls++; return Plan{}, nil }
	v, next, err := Serve(context.Background(), t0.Add(3*time.Second), cur, produce)
	if err != nil || v != 5 || next.ID != "a" || calls != 0 {
		t.Fatalf("got (%d, %q, %v) after %d produce calls, want (5, a, nil) and none", v, next.ID, err, calls)
	}
}

func TestServeReplacesThePlanAfterTwoPasses(t *testing.T) {
	cur := Plan{ID: "old", Start: t0, Desired: []int{4, 5}, MaxReplicas: 10}
	now := t0.Add(4 * time.Second)
	fresh := Plan{ID: "new", Start: now, Desired: []int{7, 8}, MaxReplicas: 10}
	v, next, err := Serve(context.Background(), now, cur, func(context.Context) (Plan, error) { return fresh, nil })
	if err != nil || v != 7 || next.ID != "new" {
		t.Fatalf("got (%d, %q, %v), want (7, new, nil)", v, next.ID, err)
	}
}

func TestServeKeepsServingTheCachedPlanThroughAnOptimizerFailure(t *testing.T) {
	cur := Plan{ID: "old", Start: t0, Desired: []int{4, 5, 6}, MaxReplicas: 10}
	boom := errors.New("solver down")
	for s := 6; s < 12; s++ {
		v, next, err := Serve(context.Background(), t0.Add(time.Duration(s)*time.Second), cur,
			func(context.Context) (Plan, error) { return Plan{}, boom })
		if !errors.Is(err, boom) {
			t.Fatalf("second %d: err %v, want the producer's error", s, err)
		}
		if want := cur.Desired[s%3]; v != want || next.ID != "old" {
			t.Fatalf("second %d: served %d from %q, want %d from old", s, v, next.ID, want)
		}
		cur = next
	}
}

func TestPlanSurvivesAJSONRoundTrip(t *testing.T) {
	pl := Plan{ID: newPlanID(t0), Start: t0, Desired: []int{1, 2}, Serving: []int{1, 2}, MinReplicas: 1, MaxReplicas: 3, Objective: 4.5, Solver: "dp"}
	b, err := json.Marshal(pl)
	if err != nil {
		t.Fatal(err)
	}
	var back Plan
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.ID != pl.ID || !back.Start.Equal(pl.Start) || !slices.Equal(back.Desired, pl.Desired) ||
		back.MinReplicas != 1 || back.MaxReplicas != 3 || back.Objective != 4.5 || back.Solver != "dp" {
		t.Fatalf("round trip changed the plan: %+v -> %+v", pl, back)
	}
}

func TestPlanIDsAreUniqueAndStartWithTheStartTime(t *testing.T) {
	a, b := newPlanID(t0), newPlanID(t0)
	if a == b {
		t.Fatalf("two ids are equal: %s", a)
	}
	if a[:16] != "20260102T030405Z" {
		t.Fatalf("id %s does not start with the start time", a)
	}
}
