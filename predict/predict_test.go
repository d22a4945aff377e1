package predict

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nomadscalerd/nomadscalerd/optimize"
)

func TestFloorIsTheRecentMeanLevelOverCapacityRoundedUp(t *testing.T) {
	cases := []struct {
		name     string
		recent   []float64
		capacity float64
		margin   float64
		want     int
	}{
		{"no history is no floor", nil, 10, 1, 0},
		{"an idle group needs nothing", []float64{0, 0, 0}, 10, 1, 0},
		{"exactly one replica's worth needs one", []float64{10, 10}, 10, 1, 1},
		{"a little more needs two", []float64{10, 11}, 10, 1, 2},
		{"the margin scales the level", []float64{20, 20}, 10, 1.5, 3},
		{"a zero margin turns the floor off", []float64{500}, 10, 0, 0},
		{"negative samples count as none", []float64{-50, 30}, 10, 1, 2},
		{"a burning job needs many at once", []float64{2600}, 100, 1, 26},
	}
	for _, c := range cases {
		if got := Floor(c.recent, c.capacity, c.margin, 0); got != c.want {
			t.Errorf("%s: Floor(%v, %v, %v) = %d, want %d", c.name, c.recent, c.capacity, c.margin, got, c.want)
		}
	}
}

func TestTheFloorFollowsARisingTrendAStartupDelayAheadAndNeverRunsAheadOfAFall(t *testing.T) {
	ramp := func(from, step float64, n int) []float64 {
		out := make([]float64, n)
		for i := range out {
			out[i] = from + step*float64(i)
		}
		return out
	}
	cases := []struct {
		name   string
		recent []float64
		lead   float64
		want   int
	}{
		// 0..59 rises 1/s: its line reaches 59 at the last sample and
		// 89 thirty seconds later; the mean is 29.5.
		{"a rise is followed to the lead ahead", ramp(0, 1, 60), 30, 9},
		{"without a lead the floor is the mean", ramp(0, 1, 60), 0, 3},
		{"a fall keeps the mean", ramp(59, -1, 60), 30, 3},
		{"a flat level is the level", ramp(40, 0, 60), 30, 4},
		{"two samples have no trend", []float64{0, 100}, 30, 5},
		// 30 s at 10, 20 s at 60, 10 s at 10 again: the window's line
		// still rises (to 59.7 thirty seconds on), but demand is back
		// down; the floor is the mean, 26.7.
		{"a rise that has ended does not lift the floor", slices.Concat(ramp(10, 0, 30), ramp(60, 0, 20), ramp(10, 0, 10)), 30, 3},
	}
	for _, c := range cases {
		if got := Floor(c.recent, 10, 1, c.lead); got != c.want {
			t.Errorf("%s: Floor(lead %v) = %d, want %d", c.name, c.lead, got, c.want)
		}
	}
}

// scriptedPlanner returns the plans a test gives it and records the calls.
type scriptedPlanner struct {
	desired []int
	lower   []float64
	upper   []float64
	err     error
	calls   []PlanRequest
}

func (s *scriptedPlanner) plan(_ context.Context, r PlanRequest) (optimize.Plan, error) {
	s.calls = append(s.calls, r)
	if s.err != nil {
		return optimize.Plan{}, s.err
	}
	return optimize.Plan{ID: r.Now.Format("150405"), Start: r.Now, Desired: s.desired, Lower: s.lower, Upper: s.upper, MinReplicas: 0, MaxReplicas: 100}, nil
}

func settings() Settings {
	s := DefaultSettings()
	s.Min, s.Max = 1, 20
	s.Disruption = 0
	s.FlapWindow = 0
	return s
}

func steady(n int, v float64) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = v
	}
	return out
}

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func at(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

func TestThePlansValueForTheCurrentSecondIsServedNotALoopOfItsFirstSeconds(t *testing.T) {
	sp := &scriptedPlanner{desired: []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}}
	s := settings()
	s.FloorMargin = 0
	s.ReplanInterval = time.Minute
	d, err := NewDecider(s, NewDelayEstimator(0, true), sp.plan)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ second, want int }{{0, 1}, {4, 5}, {9, 10}, {11, 12}} {
		got := d.Decide(context.Background(), Input{Now: at(c.second), Current: c.want - 1, Running: c.want - 1})
		if got.Count != c.want || got.Source != "plan" {
			t.Errorf("second %d: count %d from %s, want %d from the plan", c.second, got.Count, got.Source, c.want)
		}
	}
	if len(sp.calls) != 1 {
		t.Errorf("%d plans within the replan interval, want 1", len(sp.calls))
	}
	// Past its end the plan is not replayed from its start: a new one is made.
	if got := d.Decide(context.Background(), Input{Now: at(30), Current: 12, Running: 12}); !got.Replanned || got.Why != "plan ran out" {
		t.Errorf("past the plan's end: replanned %v (%q), want a new plan because it ran out", got.Replanned, got.Why)
	}
}

