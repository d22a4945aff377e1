package history

import (
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/nomadscalerd/nomadscalerd/store"
)

var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func at(sec float64) time.Time { return t0.Add(time.Duration(sec * float64(time.Second))) }

func samples(pairs ...float64) []store.Sample {
	var out []store.Sample
	for i := 0; i+1 < len(pairs); i += 2 {
		out = append(out, store.Sample{T: at(pairs[i]), V: pairs[i+1]})
	}
	return out
}

func TestAlignPutsSeriesOnOneGridCarryingGapsForward(t *testing.T) {
	tests := []struct {
		name      string
		in        map[string][]store.Sample
		step      time.Duration
		wantTimes []time.Time
		wantCols  map[string][]float64
	}{
		{
			name:      "identical grids pass through",
			in:        map[string][]store.Sample{"y": samples(0, 1, 1, 2, 2, 3), "x": samples(0, 10, 1, 20, 2, 30)},
			step:      time.Second,
			wantTimes: []time.Time{at(0), at(1), at(2)},
			wantCols:  map[string][]float64{"y": {1, 2, 3}, "x": {10, 20, 30}},
		},
		{
			name:      "a gap carries the last value forward",
			in:        map[string][]store.Sample{"y": samples(0, 1, 3, 4)},
			step:      time.Second,
			wantTimes: []time.Time{at(0), at(1), at(2), at(3)},
			wantCols:  map[string][]float64{"y": {1, 1, 1, 4}},
		},
		{
			name:      "sub-second jitter lands in the second that holds it",
			in:        map[string][]store.Sample{"y": samples(0.004, 1, 1.998, 2), "x": samples(0.5, 7, 1.2, 8)},
			step:      time.Second,
			wantTimes: []time.Time{at(0), at(1)},
			wantCols:  map[string][]float64{"y": {1, 2}, "x": {7, 8}},
		},
		{
			name:      "the grid starts when every series has begun",
			in:        map[string][]store.Sample{"y": samples(0, 1, 1, 2, 2, 3, 3, 4), "x": samples(2, 50, 3, 60)},
			step:      time.Second,
			wantTimes: []time.Time{at(2), at(3)},
			wantCols:  map[string][]float64{"y": {3, 4}, "x": {50, 60}},
		},
		{
			name:      "a series that began earlier carries its value into the grid start",
			in:        map[string][]store.Sample{"y": samples(0, 1, 3, 4), "x": samples(2, 50, 3, 60)},
			step:      time.Second,
			wantTimes: []time.Time{at(2), at(3)},
			wantCols:  map[string][]float64{"y": {1, 4}, "x": {50, 60}},
		},
		{
			name:      "a series that ended early is carried to the end",
			in:        map[string][]store.Sample{"y": samples(0, 1, 1, 2, 2, 3), "x": samples(0, 5)},
			step:      time.Second,
			wantTimes: []time.Time{at(0), at(1), at(2)},
			wantCols:  map[string][]float64{"y": {1, 2, 3}, "x": {5, 5, 5}},
		},
		{
			name:      "several samples in one bucket are averaged",
			in:        map[string][]store.Sample{"y": samples(0, 1, 30, 3, 60, 10)},
			step:      time.Minute,
			wantTimes: []time.Time{at(0), at(60)},
			wantCols:  map[string][]float64{"y": {2, 10}},
		},
		{
			name: "an empty series gives nothing",
			in:   map[string][]store.Sample{"y": samples(0, 1), "x": nil},
			step: time.Second,
		},
		{
			name: "no series gives nothing",
			in:   nil,
			step: time.Second,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			times, cols := Align(tt.in, tt.step)
			if !reflect.DeepEqual(times, tt.wantTimes) {
				t.Errorf("times = %v, want %v", times, tt.wantTimes)
			}
			if !reflect.DeepEqual(cols, tt.wantCols) {
				t.Errorf("cols = %v, want %v", cols, tt.wantCols)
			}
		})
	}
}

