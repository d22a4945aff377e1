package history

import (
	"sort"
	"time"

	"github.com/nomadscalerd/nomadscalerd/store"
)

// Align puts several series on one grid of the given step so they can form
// the columns of a matrix (the forecast target and its exogenous inputs).
//
// Each sample falls in the step-aligned bucket that holds its time; a bucket
// with several samples takes their mean, and an empty bucket carries the
// column's previous value forward. The grid starts at the first bucket where
// every series has a value (so no column is invented before its first
// sample) and ends at the last bucket of any series. Samples must be sorted
// by time, as store.Range returns them. An empty or missing series gives an
// empty result.
func Align(series map[string][]store.Sample, step time.Duration) (times []time.Time, cols map[string][]float64) {
	start, n, cols := AlignColumns(series, step)
	if cols == nil {
		return nil, nil
	}
	times = make([]time.Time, n)
	for i := range times {
		times[i] = start.Add(time.Duration(i) * step).UTC()
	}
	return times, cols
}

// AlignColumns is Align without the grid's times, which callers that only
// need its start (the planner, every reconcile) need not build: the
// columns, n steps each, start at start.
func AlignColumns(series map[string][]store.Sample, step time.Duration) (start time.Time, n int, cols map[string][]float64) {
	if len(series) == 0 || step <= 0 {
		return time.Time{}, 0, nil
	}
	var end time.Time
	first := true
	for _, s := range series {
		if len(s) == 0 {
			return time.Time{}, 0, nil
		}
		b0, b1 := s[0].T.Truncate(step), s[len(s)-1].T.Truncate(step)
		if first || b0.After(start) {
			start = b0
		}
		if first || b1.After(end) {
			end = b1
		}
		first = false
	}
	n = int(end.Sub(start)/step) + 1
	cols = make(map[string][]float64, len(series))
	for name, s := range series {
		if step%time.Second == 0 {
			cols[name] = alignOneSeconds(s, start, int64(step/time.Second), n)
		} else {
			cols[name] = alignOne(s, start, step, n)
		}
	}
	return start.UTC(), n, cols
}

// alignOne buckets one series onto the n-step grid from start.
func alignOne(s []store.Sample, start time.Time, step time.Duration, n int) []float64 {
	col := make([]float64, n)
	// The value carried into the grid is the mean of the last bucket before
	// start, which exists only for series that began earlier.
	var carry float64
	i := 0
	for i < len(s) && s[i].T.Truncate(step).Before(start) {
		b := s[i].T.Truncate(step)
		sum, cnt := 0.0, 0
		for ; i < len(s) && s[i].T.Truncate(step).Equal(b); i++ {
			sum += s[i].V
			cnt++
		}
		carry = sum / float64(cnt)
	}
	for k := 0; k < n; k++ {
		b := start.Add(time.Duration(k) * step)
		sum, cnt := 0.0, 0
		for ; i < len(s) && !s[i].T.Truncate(step).After(b); i++ {
			sum += s[i].V
			cnt++
		}
		if cnt > 0 {
			carry = sum / float64(cnt)
		}
		col[k] = carry
	}
	return col
}

// unixToZero is the number of seconds from Go's zero time (January 1,
// year 1), which Truncate counts multiples of a step from, to 1970.
const unixToZero = 62135596800

// secondBucket is the index of the step-second bucket that holds t: the
// multiples of step from the zero time that t.Truncate(step) rounds to.
func secondBucket(t time.Time, step int64) int64 {
	sec := t.Unix() + unixToZero
	b := sec / step
	if sec%step < 0 {
		b-- // floor before year 1
	}
	return b
}

// alignOneSeconds is alignOne for a step of whole seconds, on bucket
// indexes rather than times: the same buckets (TestAlignColumnsMatchesTheTimeArithmeticItReplaces),
// without a Truncate and a comparison of times per sample (Align ran on
// every reconcile and plan, 8% of the daemon's CPU at 1,000 policies).
func alignOneSeconds(s []store.Sample, start time.Time, step int64, n int) []float64 {
	col := make([]float64, n)
	first := secondBucket(start, step)
	var carry float64
	i := 0
	for i < len(s) && secondBucket(s[i].T, step) < first {
		b := secondBucket(s[i].T, step)
		sum, cnt := 0.0, 0
		for ; i < len(s) && secondBucket(s[i].T, step) == b; i++ {
			sum += s[i].V
			cnt++
		}
		carry = sum / float64(cnt)
	}
	for k := 0; k < n; k++ {
		b := first + int64(k)
		sum, cnt := 0.0, 0
		for ; i < len(s) && secondBucket(s[i].T, step) <= b; i++ {
			sum += s[i].V
			cnt++
		}
		if cnt > 0 {
			carry = sum / float64(cnt)
		}
		col[k] = carry
	}
	return col
}

// Rollups aggregates samples into step-long intervals (keyed by interval
// start) for every interval that ends at or before until; later samples are
// left for a later call because their interval is not complete. Samples must
// be sorted by time.
func Rollups(samples []store.Sample, step time.Duration, until time.Time) []store.Rollup {
	var out []store.Rollup
	for i := 0; i < len(samples); {
		b := samples[i].T.Truncate(step)
		if b.Add(step).After(until) {
			break
		}
		r := store.Rollup{T: b.UTC(), Min: samples[i].V, Max: samples[i].V}
		sum := 0.0
		for ; i < len(samples) && samples[i].T.Truncate(step).Equal(b); i++ {
			v := samples[i].V
			sum += v
			r.Count++
			if v < r.Min {
				r.Min = v
			}
			if v > r.Max {
				r.Max = v
			}
		}
		r.Mean = sum / float64(r.Count)
		out = append(out, r)
	}
	return out
}

// RangeReader reads raw samples; *store.DB satisfies it.
type RangeReader interface {
	Range(series string, from, to time.Time) ([]store.Sample, error)
}

// Load reads several series over [from, to) for Align. Series are read in
// name order so errors are reproducible.
func Load(r RangeReader, series []string, from, to time.Time) (map[string][]store.Sample, error) {
	names := append([]string(nil), series...)
	sort.Strings(names)
	out := make(map[string][]store.Sample, len(names))
	for _, name := range names {
		s, err := r.Range(name, from, to)
		if err != nil {
			return nil, err
		}
		out[name] = s
	}
	return out, nil
}