func TestANewPlanIsMadeEveryReplanIntervalAndCoversStartupAndHold(t *testing.T) {
	sp := &scriptedPlanner{desired: make([]int, 60)}
	for i := range sp.desired {
		sp.desired[i] = 3
	}
	s := settings()
	s.ReplanInterval = 10 * time.Second
	s.Disruption = 5 * time.Second
	d, err := NewDecider(s, NewDelayEstimator(30*time.Second, true), sp.plan)
	if err != nil {
		t.Fatal(err)
	}
	for sec := 0; sec < 35; sec++ {
		d.Decide(context.Background(), Input{Now: at(sec), Current: 3, Running: 3})
	}
	if len(sp.calls) != 4 { // at 0, 10, 20, 30
		t.Fatalf("%d plans in 35 s at a 10 s interval, want 4", len(sp.calls))
	}
	for i, c := range sp.calls {
		if want := at(10 * i); !c.Now.Equal(want) {
			t.Errorf("plan %d made at %s, want %s", i, c.Now, want)
		}
		if c.Horizon < 10+30+35 || c.StartupDelay != 30*time.Second {
			t.Errorf("plan %d: horizon %d with startup %s; want at least replan 10 + startup 30 + hold 35", i, c.Horizon, c.StartupDelay)
		}
	}
}

func TestDemandLeavingTheForecastBandReplansAtOnceAndRepeatedExitsRefit(t *testing.T) {
	sp := &scriptedPlanner{desired: []int{5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5}, lower: steady(20, 30), upper: steady(20, 60)}
	s := settings()
	s.ReplanInterval = 10 * time.Second
	s.MinReplanGap = 2 * time.Second
	s.WrongAfter, s.WrongFor = 2, 20*time.Second
	d, err := NewDecider(s, NewDelayEstimator(0, true), sp.plan)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	inBand := steady(60, 45)
	d.Decide(ctx, Input{Now: at(0), Current: 5, Running: 5, Recent: inBand})
	for sec := 1; sec < 6; sec++ {
		if got := d.Decide(ctx, Input{Now: at(sec), Current: 5, Running: 5, Recent: inBand}); got.Replanned {
			t.Fatalf("re-planned at second %d with demand inside the band: %s", sec, got.Why)
		}
	}
	// A surge far above the band: a new plan at once, not at second 10.
	surge := append(steady(55, 45), steady(5, 200)...)
	got := d.Decide(ctx, Input{Now: at(6), Current: 5, Running: 5, Recent: surge})
	if !got.Replanned || sp.calls[len(sp.calls)-1].Refit {
		t.Fatalf("demand above the band: replanned %v (%s), refit %v; want a plan without a refit", got.Replanned, got.Why, sp.calls[len(sp.calls)-1].Refit)
	}
	// Within the minimum gap nothing re-plans, however far off demand is.
	if got := d.Decide(ctx, Input{Now: at(7), Current: 5, Running: 5, Recent: surge}); got.Replanned {
		t.Fatal("re-planned within the minimum gap")
	}
	// The floor carries the surge meanwhile.
	want := int(math.Ceil(150 * s.FloorMargin / 10))
	if got := d.Decide(ctx, Input{Now: at(7), Current: 5, Running: 5, Recent: steady(60, 150)}); got.Count != want || got.Source != "floor" {
		t.Errorf("surge of 150/s at 10 per replica: count %d from %s, want the floor's %d (150 x %v / 10)", got.Count, got.Source, want, s.FloorMargin)
	}
	// Exits in a row re-plan every time, but a model is not wrong for a
	// burst: the exits must keep coming for WrongFor before a plan refits.
	for sec := 9; sec < 6+20; sec += 2 {
		got = d.Decide(ctx, Input{Now: at(sec), Current: 5, Running: 5, Recent: surge})
		if !got.Replanned || sp.calls[len(sp.calls)-1].Refit {
			t.Fatalf("exit at second %d, %d s after the first: replanned %v, refit %v; want a plan without a refit",
				sec, sec-6, got.Replanned, sp.calls[len(sp.calls)-1].Refit)
		}
	}
	got = d.Decide(ctx, Input{Now: at(27), Current: 5, Running: 5, Recent: surge})
	if !got.Replanned || !sp.calls[len(sp.calls)-1].Refit {
		t.Fatalf("exits in a row for 21 s: replanned %v, refit %v; want a refit", got.Replanned, sp.calls[len(sp.calls)-1].Refit)
	}
	// A refit starts the count again.
	got = d.Decide(ctx, Input{Now: at(29), Current: 5, Running: 5, Recent: surge})
	if !got.Replanned || sp.calls[len(sp.calls)-1].Refit {
		t.Fatalf("first exit after a refit: replanned %v, refit %v; want a plan without a refit", got.Replanned, sp.calls[len(sp.calls)-1].Refit)
	}
}

func TestDemandOutsideTheBandAtEachIntervalReplanCountsAsExitsAndRefits(t *testing.T) {
	// A flat plan wakes the worker only at the replan interval: demand
	// that stays below the band is seen there or nowhere.
	sp := &scriptedPlanner{desired: steadyInts(30, 5), lower: steady(30, 30), upper: steady(30, 60)}
	s := settings()
	s.ReplanInterval = 10 * time.Second
	s.WrongAfter, s.WrongFor = 3, 20*time.Second
	d, err := NewDecider(s, NewDelayEstimator(0, true), sp.plan)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	d.Decide(ctx, Input{Now: at(0), Current: 5, Running: 5, Recent: steady(60, 45)})
	low := steady(60, 12)
	for i, want := range []struct {
		why   string
		refit bool
	}{{"below", false}, {"below", false}, {"below", true}} {
		got := d.Decide(ctx, Input{Now: at(10 * (i + 1)), Current: 5, Running: 5, Recent: low})
		last := sp.calls[len(sp.calls)-1]
		if !got.Replanned || !strings.Contains(got.Why, want.why) || last.Refit != want.refit {
			t.Fatalf("interval replan %d with demand below the band: replanned %v (%q), refit %v; want %q, refit %v",
				i+1, got.Replanned, got.Why, last.Refit, want.why, want.refit)
		}
	}
}