func TestRollupsSummariseOnlyCompletedIntervals(t *testing.T) {
	tests := []struct {
		name  string
		in    []store.Sample
		until time.Time
		want  []store.Rollup
	}{
		{
			name:  "one complete minute",
			in:    samples(0, 1, 20, 5, 59.9, 3),
			until: at(60),
			want:  []store.Rollup{{T: at(0), Mean: 3, Min: 1, Max: 5, Count: 3}},
		},
		{
			name:  "the minute in progress is left for later",
			in:    samples(0, 1, 59, 3, 60, 100, 61, 200),
			until: at(119),
			want:  []store.Rollup{{T: at(0), Mean: 2, Min: 1, Max: 3, Count: 2}},
		},
		{
			name:  "an empty minute has no rollup",
			in:    samples(0, 4, 125, 6),
			until: at(180),
			want: []store.Rollup{
				{T: at(0), Mean: 4, Min: 4, Max: 4, Count: 1},
				{T: at(120), Mean: 6, Min: 6, Max: 6, Count: 1},
			},
		},
		{
			name:  "nothing complete yet",
			in:    samples(0, 4),
			until: at(59),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Rollups(tt.in, time.Minute, tt.until)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Rollups = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestAlignColumnsMatchesTheTimeArithmeticItReplaces(t *testing.T) {
	rng := rand.New(rand.NewPCG(12, 12))
	// Times before the epoch and in a zone other than UTC too: buckets
	// count from the zero time, whatever the zone.
	zone := time.FixedZone("x", 5*3600+30*60)
	for _, base := range []time.Time{t0, time.Date(1969, 12, 31, 23, 59, 58, 0, time.UTC), t0.In(zone)} {
		for _, step := range []time.Duration{time.Second, 7 * time.Second, 10 * time.Second, time.Minute} {
			for trial := range 30 {
				var s []store.Sample
				tm := base.Add(time.Duration(rng.IntN(5000)) * time.Millisecond)
				for range 1 + rng.IntN(400) {
					s = append(s, store.Sample{T: tm, V: rng.Float64() * 100})
					tm = tm.Add(time.Duration(rng.IntN(3*int(step/time.Millisecond)+1)) * time.Millisecond)
				}
				// The grid may start after the series' first samples (a
				// later series decides it): some are carried in.
				start := s[rng.IntN(len(s))].T.Truncate(step)
				n := int(s[len(s)-1].T.Truncate(step).Sub(start)/step) + 1
				want := alignOne(s, start, step, n)
				got := alignOneSeconds(s, start, int64(step/time.Second), n)
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("base %s step %s trial %d: seconds arithmetic %v, times %v", base, step, trial, got, want)
				}
			}
		}
	}
	in := map[string][]store.Sample{"y": samples(0, 1, 1.5, 2, 3, 4), "x": samples(1, 10, 2, 20)}
	times, cols := Align(in, time.Second)
	start, n, cols2 := AlignColumns(in, time.Second)
	if n != len(times) || !start.Equal(times[0]) || !reflect.DeepEqual(cols, cols2) {
		t.Errorf("AlignColumns %s, %d, %v; Align %v, %v", start, n, cols2, times, cols)
	}
}

// BenchmarkAlignAnHourOfSeconds is the planner's alignment of one series
// over an hour of one-second samples: by bucket index (what Align runs
// for whole-second steps) and by time arithmetic (what it ran before).
func BenchmarkAlignAnHourOfSeconds(b *testing.B) {
	s := make([]store.Sample, 3600)
	for i := range s {
		s[i] = store.Sample{T: t0.Add(time.Duration(i)*time.Second + 250*time.Millisecond), V: float64(i)}
	}
	start := s[0].T.Truncate(time.Second)
	b.Run("seconds", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			alignOneSeconds(s, start, 1, len(s))
		}
	})
	b.Run("times", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			alignOne(s, start, time.Second, len(s))
		}
	})
}
