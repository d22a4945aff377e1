package main

import (
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

var nan = math.NaN()

func TestUnmetRequestsSumsOnlyDemandAboveCapacity(t *testing.T) {
	for _, tc := range []struct {
		name            string
		demand, running []float64
		from            int
		seconds         int
		offered, unmet  float64
		replicaSeconds  float64
	}{
		{"all served", []float64{5, 10, 15}, []float64{1, 1, 2}, 0, 3, 30, 0, 4},
		{"short by 5 then 25", []float64{15, 45}, []float64{1, 2}, 0, 2, 60, 30, 3},
		{"unknown seconds skipped", []float64{nan, 30, 30}, []float64{1, nan, 1}, 0, 1, 30, 20, 1},
		{"from skips the start", []float64{100, 30, 30}, []float64{1, 1, 3}, 1, 2, 60, 20, 4},
		{"zero running serves nothing", []float64{7}, []float64{0}, 0, 1, 7, 7, 0},
	} {
		s, o, u, r := unmetRequests(tc.demand, tc.running, 10, tc.from)
		if s != tc.seconds || o != tc.offered || u != tc.unmet || r != tc.replicaSeconds {
			t.Errorf("%s: got seconds %d offered %v unmet %v replica-s %v, want %d %v %v %v", tc.name, s, o, u, r, tc.seconds, tc.offered, tc.unmet, tc.replicaSeconds)
		}
	}
}

// steps builds a per-second desired series from (second, count) changes.
func steps(n int, changes ...[2]int) []float64 {
	out := make([]float64, n)
	v := math.NaN()
	for i := range out {
		for _, c := range changes {
			if c[0] == i {
				v = float64(c[1])
			}
		}
		out[i] = v
	}
	return out
}

func TestScalingActionsAndFlaps(t *testing.T) {
	for _, tc := range []struct {
		name           string
		desired        []float64
		from           int
		actions, flaps int
	}{
		{"steady", steps(100, [2]int{0, 3}), 0, 0, 0},
		{"up then down: no flap", steps(100, [2]int{0, 1}, [2]int{10, 3}, [2]int{50, 2}), 0, 2, 0},
		{"down undone after 20s", steps(100, [2]int{0, 3}, [2]int{10, 2}, [2]int{30, 3}), 0, 2, 1},
		{"down undone exactly at the window", steps(100, [2]int{0, 3}, [2]int{10, 2}, [2]int{40, 3}), 0, 2, 1},
		{"down undone after 31s", steps(100, [2]int{0, 3}, [2]int{10, 2}, [2]int{41, 3}), 0, 2, 0},
		{"two downs, one up: both undone", steps(100, [2]int{0, 4}, [2]int{10, 3}, [2]int{20, 2}, [2]int{25, 4}), 0, 3, 2},
		{"a later down does not flap an old one", steps(200, [2]int{0, 4}, [2]int{10, 3}, [2]int{100, 2}, [2]int{110, 3}), 0, 3, 1},
		{"gaps carry the last count", []float64{2, nan, nan, 2, 3}, 0, 1, 0},
		{"from drops the early action and flap", steps(100, [2]int{0, 3}, [2]int{10, 2}, [2]int{20, 3}, [2]int{60, 4}), 30, 1, 0},
		{"leading unknown is no action", []float64{nan, nan, 2, 2}, 0, 0, 0},
	} {
		a, f := scalingActions(tc.desired, tc.from, 30)
		if a != tc.actions || f != tc.flaps {
			t.Errorf("%s: got %d actions %d flaps, want %d %d", tc.name, a, f, tc.actions, tc.flaps)
		}
	}
}

func TestRampChecksCapacityBeforeDemand(t *testing.T) {
	for _, tc := range []struct {
		name            string
		demand, running []float64
		want            []rampCheck
	}{
		{
			name:    "capacity up two seconds early",
			demand:  []float64{5, 8, 12, 14},
			running: []float64{1, 2, 2, 2},
			want:    []rampCheck{{Replicas: 1, At: 2, OnTime: true, Lead: 2}},
		},
		{
			name:    "capacity three seconds late",
			demand:  []float64{5, 12, 13, 14, 14},
			running: []float64{1, 1, 1, 1, 2},
			want:    []rampCheck{{Replicas: 1, At: 1, OnTime: false, Lead: 3}},
		},
		{
			name:    "demand falls back before capacity came: missed",
			demand:  []float64{5, 12, 8, 5},
			running: []float64{1, 1, 1, 2},
			want:    []rampCheck{{Replicas: 1, At: 1, OnTime: false, Lead: -1}},
		},
		{
			name:    "noise around a level is one ramp",
			demand:  []float64{8, 11, 9, 11, 9.5, 12},
			running: []float64{2, 2, 2, 2, 2, 2},
			want:    []rampCheck{{Replicas: 1, At: 1, OnTime: true, Lead: 2}},
		},
		{
			name:    "a dip below the hysteresis re-arms the level",
			demand:  []float64{8, 11, 4, 11},
			running: []float64{1, 2, 2, 1},
			want:    []rampCheck{{Replicas: 1, At: 1, OnTime: true, Lead: 1}, {Replicas: 1, At: 3, OnTime: false, Lead: -1}},
		},
		{
			name:    "one jump crosses several levels; above max is no ramp",
			demand:  []float64{5, 35, 35},
			running: []float64{4, 4, 4},
			want: []rampCheck{
				{Replicas: 1, At: 1, OnTime: true, Lead: 2},
				{Replicas: 2, At: 1, OnTime: true, Lead: 2},
				{Replicas: 3, At: 1, OnTime: true, Lead: 2},
			},
		},
		{
			name:    "starting above a level is no ramp",
			demand:  []float64{25, 26},
			running: []float64{1, 1},
			want:    nil,
		},
	} {
		got := rampChecks(tc.demand, tc.running, 10, 4)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func TestFiguresFromLeavesOutTheWarmup(t *testing.T) {
	s := benchSeries{
		Demand:  []float64{30, 30, 4, 15, 15},
		Running: []float64{1, 1, 1, 2, 2},
		Desired: []float64{1, 1, 2, 2, 2},
	}
	o := compareOptions{Capacity: 10, Max: 12, FlapWindow: 30}
	all := figuresFrom(s, 0, o)
	if all.Unmet != 40 || all.Offered != 94 || all.ReplicaSeconds != 7 || all.Actions != 1 || len(all.Ramps) != 1 || !all.Ramps[0].OnTime {
		t.Errorf("whole run: %+v", all)
	}
	late := figuresFrom(s, 2, o)
	if late.Unmet != 0 || late.ReplicaSeconds != 5 || late.Actions != 1 || len(late.Ramps) != 1 {
		t.Errorf("from 2: %+v", late)
	}
}

func TestNoiseAtIsTheSameForOneSeedAndSlot(t *testing.T) {
	at := time.UnixMilli(1_700_000_000_050)
	if a, b := noiseAt(7, at), noiseAt(7, at.Add(40*time.Millisecond)); a != b {
		t.Errorf("one slot, one seed: %v != %v", a, b)
	}
	if a, b := noiseAt(7, at), noiseAt(7, at.Add(100*time.Millisecond)); a == b {
		t.Errorf("next slot drew the same noise %v", a)
	}
	if a, b := noiseAt(7, at), noiseAt(8, at); a == b {
		t.Errorf("another seed drew the same noise %v", a)
	}
}

func TestAComparisonWithoutNomadLeavesTheEventsColumnEmpty(t *testing.T) {
	s := benchSeries{Demand: []float64{5, 5, 5}, Running: []float64{1, 1, 1}, Desired: []float64{1, 1, 1}}
	rows := []compareRow{{Name: "read", Job: "a", Series: s, Events: 3}, {Name: "unread", Job: "b", Series: s, Events: -1}}
	var out strings.Builder
	start := time.Unix(0, 0)
	printComparison(&out, rows, start, start.Add(3*time.Second), compareOptions{Capacity: 10, Max: 12, Warmup: 1, FlapWindow: 30})
	for _, line := range strings.Split(out.String(), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || f[2] != "+0s" {
			continue
		}
		want := map[string]string{"read": "3", "unread": "-"}[f[0]]
		if got := f[len(f)-1]; got != want {
			t.Errorf("%s: nomad events %q, want %q (line %q)", f[0], got, want, line)
		}
	}
	if !strings.Contains(out.String(), "unread") {
		t.Fatalf("no row for the unread autoscaler:\n%s", out.String())
	}
}