func TestTheFloorCarriesANewPolicyUntilTheModelCanPlan(t *testing.T) {
	sp := &scriptedPlanner{err: errors.New("history too short to forecast")}
	s := settings()
	s.Capacity = 100
	d, err := NewDecider(s, nil, sp.plan)
	if err != nil {
		t.Fatal(err)
	}
	// First evaluation, one sample: a job burning 26 cores' worth of its
	// allocation is scaled at once.
	got := d.Decide(context.Background(), Input{Now: at(0), Current: 1, Running: 1, Recent: []float64{2600}})
	if got.Count != 20 || got.PlanErr == nil {
		t.Errorf("count %d (plan error %v), want the max 20 from the floor with the plan's error reported", got.Count, got.PlanErr)
	}
	// An idle group scales in to its minimum.
	got = d.Decide(context.Background(), Input{Now: at(5), Current: 3, Running: 3, Recent: steady(60, 0)})
	if got.Count != 1 {
		t.Errorf("idle group: count %d, want the min 1", got.Count)
	}
}

func TestAPolicyWithNothingObservedOrPlannedKeepsTheGroupsCount(t *testing.T) {
	sp := &scriptedPlanner{err: errors.New("history too short to forecast")}
	d, err := NewDecider(settings(), nil, sp.plan)
	if err != nil {
		t.Fatal(err)
	}
	// A policy attached to a group running 7 replicas, before its first
	// sample: no evidence for any other count.
	got := d.Decide(context.Background(), Input{Now: at(0), Current: 7, Running: 7})
	if got.Count != 7 || got.Source != "hold" {
		t.Errorf("count %d from %s, want the current 7 held", got.Count, got.Source)
	}
	// Still within the bounds: a group above its max is brought down.
	got = d.Decide(context.Background(), Input{Now: at(1), Current: 25, Running: 25})
	if got.Count != 20 {
		t.Errorf("count %d, want the max 20", got.Count)
	}
}

// poissonish is n seconds scattering around level by about sd: a fixed,
// zero-mean sequence, so the test is deterministic.
func poissonish(n int, level, sd float64) []float64 {
	pattern := []float64{1, -1, 1.5, -1.5, 0.5, -0.5, 1, -1}
	out := make([]float64, n)
	for i := range out {
		out[i] = level + sd*pattern[i%len(pattern)]
	}
	return out
}

func TestColdCoversTheRecentLevelAndTheScatterOfItsSeconds(t *testing.T) {
	ramp := make([]float64, 60)
	for i := range ramp {
		ramp[i] = 20 + float64(i)
	}
	noise := Noise{Margin: 3, Quantile: 1.28, Cap: 30}
	cases := []struct {
		name   string
		recent []float64
		noise  Noise
		want   int
	}{
		{"no history is no count", nil, noise, 0},
		{"an idle group needs nothing", steady(60, 0), noise, 0},
		{"a steady level needs just its level", steady(60, 40), noise, 4},
		// sd of the pattern is about 1.09 x 5: 40 + 3 x 5.4 = 56.4.
		{"scattered seconds add noise_margin deviations", poissonish(60, 40, 5), noise, 6},
		{"no margin adds nothing", poissonish(60, 40, 5), Noise{}, 4},
		// sd about 27: 3 sd = 82 is capped at 1.28 sd + 30 = 65.
		{"the headroom is capped above the quantile", poissonish(60, 100, 25), noise, 17},
		{"the headroom is not capped without a cap", poissonish(60, 100, 25), Noise{Margin: 3, Quantile: 1.28}, 19},
		// A quarter of 100 is 25/s, under 1.28 sd + 30: still 17.
		{"a share of the level under the cap changes nothing", poissonish(60, 100, 25), Noise{Margin: 3, Quantile: 1.28, Cap: 30, CapShare: 0.25}, 17},
		// Three quarters of 100 are 75/s, past 1.28 sd + 30 (64.5) and
		// under 3 sd (81): 175.
		{"a share of the level over the cap lifts it to the share", poissonish(60, 100, 25), Noise{Margin: 3, Quantile: 1.28, Cap: 30, CapShare: 0.75}, 18},
		// A straight ramp has no scatter around its line: 79 now.
		{"a ramp is not scatter", ramp, noise, 5},
	}
	for _, c := range cases {
		if got := Cold(c.recent, 10, 0, c.noise); got != c.want {
			t.Errorf("%s: Cold = %d, want %d", c.name, got, c.want)
		}
	}
}

func TestBeforeItsFirstPlanAPolicyKeepsThePlansHeadroomForNoisySeconds(t *testing.T) {
	sp := &scriptedPlanner{err: errors.New("history too short to forecast")}
	s := settings()
	s.Noise = Noise{Margin: 3, Quantile: 1.28, Cap: 30}
	d, err := NewDecider(s, nil, sp.plan)
	if err != nil {
		t.Fatal(err)
	}
	recent := poissonish(60, 40, 5)
	floorOnly := Floor(recent, s.Capacity, s.FloorMargin, 0)
	got := d.Decide(context.Background(), Input{Now: at(0), Current: 4, Running: 4, Recent: recent})
	if got.Count != 6 || got.Count <= floorOnly || got.Source != "floor" {
		t.Errorf("count %d from %s, want 6 from the floor with noise headroom (the floor alone is %d)", got.Count, got.Source, floorOnly)
	}
	// Once a plan exists the plan keeps its own headroom: the floor is the
	// level's again.
	sp.err, sp.desired = nil, []int{5, 5, 5}
	got = d.Decide(context.Background(), Input{Now: at(20), Current: 6, Running: 6, Recent: recent})
	if got.Floor != floorOnly {
		t.Errorf("floor with a plan %d, want the level's %d", got.Floor, floorOnly)
	}
}

