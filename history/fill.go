package history

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/nomadscalerd/nomadscalerd/store"
)

// A series this recorder did not record on its last tick is gained: its
// policy came from another replica's shard, was created, or the process
// started. Its history window is then back-filled from a source that can
// evaluate the past (Prometheus), so the planner does not start from an
// empty history while the series' past lies in another replica's file or
// in the time this process was down. Only the grid times the store lacks
// are asked for and written: points already stored are kept.

// fillJob is a gained series waiting for its back-fill: the window before
// until, the tick that first sampled it. A job whose request failed waits
// until notBefore for its next attempt (attempt counts the failed ones).
type fillJob struct {
	tg        Target
	until     time.Time
	attempt   int
	notBefore time.Time
}

// fillAttempts is how many times a gained series' back-fill is tried, and
// fillRetryFirst the wait after the first failure, doubled after each
// later one (30 s, 1, 2 and 4 minutes): a source that was down for the
// minutes around a take-over or a restart (Prometheus restarting with the
// job) still gives the planner its history, and one that stays down is
// not asked for ever.
const (
	fillAttempts   = 5
	fillRetryFirst = 30 * time.Second
)

// span is a half-open range [from, to) of grid times one range request
// asks for.
type span struct{ from, to time.Time }

// noteGained queues the targets the last tick did not have for FillGained
// and remembers this tick's. Only a range-capable source can fill them.
func (r *Recorder) noteGained(at time.Time, targets []Target) {
	if _, ok := r.src.(RangeSource); !ok {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	now := make(map[string]bool, len(targets))
	gained := false
	for _, tg := range targets {
		now[tg.Series] = true
		if !r.known[tg.Series] && tg.Window > 0 {
			r.fills = append(r.fills, fillJob{tg: tg, until: at})
			gained = true
		}
	}
	r.known = now
	if gained {
		select {
		case r.fillWake <- struct{}{}:
		default:
		}
	}
}

// fillLoop runs FillGained whenever a tick gained series or a failed
// back-fill is due again, until ctx ends.
func (r *Recorder) fillLoop(ctx context.Context) {
	for {
		var retry <-chan time.Time
		if at, ok := r.nextFillRetry(); ok {
			retry = r.clk.After(at.Sub(r.clk.Now()))
		}
		select {
		case <-ctx.Done():
			return
		case <-r.fillWake:
		case <-retry:
		}
		r.FillGained(ctx)
	}
}

// nextFillRetry is the earliest time a queued job waits for, if any waits.
func (r *Recorder) nextFillRetry() (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var at time.Time
	for _, j := range r.fills {
		if !j.notBefore.IsZero() && (at.IsZero() || j.notBefore.Before(at)) {
			at = j.notBefore
		}
	}
	return at, !at.IsZero()
}

// takeFills removes and returns up to n queued jobs that are due at now.
// A retry of a series no tick samples any more (its shard went to another
// replica) is dropped: its history is that replica's now.
func (r *Recorder) takeFills(now time.Time, n int) []fillJob {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []fillJob
	keep := r.fills[:0]
	for _, j := range r.fills {
		switch {
		case j.attempt > 0 && !r.known[j.tg.Series]:
		case len(out) < n && !j.notBefore.After(now):
			out = append(out, j)
		default:
			keep = append(keep, j)
		}
	}
	clear(r.fills[len(keep):])
	r.fills = keep
	return out
}

// FillGained back-fills the history windows of the series ticks gained
// (see noteGained) and returns how many points it wrote. At most
// FillConcurrency range requests are in flight, each for at most
// fillSeriesPerRequest series, FillMaxPoints points per series and
// fillPointsPerRequest points in all, so a shard of a
// thousand policies costs a few dozen requests, not a burst that starves
// the ticks of the source's request slots. A series whose request failed
// is queued again after a backoff (fillRetryFirst, doubling) until
// fillAttempts failures, then logged as given up; jobs not yet due wait.
func (r *Recorder) FillGained(ctx context.Context) int {
	rs, ok := r.src.(RangeSource)
	if !ok {
		return 0
	}
	start := r.clk.Now()
	var mu sync.Mutex
	var total, series, failed, gaveUp int
	var retries []fillJob
	var example error
	noRange := map[string]bool{}
	var wg sync.WaitGroup
	for range r.cfg.FillConcurrency {
		wg.Go(func() {
			for ctx.Err() == nil {
				jobs := r.takeFills(start, fillSeriesPerRequest)
				if len(jobs) == 0 {
					return
				}
				res := r.fillBatch(ctx, rs, jobs)
				mu.Lock()
				total, series, failed = total+res.points, series+len(jobs), failed+len(res.failed)
				for i := range res.failed {
					j := jobs[i]
					if j.attempt++; j.attempt >= fillAttempts {
						gaveUp++
						continue
					}
					j.notBefore = start.Add(fillRetryFirst << (j.attempt - 1))
					retries = append(retries, j)
				}
				if example == nil {
					example = res.example
				}
				for s := range res.noRange {
					noRange[s] = true
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(retries) > 0 {
		r.mu.Lock()
		r.fills = append(r.fills, retries...)
		r.mu.Unlock()
	}
	if series == 0 {
		return 0
	}
	r.m.filled.Add(float64(total))
	for s := range noRange {
		r.mu.Lock()
		first := !r.noRangeLogged[s]
		r.noRangeLogged[s] = true
		r.mu.Unlock()
		if first {
			r.cfg.Logger.Info("history of this source's checks cannot be back-filled: a policy gained from another replica or at start-up keeps the history its series have in this database",
				"source", s)
		}
	}
	if failed > 0 {
		r.cfg.Logger.Warn("history back-fill of gained series failed for some; they are retried, and start with the history this database has meanwhile",
			"series", failed, "of", series, "retried", len(retries), "given_up", gaveUp, "example", example)
	}
	r.cfg.Logger.Info("back-filled the history windows of gained series", "series", series, "points", total,
		"took", r.clk.Now().Sub(start).Round(time.Millisecond))
	return total
}

// fillSeriesPerRequest is how many series one range request carries: the
// Prometheus source joins this many queries into one request.
const fillSeriesPerRequest = DefaultPromBatchSize

type fillResult struct {
	points int
	// failed holds the indexes of the jobs whose request or write failed.
	failed  map[int]bool
	example error
	noRange map[string]bool
}

// fillBatch reads what the store has of each job's window, asks rs for
// the missing spans, grouping the series that miss the same span into one
// request, and writes the points the store lacks.
func (r *Recorder) fillBatch(ctx context.Context, rs RangeSource, jobs []fillJob) fillResult {
	res := fillResult{noRange: map[string]bool{}, failed: map[int]bool{}}
	step := r.cfg.Interval
	stored := make([]map[int64]bool, len(jobs))
	// Keyed by the span's instants: equal times from different jobs may
	// differ as time.Time values (location, monotonic reading).
	type spanKey struct{ from, to int64 }
	bySpan := map[spanKey][]int{}
	fail := func(i int, err error) {
		res.failed[i] = true
		if res.example == nil {
			res.example = err
		}
	}
	for i, j := range jobs {
		// Points past raw retention would not be stored.
		from := j.until.Add(-min(j.tg.Window, r.cfg.RawRetention)).Truncate(step)
		have, err := r.st.Range(j.tg.Series, from, j.until)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			fail(i, fmt.Errorf("read %s: %w", j.tg.Series, err))
			continue
		}
		stored[i] = make(map[int64]bool, len(have))
		times := make([]time.Time, len(have))
		for k, s := range have {
			stored[i][s.T.UnixMilli()] = true
			times[k] = s.T
		}
		for _, sp := range missingSpans(from, j.until, step, times, r.cfg.FillMaxPoints) {
			k := spanKey{sp.from.UnixNano(), sp.to.UnixNano()}
			bySpan[k] = append(bySpan[k], i)
		}
	}
	keys := slices.SortedFunc(maps.Keys(bySpan), func(a, b spanKey) int {
		return cmp.Or(cmp.Compare(a.from, b.from), cmp.Compare(a.to, b.to))
	})
	var reqs []fillRequest
	for _, k := range keys {
		sp := span{from: time.Unix(0, k.from).UTC(), to: time.Unix(0, k.to).UTC()}
		// Long spans go fewer series to a request, so an answer stays
		// within fillPointsPerRequest.
		per := max(1, fillPointsPerRequest/int(sp.to.Sub(sp.from)/step))
		for idx := range slices.Chunk(bySpan[k], per) {
			reqs = append(reqs, fillRequest{sp, idx})
		}
	}
	for _, rq := range reqs {
		sp, idx := rq.span, rq.idx
		qs := make([]Query, len(idx))
		for k, i := range idx {
			qs[k] = jobs[i].tg.Query
		}
		rctx, cancel := context.WithTimeout(ctx, fillTimeout)
		// A range request includes both ends; the span excludes its end.
		results := rs.SampleRange(rctx, qs, sp.from, sp.to.Add(-step), step)
		cancel()
		var pts []store.Point
		for k, i := range idx {
			switch err := results[k].Err; {
			case errors.Is(err, ErrNoRange):
				res.noRange[jobs[i].tg.Query.Source] = true
				continue
			case errors.Is(err, ErrNoData):
				continue // nothing in the source for this span
			case err != nil:
				fail(i, err)
				continue
			}
			for _, p := range results[k].Points {
				ms := p.T.UnixMilli()
				if p.T.Before(sp.from) || !p.T.Before(sp.to) || !p.T.Equal(p.T.Truncate(step)) || stored[i][ms] {
					continue
				}
				stored[i][ms] = true
				pts = append(pts, store.Point{Series: jobs[i].tg.Series, T: p.T, V: p.V})
			}
		}
		if len(pts) == 0 {
			continue
		}
		if err := r.st.WritePoints(pts); err != nil {
			r.m.writeErrors.Inc()
			for _, i := range idx {
				fail(i, fmt.Errorf("write %d back-filled points: %w", len(pts), err))
			}
			continue
		}
		res.points += len(pts)
		if err := r.rollUpFilled(jobs, idx, pts); err != nil {
			// The raw points are stored; only their month of rollups is
			// missing, which the next fill of the series would not redo.
			r.m.writeErrors.Inc()
			r.cfg.Logger.Warn("rolling up back-filled history failed", "series", len(idx), "err", err)
		}
	}
	return res
}

// rollUpFilled writes the rollups of the whole intervals that pts, points
// just back-filled for jobs[idx], fall in before their job's gain. RollUp
// goes on from each series' last rollup, and a fill retried after a round
// of it (Prometheus was down when the series was gained) lies wholly
// before that: without this its hour would leave nothing once raw
// retention passed. The interval the gain falls in is RollUp's to write,
// from the ticks' points and these.
func (r *Recorder) rollUpFilled(jobs []fillJob, idx []int, pts []store.Point) error {
	step := r.cfg.RollupStep
	first := map[string]time.Time{}
	for _, p := range pts {
		if t, ok := first[p.Series]; !ok || p.T.Before(t) {
			first[p.Series] = p.T
		}
	}
	now := r.clk.Now().Truncate(step)
	var batch []store.SeriesRollups
	n := 0
	for _, i := range idx {
		j := jobs[i]
		from, ok := first[j.tg.Series]
		if !ok {
			continue
		}
		delete(first, j.tg.Series) // a series is one job of a batch
		until := j.until.Truncate(step)
		if now.Before(until) {
			until = now
		}
		from = from.Truncate(step)
		if !from.Before(until) {
			continue
		}
		samples, err := r.st.Range(j.tg.Series, from, until)
		if err != nil {
			return fmt.Errorf("read %s: %w", j.tg.Series, err)
		}
		if rs := Rollups(samples, step, until); len(rs) > 0 {
			batch = append(batch, store.SeriesRollups{Series: j.tg.Series, Rollups: rs})
			n += len(rs)
		}
	}
	if len(batch) == 0 {
		return nil
	}
	if err := r.st.WriteRollupsOf(batch); err != nil {
		return fmt.Errorf("write rollups of %d back-filled series: %w", len(batch), err)
	}
	r.m.rollups.Add(float64(n))
	return nil
}

// fillRequest is one range request of fillBatch: a span, and the jobs
// (by index) that miss it.
type fillRequest struct {
	span span
	idx  []int
}

// fillPointsPerRequest bounds the points one back-fill answer carries
// (tens of bytes each as JSON), so two in flight stay a few MB of memory.
const fillPointsPerRequest = 100_000

// fillTimeout bounds one back-fill range request: a slow source fails the
// span, not the recorder.
const fillTimeout = time.Minute

// missingSpans returns the spans of grid times (from, from+step, ... before
// until) that have no time in have (sorted), each at most maxPoints steps
// long and within one of the slots of maxPoints steps that cut time the
// same way for every series, so series missing the same past share a
// request. Times in a slot between its first and last missing one are
// asked for too: one request per slot, whatever the holes.
func missingSpans(from, until time.Time, step time.Duration, have []time.Time, maxPoints int) []span {
	slot := step * time.Duration(max(maxPoints, 1))
	var out []span
	k := 0
	var cur span
	open := false
	for t := from; t.Before(until); t = t.Add(step) {
		for k < len(have) && have[k].Before(t) {
			k++
		}
		if k < len(have) && have[k].Equal(t) {
			continue
		}
		if open && !t.Truncate(slot).Equal(cur.from.Truncate(slot)) {
			out = append(out, cur)
			open = false
		}
		if !open {
			cur, open = span{from: t}, true
		}
		cur.to = t.Add(step)
	}
	if open {
		out = append(out, cur)
	}
	return out
}
