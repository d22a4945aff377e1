package predict

import (
	"context"
	"math"
	"testing"
	"time"
)

// A clock that steps back (the case stabilize already tolerates) must not
// make the measured startup delay negative: a negative delay turns the
// scale-down hold into a window that ends before it starts, and the plan
// lookups over it slice backwards.
func TestAClockSteppingBackNeverMeasuresANegativeStartupDelay(t *testing.T) {
	e := NewDelayEstimator(0, false)
	e.Requested(at(100), 2, 4)
	e.Observe(at(40), 4, 4) // the clock went back a minute; the replicas run
	if d := e.Delay(); d < 0 {
		t.Errorf("startup delay %s: a delay is never negative", d)
	}
}

func TestDecideDoesNotPanicAfterTheClockStepsBack(t *testing.T) {
	sp := &scriptedPlanner{desired: []int{2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2}}
	s := settings()
	s.FloorMargin = 0
	d, err := NewDecider(s, NewDelayEstimator(0, false), sp.plan)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("Decide panicked: %v", r)
		}
	}()
	ctx := context.Background()
	// A scale-up from 1 to 2 at second 100 (its replica is requested) ...
	d.Decide(ctx, Input{Now: at(100), Current: 1, Running: 1})
	// ... then the clock steps back a minute and the replica runs.
	d.Decide(ctx, Input{Now: at(40), Current: 2, Running: 2})
	for s := 41; s < 80; s++ {
		d.Decide(ctx, Input{Now: at(s), Current: 2, Running: 2})
	}
}

// Demand so high that its replica count does not fit an int must scale the
// group to its max, not wrap to a negative count and drop it to its min.
func TestAFloorBeyondTheIntRangeIsNotNegative(t *testing.T) {
	if f := Floor([]float64{1e300, 1e300, 1e300}, 10, 1, 0); f < 0 {
		t.Errorf("Floor of 1e300 requests/s at 10 a replica is %d", f)
	}
	if c := Cold([]float64{1e300, 1e300, 1e300}, 10, 0, Noise{}); c < 0 {
		t.Errorf("Cold of 1e300 requests/s at 10 a replica is %d", c)
	}
	s := settings()
	s.Max = 50
	d, err := NewDecider(s, NewDelayEstimator(0, true), (&scriptedPlanner{err: context.Canceled}).plan)
	if err != nil {
		t.Fatal(err)
	}
	got := d.Decide(context.Background(), Input{Now: at(0), Current: 5, Running: 5, Recent: []float64{1e300, 1e300, math.MaxFloat64}})
	if got.Count != s.Max {
		t.Errorf("count %d (%s) under demand of 1e300 requests/s, want the max %d", got.Count, got.Source, s.Max)
	}
	_ = time.Second
}

// A counter reset's negative sample is no demand to the band check, as it
// is to the floor (usable): read raw, one reset looked like demand far
// below the forecast band, forced a re-plan and counted an exit toward a
// refit.
func TestACounterResetSampleIsNotABandExit(t *testing.T) {
	sp := &scriptedPlanner{desired: steadyInts(20, 5), lower: steady(20, 30), upper: steady(20, 60)}
	s := settings()
	d, err := NewDecider(s, NewDelayEstimator(0, true), sp.plan)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	d.Decide(ctx, Input{Now: at(0), Current: 5, Running: 5, Recent: steady(60, 45)})
	reset := append(steady(59, 45), -1000)
	if got := d.Decide(ctx, Input{Now: at(4), Current: 5, Running: 5, Recent: reset}); got.Replanned {
		t.Errorf("one negative (counter reset) sample among seconds at 45/s in a band of 30..60: re-planned (%s)", got.Why)
	}
}