func TestAFailedReplanServesTheCachedPlanAsTheSeedsCache(t *testing.T) {
	// Second 4 of a 3-second plan: the seed's cache reads 4 % 3 = 1.
	got := decideAtFourAfterAFailedReplan(t, []int{2, 4, 6}, 0)
	if got.PlanErr == nil || got.Source != "cached" || got.Count != 4 {
		t.Errorf("count %d from %s (err %v), want 4 from the cached plan", got.Count, got.Source, got.PlanErr)
	}
}

func TestAFailedReplanLoopsOverTheCachedPlansFirstCacheSizeSeconds(t *testing.T) {
	// A 6-second plan with a 3-second cache: at second 4 the seed's cache
	// reads 4 % 3 = 1, the plan's second value, not its fifth.
	got := decideAtFourAfterAFailedReplan(t, []int{2, 4, 6, 8, 10, 12}, 3)
	if got.PlanErr == nil || got.Source != "cached" || got.Count != 4 {
		t.Errorf("count %d from %s (err %v), want 4: desired[4 %% 3] of the cached plan", got.Count, got.Source, got.PlanErr)
	}
}

// decideAtFourAfterAFailedReplan plans desired at second 0 (re-planning
// every 3 s, with cacheSize unless 0), then fails the planner and decides
// at second 4.
func decideAtFourAfterAFailedReplan(t *testing.T, desired []int, cacheSize int) Decision {
	t.Helper()
	sp := &scriptedPlanner{desired: desired}
	s := settings()
	s.FloorMargin = 0
	s.ReplanInterval = 3 * time.Second
	if cacheSize > 0 {
		s.CacheSize = cacheSize
	}
	d, err := NewDecider(s, NewDelayEstimator(0, true), sp.plan)
	if err != nil {
		t.Fatal(err)
	}
	d.Decide(context.Background(), Input{Now: at(0), Current: 2, Running: 2})
	sp.err = errors.New("solver down")
	return d.Decide(context.Background(), Input{Now: at(4), Current: 2, Running: 2})
}

func TestAScaleDownTheHoldWouldUndoIsNotTaken(t *testing.T) {
	// The plan dips to 2 for three seconds, then wants 6 again: a replica
	// removed now would be needed back before a new one could serve.
	sp := &scriptedPlanner{desired: []int{6, 2, 2, 2, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6}}
	s := settings()
	s.FloorMargin = 0
	s.ReplanInterval = time.Minute
	d, err := NewDecider(s, NewDelayEstimator(5*time.Second, true), sp.plan)
	if err != nil {
		t.Fatal(err)
	}
	d.Decide(context.Background(), Input{Now: at(0), Current: 6, Running: 6})
	if got := d.Decide(context.Background(), Input{Now: at(1), Current: 6, Running: 6}); got.Count != 6 {
		t.Errorf("count %d during a dip shorter than the startup delay, want to keep 6", got.Count)
	}
	// The same dip with no startup delay and no disruption is taken.
	d2, err := NewDecider(s, NewDelayEstimator(0, true), sp.plan)
	if err != nil {
		t.Fatal(err)
	}
	d2.Decide(context.Background(), Input{Now: at(0), Current: 6, Running: 6})
	if got := d2.Decide(context.Background(), Input{Now: at(1), Current: 6, Running: 6}); got.Count != 2 {
		t.Errorf("count %d with instant replicas, want the plan's 2", got.Count)
	}
}

func TestAScaleDownThePlanUndoesWithinTheFlapWindowIsNotTaken(t *testing.T) {
	// The plan dips from 8 to 7 for 15 s, then asks for 9 (a burst it
	// forecasts): with instant replicas no other hold keeps the eighth
	// replica, and taking it away for 15 s is a flap.
	dip := slices.Concat(slices.Repeat([]int{8}, 5), slices.Repeat([]int{7}, 15), slices.Repeat([]int{9}, 40))
	fall := slices.Concat(slices.Repeat([]int{8}, 5), slices.Repeat([]int{6}, 55))
	for _, c := range []struct {
		name       string
		desired    []int
		flapWindow time.Duration
		want       int
	}{
		{"a 30 s flap window keeps it", dip, 30 * time.Second, 8},
		{"a 10 s flap window does not see the burst", dip, 10 * time.Second, 7},
		{"no flap window", dip, 0, 7},
		{"a fall the plan does not undo is taken at once", fall, 30 * time.Second, 6},
	} {
		t.Run(c.name, func(t *testing.T) {
			sp := &scriptedPlanner{desired: c.desired}
			s := settings()
			s.FloorMargin = 0
			s.ReplanInterval = time.Minute
			s.FlapWindow = c.flapWindow
			d, err := NewDecider(s, NewDelayEstimator(0, true), sp.plan)
			if err != nil {
				t.Fatal(err)
			}
			d.Decide(context.Background(), Input{Now: at(0), Current: 8, Running: 8})
			if got := d.Decide(context.Background(), Input{Now: at(6), Current: 8, Running: 8}); got.Count != c.want {
				t.Errorf("count %d at second 6, want %d", got.Count, c.want)
			}
			if h := sp.calls[0].Horizon; h < int(c.flapWindow.Seconds()) {
				t.Errorf("plan horizon %d s, want it to cover the flap window %s", h, c.flapWindow)
			}
		})
	}
}

func TestAScaleDownHeldByTheFlapWindowIsTakenTheSecondThePlansRiseLeavesIt(t *testing.T) {
	// The plan dips to 6, asks for 8 again at second 25 for 5 s, then
	// falls to 6 for good. The flap window holds 8 until the rise is
	// behind it (second 30); the worker must wake then, not at the next
	// re-plan a minute later.
	desired := slices.Concat(slices.Repeat([]int{8}, 5), slices.Repeat([]int{6}, 20), slices.Repeat([]int{8}, 5), slices.Repeat([]int{6}, 30))
	sp := &scriptedPlanner{desired: desired}
	s := settings()
	s.FloorMargin = 0
	s.ReplanInterval = time.Minute
	s.FlapWindow = 30 * time.Second
	d, err := NewDecider(s, NewDelayEstimator(0, true), sp.plan)
	if err != nil {
		t.Fatal(err)
	}
	d.Decide(context.Background(), Input{Now: at(0), Current: 8, Running: 8})
	got := d.Decide(context.Background(), Input{Now: at(6), Current: 8, Running: 8})
	if got.Count != 8 || !got.NextWake.Equal(at(30)) {
		t.Fatalf("second 6: count %d, next wake %s; want 8 held and a wake at second 30", got.Count, got.NextWake.Sub(t0))
	}
	if got := d.Decide(context.Background(), Input{Now: at(30), Current: 8, Running: 8}); got.Count != 6 {
		t.Errorf("second 30: count %d, want the plan's 6 once its rise is behind the window", got.Count)
	}
}

func TestTheWorkerWakesAtThePlansNextChange(t *testing.T) {
	sp := &scriptedPlanner{desired: []int{3, 3, 3, 3, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7}}
	s := settings()
	s.FloorMargin = 0
	d, err := NewDecider(s, NewDelayEstimator(0, true), sp.plan)
	if err != nil {
		t.Fatal(err)
	}
	got := d.Decide(context.Background(), Input{Now: at(0), Current: 3, Running: 3})
	if !got.NextWake.Equal(at(4)) {
		t.Errorf("next wake %s, want the change at second 4", got.NextWake.Sub(t0))
	}
	got = d.Decide(context.Background(), Input{Now: at(4), Current: 3, Running: 3})
	if got.Count != 7 || !got.NextWake.Equal(at(5)) {
		t.Errorf("at the change: count %d, next wake %s; want 7 and a check a second later while replicas start", got.Count, got.NextWake.Sub(t0))
	}
}

func TestTheStartupDelayIsMeasuredFromTheGroupsOwnScaleUps(t *testing.T) {
	e := NewDelayEstimator(0, false)
	for i, took := range []int{20, 40, 30} {
		start := 1000 * i
		e.Requested(at(start), 2, 4)
		for s := start; s <= start+took; s++ {
			running := 2
			if s == start+took {
				running = 4
			}
			e.Observe(at(s), 4, running)
		}
	}
	if got := e.Delay(); got != 30*time.Second {
		t.Errorf("delay %s after scale-ups of 20, 40 and 30 s, want their median 30s", got)
	}
	// A scale-up that was never applied is not measured.
	e.Requested(at(5000), 2, 9)
	e.Observe(at(5001), 2, 2)
	e.Observe(at(6000), 9, 9)
	if e.Samples() != 3 {
		t.Errorf("%d samples, want 3: an unapplied scale-up measured nothing", e.Samples())
	}
	// A policy's own startup_delay is never overridden.
	f := NewDelayEstimator(45*time.Second, true)
	f.Requested(at(0), 1, 2)
	f.Observe(at(3), 2, 2)
	if f.Delay() != 45*time.Second {
		t.Errorf("fixed delay moved to %s", f.Delay())
	}
}

func TestARiseIsAskedForInOneActionAStartupDelayAhead(t *testing.T) {
	// The plan ramps 2 -> 6 over seconds 10..13. Nomad blocks a change
	// while the previous one deploys (about a startup delay), so every
	// count served covers the plan until the next change can land: with an
	// 8 s startup delay and 2 s of disruption, second 0 already asks for
	// what second 10 needs, and the whole rise is asked for by second 3.
	desired := []int{2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 3, 4, 5, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6}
	sp := &scriptedPlanner{desired: desired}
	s := settings()
	s.FloorMargin = 0
	s.ReplanInterval = time.Minute
	s.Disruption = 2 * time.Second
	d, err := NewDecider(s, NewDelayEstimator(8*time.Second, true), sp.plan)
	if err != nil {
		t.Fatal(err)
	}
	got := d.Decide(context.Background(), Input{Now: at(0), Current: 2, Running: 2})
	if got.Count != 3 || !got.NextWake.Equal(at(1)) {
		t.Fatalf("second 0: count %d, next wake %s; want 3 and a wake when the window sees more (second 1)", got.Count, got.NextWake.Sub(t0))
	}
	counts := []int{}
	for sec := 1; sec <= 5; sec++ {
		counts = append(counts, d.Decide(context.Background(), Input{Now: at(sec), Current: 2, Running: 2}).Count)
	}
	if want := []int{4, 5, 6, 6, 6}; !slices.Equal(counts, want) {
		t.Errorf("seconds 1..5 served %v, want %v: each second's count covers the plan 10 s ahead", counts, want)
	}
}

func TestAScaleUpCoversThePlanUntilItsDeploymentLetsTheNextChangeThrough(t *testing.T) {
	// The plan wants 2 until second 13, 4 from 14. A replica starts in 8 s
	// and a change disrupts for 2 s more, so a count served looks 10 s
	// ahead; but a scale-up's Nomad deployment blocks the next change
	// until its replicas have also run healthy for the group's
	// min_healthy_time, and the scale-up must cover that long.
	desired := slices.Concat(slices.Repeat([]int{2}, 14), slices.Repeat([]int{4}, 40))
	cases := []struct {
		name       string
		current    int
		minHealthy time.Duration
		want       int
	}{
		{"a scale-up with no deployment looks a hold ahead", 1, 0, 2},
		{"a scale-up looks as far as its deployment blocks the next change", 1, 6 * time.Second, 4},
		{"a deployment shorter than the disruption changes nothing", 1, time.Second, 2},
		{"a scale-down is not held up by a scale-up's deployment", 5, 6 * time.Second, 2},
	}
	for _, c := range cases {
		sp := &scriptedPlanner{desired: desired}
		s := settings()
		s.FloorMargin = 0
		s.ReplanInterval = time.Minute
		s.Disruption = 2 * time.Second
		d, err := NewDecider(s, NewDelayEstimator(8*time.Second, true), sp.plan)
		if err != nil {
			t.Fatal(err)
		}
		got := d.Decide(context.Background(), Input{Now: at(0), Current: c.current, Running: c.current, MinHealthy: c.minHealthy})
		if got.Count != c.want {
			t.Errorf("%s: count %d, want %d", c.name, got.Count, c.want)
		}
	}
	// The plan is long enough for the longest window a count reads.
	sp := &scriptedPlanner{desired: desired}
	s := settings()
	s.ReplanInterval = 10 * time.Second
	s.Disruption = 2 * time.Second
	d, err := NewDecider(s, NewDelayEstimator(8*time.Second, true), sp.plan)
	if err != nil {
		t.Fatal(err)
	}
	d.Decide(context.Background(), Input{Now: at(0), Current: 1, Running: 1, MinHealthy: time.Minute})
	if h := sp.calls[0].Horizon; h < 10+8+60 {
		t.Errorf("horizon %d with a 60 s min_healthy_time, want at least replan 10 + startup 8 + 60", h)
	}
}

func TestHysteresisScalesDownOnlyOnceDemandIsClearOfTheLowerCountsCapacity(t *testing.T) {
	cases := []struct {
		name             string
		planned, current int
		peak             float64
		margin           float64
		want             int
	}{
		{"demand at the edge of 8 replicas keeps 9", 8, 9, 80, 0.5, 9},
		{"demand half a replica clear of 8 scales down to 8", 8, 9, 75, 0.5, 8},
		{"demand between the edges stops part way", 6, 9, 72, 0.5, 8},
		{"never above the current count", 2, 3, 95, 0.5, 3},
		{"a rise is not touched", 12, 9, 200, 0.5, 12},
		{"a zero margin is the plan's count", 8, 9, 80, 0, 8},
		{"no demand at all may scale to zero", 0, 4, 0, 0.5, 0},
		{"at a small level the margin is a tenth of the demand: 9.5/s keeps 2", 1, 2, 9.5, 0.5, 2},
		{"at a small level the margin is a tenth of the demand: 8/s scales to 1", 1, 2, 8, 0.5, 1},
	}
	for _, c := range cases {
		if got := Hysteresis(c.planned, c.current, c.peak, 10, c.margin); got != c.want {
			t.Errorf("%s: Hysteresis(%d, %d, %v, 10, %v) = %d, want %d", c.name, c.planned, c.current, c.peak, c.margin, got, c.want)
		}
	}
}

// demandPlanner plans a fixed count for a fixed demand, as the planner
// does: the demand it was solved for travels with the plan.
type demandPlanner struct {
	count  int
	demand float64
}

func (p *demandPlanner) plan(_ context.Context, r PlanRequest) (optimize.Plan, error) {
	n := r.Horizon
	desired, demand := make([]int, n), make([]float64, n)
	for i := range desired {
		desired[i], demand[i] = p.count, p.demand
	}
	return optimize.Plan{Start: r.Now, Desired: desired, Demand: demand, MinReplicas: 0, MaxReplicas: 100}, nil
}

func TestReplansJitteringAroundAReplicasEdgeDoNotFlap(t *testing.T) {
	// Successive plans see demand just under and just over 80 requests/s:
	// 8 replicas, then 9, then 8... Without hysteresis each re-plan takes
	// a replica away and asks for it back ten seconds later.
	for _, tc := range []struct {
		margin float64
		flaps  bool
	}{{0, true}, {0.5, false}} {
		s := settings()
		s.FloorMargin = 0
		s.DownHysteresis = tc.margin
		p := &demandPlanner{}
		d, err := NewDecider(s, NewDelayEstimator(0, true), p.plan)
		if err != nil {
			t.Fatal(err)
		}
		current, downs, ups := 9, 0, 0
		for i := 0; i < 12; i++ {
			if i%2 == 0 {
				p.count, p.demand = 8, 79.5
			} else {
				p.count, p.demand = 9, 80.5
			}
			got := d.Decide(context.Background(), Input{Now: at(10 * i), Current: current, Running: current})
			if !got.Replanned {
				t.Fatalf("margin %v: second %d was not re-planned", tc.margin, 10*i)
			}
			switch {
			case got.Count < current:
				downs++
			case got.Count > current:
				ups++
			}
			current = got.Count
		}
		if flapped := downs > 0 && ups > 0; flapped != tc.flaps {
			t.Errorf("margin %v: %d scale-downs and %d scale-ups, want flapping %v", tc.margin, downs, ups, tc.flaps)
		}
	}
	// Demand that really falls is followed.
	s := settings()
	s.FloorMargin = 0
	p := &demandPlanner{count: 6, demand: 55}
	d, err := NewDecider(s, NewDelayEstimator(0, true), p.plan)
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Decide(context.Background(), Input{Now: at(0), Current: 9, Running: 9}); got.Count != 6 {
		t.Errorf("demand of 55/s with 9 replicas: count %d, want 6", got.Count)
	}
}

func TestAScaleDownWindowHoldsTheHighestCountDecidedWithinItAndWakesWhenItPasses(t *testing.T) {
	s := settings()
	s.FloorMargin = 0
	s.DownHysteresis = 0
	s.DownWindow = 30 * time.Second
	ints := func(v []float64) []int {
		out := make([]int, len(v))
		for i, x := range v {
			out[i] = int(x)
		}
		return out
	}
	sp := &scriptedPlanner{desired: ints(steady(120, 7))}
	d, err := NewDecider(s, NewDelayEstimator(0, true), sp.plan)
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Decide(context.Background(), Input{Now: at(0), Current: 7, Running: 7}); got.Count != 7 {
		t.Fatalf("count %d, want the plan's 7", got.Count)
	}
	sp.desired = ints(steady(120, 4))
	got := d.Decide(context.Background(), Input{Now: at(10), Current: 7, Running: 7})
	if got.Count != 7 || got.Source != "stabilized" {
		t.Errorf("10 s after deciding 7: count %d (%s), want 7 held by the window", got.Count, got.Source)
	}
	if got.NextWake.After(at(30)) {
		t.Errorf("next wake %v, want no later than when the 7 leaves the window (%v)", got.NextWake, at(30))
	}
	if got := d.Decide(context.Background(), Input{Now: at(20), Current: 7, Running: 7}); got.Count != 7 || !got.NextWake.Equal(at(30)) {
		t.Errorf("20 s after deciding 7: count %d, next wake %v; want 7 held until %v", got.Count, got.NextWake, at(30))
	}
	if got := d.Decide(context.Background(), Input{Now: at(30), Current: 7, Running: 7}); got.Count != 4 {
		t.Errorf("once the window passed: count %d, want the plan's 4", got.Count)
	}
	// A rise is never held.
	sp.desired = ints(steady(120, 9))
	if got := d.Decide(context.Background(), Input{Now: at(40), Current: 4, Running: 4}); got.Count != 9 {
		t.Errorf("rise: count %d, want 9 at once", got.Count)
	}
}

func TestAStepUpTakesTheFloorToTheNewLevelInTwoSecondsAndNoiseDoesNot(t *testing.T) {
	noisy := func(level float64, n int, seed uint64) []float64 {
		rng := rand.New(rand.NewPCG(seed, 1))
		out := make([]float64, n)
		for i := range out {
			out[i] = level + 5*rng.NormFloat64()
		}
		return out
	}
	cases := []struct {
		name   string
		recent []float64
		lead   float64
		want   int
	}{
		// 58 s around 45, then 2 s at 140: the line through the window
		// would reach about 80 thirty seconds on; the step is at 140.
		{"two seconds of a step up are the new level", slices.Concat(noisy(45, 58, 1), []float64{141, 139}), 30, 14},
		{"one second is not a step: the trend floor alone", slices.Concat(noisy(45, 59, 1), []float64{140}), 30, 6},
		{"without a lead (no trend floor) a step waits for the mean", slices.Concat(noisy(45, 58, 1), []float64{141, 139}), 0, 5},
		{"a step down is not followed down", slices.Concat(noisy(45, 58, 1), []float64{5, 5}), 30, 5},
	}
	for _, c := range cases {
		if got := Floor(c.recent, 10, 1, c.lead); got != c.want {
			t.Errorf("%s: Floor = %d, want %d", c.name, got, c.want)
		}
	}
	// An hour of noise around a steady level: no pair of seconds is taken
	// for a step.
	h := noisy(45, 3600, 7)
	for end := 60; end <= len(h); end++ {
		if lv := shiftLevel(h[end-60 : end]); lv != 0 {
			t.Fatalf("second %d: steady noise taken for a step to %.1f", end, lv)
		}
	}
}

// steadyInts is n copies of v.
func steadyInts(n, v int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = v
	}
	return out
}

func TestAPlanMadeLateIsFollowedByTheNextAtItsPhaseNotAnIntervalLater(t *testing.T) {
	sp := &scriptedPlanner{desired: steadyInts(60, 3)}
	s := settings()
	s.ReplanInterval = 10 * time.Second
	d, err := NewDecider(s, NewDelayEstimator(0, true), sp.plan)
	if err != nil {
		t.Fatal(err)
	}
	// Plans at 0 and 10; then the worker is busy and comes back at 27,
	// 17 s late; the next plan falls due at 30 as if it had not been.
	for _, c := range []struct {
		second     int
		replanned  bool
		nextWakeAt int
	}{{0, true, 10}, {10, true, 20}, {27, true, 30}, {29, false, 30}, {30, true, 40}} {
		got := d.Decide(context.Background(), Input{Now: at(c.second), Current: 3, Running: 3})
		if got.Replanned != c.replanned {
			t.Errorf("second %d: replanned %v, want %v", c.second, got.Replanned, c.replanned)
		}
		if !got.NextWake.Equal(at(c.nextWakeAt)) {
			t.Errorf("second %d: next wake at %s, want at second %d", c.second, got.NextWake.Sub(t0), c.nextWakeAt)
		}
	}
}

func TestTheSecondPlanComesReplanPhaseEarlyAndLaterOnesKeepItsPhase(t *testing.T) {
	for _, c := range []struct {
		phase time.Duration
		want  []int // the seconds plans are made at, waking when told to
	}{
		{0, []int{0, 10, 20, 30}},
		{3 * time.Second, []int{0, 7, 17, 27, 37}},
		// Sooner than MinReplanGap (2 s) after the first: clamped to it,
		// every policy with a phase past 8 s would plan 2 s after its
		// first plan, together again.
		{9 * time.Second, []int{0, 1, 11, 21, 31}},
	} {
		sp := &scriptedPlanner{desired: steadyInts(60, 3)}
		s := settings()
		s.ReplanInterval, s.ReplanPhase = 10*time.Second, c.phase
		d, err := NewDecider(s, NewDelayEstimator(0, true), sp.plan)
		if err != nil {
			t.Fatal(err)
		}
		for now := at(0); now.Before(at(c.want[len(c.want)-1] + 1)); {
			now = d.Decide(context.Background(), Input{Now: now, Current: 3, Running: 3}).NextWake
		}
		var got []int
		for _, call := range sp.calls {
			got = append(got, int(call.Now.Sub(t0)/time.Second))
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("phase %s: plans at seconds %v, want %v", c.phase, got, c.want)
		}
	}
}

func TestAPlanTheBandCalledForEarlyDoesNotMoveTheIntervalsNextPlan(t *testing.T) {
	sp := &scriptedPlanner{desired: steadyInts(60, 5), lower: steady(60, 30), upper: steady(60, 60)}
	s := settings()
	s.ReplanInterval, s.ReplanPhase, s.MinReplanGap = 10*time.Second, 3*time.Second, 2*time.Second
	d, err := NewDecider(s, NewDelayEstimator(0, true), sp.plan)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	inBand, surge := steady(60, 45), append(steady(55, 45), steady(5, 200)...)
	// Plans at 0 and 7 (the phase); demand leaves the band at 9 and 12,
	// and the interval's plans still come at 17 and 27, not 10 s after
	// the last exit.
	for _, c := range []struct {
		second    int
		recent    []float64
		replanned bool
	}{{0, inBand, true}, {7, inBand, true}, {9, surge, true}, {12, surge, true}, {16, inBand, false}, {17, inBand, true}, {22, inBand, false}, {27, inBand, true}} {
		got := d.Decide(ctx, Input{Now: at(c.second), Current: 5, Running: 5, Recent: c.recent})
		if got.Replanned != c.replanned {
			t.Errorf("second %d: replanned %v (%s), want %v", c.second, got.Replanned, got.Why, c.replanned)
		}
	}
}

func TestPoliciesThatLeaveTheirBandsInTheSameSecondReplanAtTheirOwnPhasesAfterwards(t *testing.T) {
	// A hundred policies on one surge (every service behind one front
	// door): their band exits come in the same second, but their interval
	// plans must not, or a replica re-plans all of them in one second of
	// every interval from then on.
	const n = 100
	ctx := context.Background()
	perSecond := map[int]int{}
	for i := range n {
		sp := &scriptedPlanner{desired: steadyInts(60, 5), lower: steady(60, 30), upper: steady(60, 60)}
		s := settings()
		s.ReplanInterval = 10 * time.Second
		s.ReplanPhase = time.Duration(i) * s.ReplanInterval / n
		d, err := NewDecider(s, NewDelayEstimator(0, true), sp.plan)
		if err != nil {
			t.Fatal(err)
		}
		for now := at(0); now.Before(at(80)); {
			recent := steady(60, 45)
			if now.Equal(at(30)) {
				recent = append(steady(55, 45), steady(5, 200)...)
			}
			next := d.Decide(ctx, Input{Now: now, Current: 5, Running: 5, Recent: recent}).NextWake
			// Every policy sees the surge: each wakes for it at 30.
			if now.Before(at(30)) && next.After(at(30)) {
				next = at(30)
			}
			now = next
		}
		for _, call := range sp.calls {
			if sec := int(call.Now.Sub(t0) / time.Second); sec > 40 {
				perSecond[sec]++
			}
		}
	}
	most, total := 0, 0
	for _, c := range perSecond {
		most, total = max(most, c), total+c
	}
	if total < 3*n {
		t.Fatalf("%d plans in the 39 s after the surge from %d policies re-planning every 10 s", total, n)
	}
	// 10 a second if even; all 100 in one second if an exit moved the phase.
	if most > 15 {
		t.Errorf("up to %d of %d policies re-planned in one second after a surge they all saw, want their phases kept (at most 15)", most, n)
	}
}

func TestAReplanPhaseOutsideTheIntervalIsRefused(t *testing.T) {
	for _, phase := range []time.Duration{-time.Second, 10 * time.Second} {
		s := settings()
		s.ReplanInterval, s.ReplanPhase = 10*time.Second, phase
		if _, err := NewDecider(s, nil, (&scriptedPlanner{}).plan); err == nil {
			t.Errorf("phase %s of a 10s interval accepted", phase)
		}
	}
}
