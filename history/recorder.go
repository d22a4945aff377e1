// Package history owns the recording side of nomadscalerd: metric sources
// (Nomad allocation stats and Prometheus), the recorder that samples every
// policy's metrics each interval into the store in one transaction per tick,
// back-fills from Prometheus what ticks missed and the history windows of
// series it gains (a shard taken over, start-up), the 1-minute rollups and
// retention pruning, and the pure helpers that put several series on one
// grid for the forecaster.
package history

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/nomadscalerd/nomadscalerd/clock"
	"github.com/nomadscalerd/nomadscalerd/store"
)

// Target is one series to record and the query that measures it.
type Target struct {
	Series string
	Query  Query
	// Window is how much history the series' policy plans with: when the
	// recorder gains the series, it back-fills that much from a source
	// that can evaluate the past (see FillGained). 0: no back-fill.
	Window time.Duration
}

// Targets tells the recorder what to record; it is asked every tick, so
// policy changes take effect on the next one.
type Targets interface {
	Targets() []Target
}

// TargetsFunc adapts a function to Targets.
type TargetsFunc func() []Target

// Targets calls f.
func (f TargetsFunc) Targets() []Target { return f() }

// Store is the part of store.DB the recorder writes to.
type Store interface {
	WritePoints(pts []store.Point) error
	Range(series string, from, to time.Time) ([]store.Sample, error)
	SeriesSpans() ([]store.SeriesInfo, error)
	RollupSpans() ([]store.SeriesInfo, error)
	WriteRollupsOf(batch []store.SeriesRollups) error
	Prune(rawBefore, rollupBefore time.Time) (int, error)
}

// Config tunes a Recorder; zero fields take the defaults.
type Config struct {
	Interval        time.Duration // between ticks; default 1 s
	SampleTimeout   time.Duration // per sample; default 3/4 of Interval
	Concurrency     int           // samples in flight per tick; default 16
	RawRetention    time.Duration // default 24 h
	RollupRetention time.Duration // default 30 days
	RollupStep      time.Duration // default 1 min
	MaintainEvery   time.Duration // rollups and pruning; default 1 min
	// ReleaseEvery is how often a tick unmaps the store's file pages
	// (when the store maps them, see mappedReleaser); default 2 s. Each
	// commit and read maps the pages it touches, scattered over the
	// file, and the kernel maps the cached pages around each (64 KiB):
	// at a thousand policies that is 10 MiB of resident set a second,
	// 85 MiB within 8 s of a release, for a few MiB of pages read. A
	// release is one madvise call; the pages stay in the page cache.
	ReleaseEvery time.Duration
	LogEvery     time.Duration // at most one failure log per series; default 1 min
	// BackfillEvery is how often samples a tick missed (a timeout, an
	// overrun) are asked again of a source that can evaluate the past
	// (Prometheus); default 10 s. BackfillWindow is how far back they are
	// still asked; default 5 min.
	BackfillEvery  time.Duration
	BackfillWindow time.Duration
	// FillConcurrency bounds the range requests in flight that back-fill
	// gained series' history windows (see FillGained); default 2, so the
	// ticks keep most of the source's request slots. FillMaxPoints caps
	// the points per series of one such request; default 10,000, under
	// Prometheus' 11,000 points per series of a range query.
	FillConcurrency int
	FillMaxPoints   int
	Logger          *slog.Logger
	Registerer      prometheus.Registerer // nil: metrics are not registered
	// Observe, when set, is handed each tick's points once they are
	// stored (the controller wakes a policy whose demand stepped up); it
	// runs on the tick's goroutine and must not block.
	Observe func([]store.Point)
}

func (c *Config) defaults() {
	if c.Interval <= 0 {
		c.Interval = time.Second
	}
	if c.SampleTimeout <= 0 {
		c.SampleTimeout = c.Interval * 3 / 4
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 16
	}
	if c.RawRetention <= 0 {
		c.RawRetention = 24 * time.Hour
	}
	if c.RollupRetention <= 0 {
		c.RollupRetention = 30 * 24 * time.Hour
	}
	if c.RollupStep <= 0 {
		c.RollupStep = time.Minute
	}
	if c.MaintainEvery <= 0 {
		c.MaintainEvery = time.Minute
	}
	if c.ReleaseEvery <= 0 {
		c.ReleaseEvery = 2 * time.Second
	}
	if c.LogEvery <= 0 {
		c.LogEvery = time.Minute
	}
	if c.BackfillEvery <= 0 {
		c.BackfillEvery = 10 * time.Second
	}
	if c.BackfillWindow <= 0 {
		c.BackfillWindow = 5 * time.Minute
	}
	if c.FillConcurrency <= 0 {
		c.FillConcurrency = 2
	}
	if c.FillMaxPoints <= 0 {
		c.FillMaxPoints = 10000
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Recorder samples targets into the store.
type Recorder struct {
	st      Store
	src     Source
	targets Targets
	clk     clock.Clock
	cfg     Config
	m       recorderMetrics

	mu           sync.Mutex
	last         map[string]lastSample
	failures     map[string]*failureLog
	lastMaintain time.Time
	// lastRelease is when a tick last unmapped the store's pages.
	lastRelease time.Time
	// lastTick is the grid time of the latest tick; gapLogged and
	// gapsUnlogged rate-limit the missed-interval warning.
	lastTick     time.Time
	gapLogged    time.Time
	gapsUnlogged int
	// missing holds, per series, the grid times a tick could not sample,
	// for the next back-fill.
	missing map[string]*missingPoints
	// failWindow, failLines, failHeld, failExample and failSummary cap the
	// per-series failure lines across all series (see sampleFailed).
	failWindow, failSummary time.Time
	failLines, failHeld     int
	failExample             string
	// known is the series of the last tick; fills the gained ones waiting
	// for FillGained, which fillWake wakes; noRangeLogged the sources
	// whose checks were said once not to be back-filled.
	known         map[string]bool
	fills         []fillJob
	fillWake      chan struct{}
	noRangeLogged map[string]bool
}

type missingPoints struct {
	q  Query
	ts []time.Time
}

type lastSample struct {
	t time.Time
	v float64
}

// failureLog rate-limits failure logs of one series.
type failureLog struct {
	logged     time.Time
	suppressed int
}

type recorderMetrics struct {
	samples     *prometheus.CounterVec
	tick        prometheus.Histogram
	writeErrors prometheus.Counter
	rollups     prometheus.Counter
	pruned      prometheus.Counter
	targets     prometheus.Gauge
	gaps        prometheus.Counter
	backfilled  prometheus.Counter
	lost        prometheus.Counter
	filled      prometheus.Counter
}

func newRecorderMetrics(reg prometheus.Registerer) (recorderMetrics, error) {
	m := recorderMetrics{
		samples: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nomadscaler_history_samples_total",
			Help: "Metric samples taken, by outcome (ok, error, timeout).",
		}, []string{"outcome"}),
		tick: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "nomadscaler_history_tick_duration_seconds",
			Help:    "Time to sample every target and write the tick.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 12),
		}),
		writeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "nomadscaler_history_write_errors_total",
			Help: "Ticks whose points could not be written.",
		}),
		rollups: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "nomadscaler_history_rollups_written_total",
			Help: "Rollup intervals written.",
		}),
		pruned: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "nomadscaler_history_pruned_total",
			Help: "Raw points and rollups deleted by retention.",
		}),
		targets: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "nomadscaler_history_targets",
			Help: "Series sampled in the last tick.",
		}),
		backfilled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "nomadscaler_history_backfilled_total",
			Help: "Points a tick missed that a later range query recovered.",
		}),
		lost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "nomadscaler_history_lost_total",
			Help: "Points a tick missed and no back-fill recovered within the back-fill window.",
		}),
		filled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "nomadscaler_history_gained_filled_total",
			Help: "Points of gained series' history windows (a shard taken over, a restart) back-filled from their source.",
		}),
		gaps: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "nomadscaler_history_missed_intervals_total",
			Help: "Sampling intervals no tick covered because the one before overran (each misses one point per series).",
		}),
	}
	for _, o := range []string{"ok", "error", "timeout"} {
		m.samples.WithLabelValues(o)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.samples, m.tick, m.writeErrors, m.rollups, m.pruned, m.targets, m.gaps, m.backfilled, m.lost, m.filled} {
			if err := reg.Register(c); err != nil {
				return m, fmt.Errorf("register history metrics: %w", err)
			}
		}
	}
	return m, nil
}

// NewRecorder records what targets lists, measured by src (usually a
// Sources), into st, ticking on clk (clock.Real in the daemon).
func NewRecorder(st Store, src Source, targets Targets, clk clock.Clock, cfg Config) (*Recorder, error) {
	cfg.defaults()
	if clk == nil {
		return nil, errors.New("history recorder: no clock")
	}
	m, err := newRecorderMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	return &Recorder{st: st, src: src, targets: targets, clk: clk, cfg: cfg, m: m,
		last: map[string]lastSample{}, failures: map[string]*failureLog{}, missing: map[string]*missingPoints{},
		fillWake: make(chan struct{}, 1), noRangeLogged: map[string]bool{}}, nil
}

// Run ticks every interval until ctx is cancelled, and rolls up and prunes
// every MaintainEvery. Both happen on this goroutine, so a rollup never races
// the tick that writes its last samples. It returns nil on cancellation.
//
// Each tick waits for the next interval boundary on the clock, so a tick that
// overran one or more boundaries is followed by the next boundary, not by a
// burst of catch-up ticks: the boundaries it skipped are counted as missed
// intervals (noteGap) and back-filled where the source can.
func (r *Recorder) Run(ctx context.Context) error {
	// Back-fills run beside the ticks: a slow source makes them slow too,
	// and a tick must not wait for one.
	if _, ok := r.src.(RangeSource); ok {
		var wg sync.WaitGroup
		defer wg.Wait()
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case <-r.clk.After(r.cfg.BackfillEvery):
					r.Backfill(ctx)
				}
			}
		})
		// Gained series' windows are filled on a goroutine of their own:
		// a shard's hour of history takes longer than a back-fill period.
		wg.Go(func() { r.fillLoop(ctx) })
	}
	var tickErrs errorLog
	for {
		// Start on an interval boundary so tick stamps (rounded to the
		// interval) are the times the samples were taken, not up to an
		// interval off.
		now := r.clk.Now()
		select {
		case <-ctx.Done():
			return nil
		case <-r.clk.After(now.Truncate(r.cfg.Interval).Add(r.cfg.Interval).Sub(now)):
		}
		if err := r.Tick(ctx); err != nil && ctx.Err() == nil {
			tickErrs.report(r.clk.Now(), err, r.cfg.Logger)
		} else if err == nil {
			tickErrs.recovered(r.cfg.Logger)
		}
		now = r.clk.Now()
		r.mu.Lock()
		due := now.Sub(r.lastMaintain) >= r.cfg.MaintainEvery
		r.mu.Unlock()
		if due {
			if err := r.Maintain(ctx); err != nil && ctx.Err() == nil {
				r.cfg.Logger.Error("history maintenance", "err", err)
			}
		}
	}
}

// Tick samples every target concurrently, each within SampleTimeout, and
// writes the successful samples in one WritePoints call. All points of a tick
// carry the tick's start time rounded to the interval, so series line up for
// Align and a tick that fires a few milliseconds late does not shift its
// samples into the next grid step. Failed samples
// are logged (rate-limited per series) and skipped; only a failed write is
// returned.
func (r *Recorder) Tick(ctx context.Context) error {
	start := r.clk.Now()
	defer func() { r.m.tick.Observe(r.clk.Now().Sub(start).Seconds()) }()
	at := start.Round(r.cfg.Interval).UTC()
	targets := dedupe(r.targets.Targets())
	r.noteGap(at, targets)
	r.noteGained(at, targets)
	r.m.targets.Set(float64(len(targets)))
	if len(targets) == 0 {
		return nil
	}
	values, errs := r.sample(ctx, targets)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	pts := make([]store.Point, 0, len(targets))
	for i, tg := range targets {
		if errs[i] != nil {
			r.sampleFailed(tg, errs[i], at)
			if !errors.Is(errs[i], ErrNoData) {
				r.markMissing(tg, at)
			}
			continue
		}
		r.m.samples.WithLabelValues("ok").Inc()
		pts = append(pts, store.Point{Series: tg.Series, T: at, V: values[i]})
	}
	r.logHeldFailures(at)
	r.mu.Lock()
	for _, p := range pts {
		r.last[p.Series] = lastSample{t: p.T, v: p.V}
		delete(r.failures, p.Series)
	}
	if len(r.failures) > len(targets) || len(r.last) > len(targets) {
		// Forget the failure logs and last samples of series no longer
		// recorded: with policies coming and going they would grow for
		// the process's life.
		current := make(map[string]bool, len(targets))
		for _, tg := range targets {
			current[tg.Series] = true
		}
		for s := range r.failures {
			if !current[s] {
				delete(r.failures, s)
			}
		}
		for s := range r.last {
			if !current[s] {
				delete(r.last, s)
			}
		}
	}
	r.mu.Unlock()
	if err := r.st.WritePoints(pts); err != nil {
		r.m.writeErrors.Inc()
		return fmt.Errorf("write %d points: %w", len(pts), err)
	}
	if r.cfg.Observe != nil {
		r.cfg.Observe(pts)
	}
	if rel, ok := r.st.(mappedReleaser); ok && !at.Before(r.lastRelease.Add(r.cfg.ReleaseEvery)) {
		r.lastRelease = at
		if err := rel.ReleaseMapped(); err != nil {
			return err
		}
	}
	return nil
}

// sample measures every target: through one SampleBatch call when the
// source can batch (a bounded number of requests per tick), else one Sample
// per target, at most Concurrency at once.
func (r *Recorder) sample(ctx context.Context, targets []Target) ([]float64, []error) {
	values := make([]float64, len(targets))
	errs := make([]error, len(targets))
	if bs, ok := r.src.(BatchSource); ok {
		sctx, cancel := context.WithTimeout(ctx, r.cfg.SampleTimeout)
		defer cancel()
		qs := make([]Query, len(targets))
		for i, tg := range targets {
			qs[i] = tg.Query
		}
		for i, res := range bs.SampleBatch(sctx, qs, r.cfg.Concurrency) {
			v, err := res.V, res.Err
			if err == nil {
				v, err = finite(v)
			}
			if err != nil && sctx.Err() != nil && ctx.Err() == nil {
				err = fmt.Errorf("timed out after %s: %w", r.cfg.SampleTimeout, err)
			}
			values[i], errs[i] = v, err
		}
		return values, errs
	}
	var g errgroup.Group
	g.SetLimit(r.cfg.Concurrency)
	for i, tg := range targets {
		g.Go(func() error {
			sctx, cancel := context.WithTimeout(ctx, r.cfg.SampleTimeout)
			defer cancel()
			v, err := r.src.Sample(sctx, tg.Query)
			if err == nil {
				v, err = finite(v)
			}
			if err != nil && sctx.Err() != nil && ctx.Err() == nil {
				err = fmt.Errorf("timed out after %s: %w", r.cfg.SampleTimeout, err)
			}
			values[i], errs[i] = v, err
			return nil
		})
	}
	_ = g.Wait()
	return values, errs
}

// noteGap counts the grid steps between the previous tick and this one
// that no tick sampled (a tick overran, or the process stalled), and warns
// about them at most once a LogEvery with the total since the last
// warning: missed samples are reported, never silent.
func (r *Recorder) noteGap(at time.Time, targets []Target) {
	r.mu.Lock()
	prev := r.lastTick
	if at.After(prev) {
		r.lastTick = at
	}
	if prev.IsZero() || !at.After(prev.Add(r.cfg.Interval)) {
		r.mu.Unlock()
		return
	}
	missed := int(at.Sub(prev)/r.cfg.Interval) - 1
	if _, ok := r.src.(RangeSource); ok && at.Sub(prev) <= r.cfg.BackfillWindow {
		for ts := prev.Add(r.cfg.Interval); ts.Before(at); ts = ts.Add(r.cfg.Interval) {
			for _, tg := range targets {
				r.markMissingLocked(tg, ts)
			}
		}
	}
	r.gapsUnlogged += missed
	if !r.gapLogged.IsZero() && at.Sub(r.gapLogged) < r.cfg.LogEvery {
		r.mu.Unlock()
		r.m.gaps.Add(float64(missed))
		return
	}
	total := r.gapsUnlogged
	r.gapLogged, r.gapsUnlogged = at, 0
	r.mu.Unlock()
	r.m.gaps.Add(float64(missed))
	r.cfg.Logger.Warn("history ticks overran: sampling intervals were missed", "missed", total,
		"since", prev, "interval", r.cfg.Interval)
}

// markMissing remembers that tg has no point at ts, for Backfill.
func (r *Recorder) markMissing(tg Target, ts time.Time) {
	if _, ok := r.src.(RangeSource); !ok {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.markMissingLocked(tg, ts)
}

func (r *Recorder) markMissingLocked(tg Target, ts time.Time) {
	m := r.missing[tg.Series]
	if m == nil {
		m = &missingPoints{q: tg.Query}
		r.missing[tg.Series] = m
	}
	m.ts = append(m.ts, ts)
}

// Backfill asks a range-capable source for the points ticks missed (a
// sample timed out, a tick overran) and writes those it gets, so a slow
// moment of the source costs late points, not lost ones. Points older than
// BackfillWindow are given up and counted as lost. Points filled into a
// minute already rolled up are not added to its rollup.
func (r *Recorder) Backfill(ctx context.Context) {
	now := r.clk.Now()
	r.mu.Lock()
	pending := r.missing
	r.missing = map[string]*missingPoints{}
	r.mu.Unlock()
	rs, ok := r.src.(RangeSource)
	if !ok || len(pending) == 0 {
		return
	}
	oldest := now.Add(-r.cfg.BackfillWindow)
	var from, to time.Time
	series := make([]string, 0, len(pending))
	lost := 0
	for s, m := range pending {
		kept := m.ts[:0]
		for _, ts := range m.ts {
			if ts.Before(oldest) {
				lost++
				continue
			}
			kept = append(kept, ts)
			if from.IsZero() || ts.Before(from) {
				from = ts
			}
			if ts.After(to) {
				to = ts
			}
		}
		m.ts = kept
		if len(kept) > 0 {
			series = append(series, s)
		}
	}
	r.m.lost.Add(float64(lost))
	if len(series) == 0 {
		return
	}
	qs := make([]Query, len(series))
	for i, s := range series {
		qs[i] = pending[s].q
	}
	// A back-fill may take until the next one is due: it runs beside the
	// ticks, and its source was slow when it missed these points.
	bctx, cancel := context.WithTimeout(ctx, r.cfg.BackfillEvery)
	defer cancel()
	results := rs.SampleRange(bctx, qs, from, to, r.cfg.Interval)
	var pts []store.Point
	retry := map[string]*missingPoints{}
	for i, s := range series {
		want := map[int64]bool{}
		for _, ts := range pending[s].ts {
			want[ts.UnixMilli()] = true
		}
		if results[i].Err != nil {
			if !errors.Is(results[i].Err, ErrNoData) && !errors.Is(results[i].Err, ErrNoRange) {
				retry[s] = pending[s]
			}
			continue
		}
		for _, p := range results[i].Points {
			if want[p.T.UnixMilli()] {
				pts = append(pts, store.Point{Series: s, T: p.T, V: p.V})
			}
		}
	}
	if len(pts) > 0 {
		if err := r.st.WritePoints(pts); err != nil {
			r.m.writeErrors.Inc()
			r.cfg.Logger.Error("history back-fill write", "points", len(pts), "err", err)
			return
		}
		r.m.backfilled.Add(float64(len(pts)))
	}
	r.mu.Lock()
	for s, m := range retry {
		if cur := r.missing[s]; cur != nil {
			m.ts = append(m.ts, cur.ts...)
		}
		r.missing[s] = m
	}
	r.mu.Unlock()
}

// dedupe keeps the first target of each series: two policies cannot share a
// series, and sampling it twice would write two values at one key.
func dedupe(ts []Target) []Target {
	seen := make(map[string]bool, len(ts))
	out := ts[:0:0]
	for _, t := range ts {
		if t.Series == "" || seen[t.Series] {
			continue
		}
		seen[t.Series] = true
		out = append(out, t)
	}
	return out
}

func (r *Recorder) sampleFailed(tg Target, err error, at time.Time) {
	outcome := "error"
	if errors.Is(err, context.DeadlineExceeded) {
		outcome = "timeout"
	}
	r.m.samples.WithLabelValues(outcome).Inc()
	r.mu.Lock()
	f := r.failures[tg.Series]
	if f == nil {
		f = &failureLog{}
		r.failures[tg.Series] = f
	}
	if !f.logged.IsZero() && at.Sub(f.logged) < r.cfg.LogEvery {
		f.suppressed++
		r.mu.Unlock()
		return
	}
	suppressed := f.suppressed
	f.logged, f.suppressed = at, 0
	// A slow source fails every series at once: past the first few a
	// window, series go into one summary line instead of a line each.
	if at.Sub(r.failWindow) >= r.cfg.LogEvery {
		r.failWindow, r.failLines = at, 0
	}
	if r.failLines >= maxSeriesFailureLines {
		r.failHeld++
		if r.failExample == "" {
			r.failExample = tg.Series + ": " + err.Error()
		}
		r.mu.Unlock()
		return
	}
	r.failLines++
	r.mu.Unlock()
	r.cfg.Logger.Warn("metric sample failed", "series", tg.Series, "source", tg.Query.Source,
		"query", tg.Query.Query, "err", err, "suppressed", suppressed)
}

// maxSeriesFailureLines is how many series' failures are logged one by one
// per LogEvery; the rest are summed up in one line.
const maxSeriesFailureLines = 10

// logHeldFailures writes the summary of the failures not logged one by
// one, at most once per LogEvery.
func (r *Recorder) logHeldFailures(at time.Time) {
	r.mu.Lock()
	if r.failHeld == 0 || (!r.failSummary.IsZero() && at.Sub(r.failSummary) < r.cfg.LogEvery) {
		r.mu.Unlock()
		return
	}
	held, example := r.failHeld, r.failExample
	r.failHeld, r.failExample, r.failSummary = 0, "", at
	r.mu.Unlock()
	r.cfg.Logger.Warn("metric samples failed for more series than are logged one by one", "series_failures", held,
		"example", example, "per_series_lines_per_window", maxSeriesFailureLines, "window", r.cfg.LogEvery)
}

// LastSample is the time and value of the series' last successful sample in
// this process, for staleness checks; ok is false before the first one.
func (r *Recorder) LastSample(series string) (t time.Time, v float64, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.last[series]
	return s.t, s.v, ok
}

// Maintain writes rollups for every completed interval of every raw series
// not rolled up yet, then prunes raw points and rollups past retention.
// Rollups come first so pruning never deletes raw points that were not yet
// summarised.
func (r *Recorder) Maintain(ctx context.Context) error {
	now := r.clk.Now().UTC()
	r.mu.Lock()
	r.lastMaintain = now
	r.mu.Unlock()
	n, err := RollUp(ctx, r.st, r.cfg.RollupStep, now)
	r.m.rollups.Add(float64(n))
	if err != nil {
		return err
	}
	pruned, err := r.st.Prune(now.Add(-r.cfg.RawRetention), now.Add(-r.cfg.RollupRetention))
	r.m.pruned.Add(float64(pruned))
	if err != nil {
		return fmt.Errorf("prune: %w", err)
	}
	// The round read every series' first and last chunks; their pages,
	// and the cached pages mapped around them, are not read again until
	// the next round.
	if rel, ok := r.st.(mappedReleaser); ok {
		if err := rel.ReleaseMapped(); err != nil {
			return err
		}
	}
	return nil
}

// mappedReleaser is a store whose reads map file pages into the process
// (store.DB's mmap), which it can unmap once a round is done with them.
type mappedReleaser interface {
	ReleaseMapped() error
}

var _ mappedReleaser = (*store.DB)(nil)

// RollupStore is what RollUp reads and writes. It lists series by their
// spans, not their counts: a round needs where each series starts and
// where its rollups end, and counting would read every chunk.
type RollupStore interface {
	Range(series string, from, to time.Time) ([]store.Sample, error)
	SeriesSpans() ([]store.SeriesInfo, error)
	RollupSpans() ([]store.SeriesInfo, error)
	WriteRollupsOf(batch []store.SeriesRollups) error
}

// rollupBatch is how many series' rollups RollUp writes in one
// transaction: one commit per series cost an fdatasync each, and one for
// ten thousand series would hold the writer lock (and the tick's write)
// for long. Each series a transaction writes maps about 130 KiB of the
// file (its rollup buckets' pages, each faulted in with its neighbours),
// released after each commit: a round over a copy of bench-scale's
// 1,000-series file mapped up to 66 MiB in batches of 500 and 29 MiB in
// batches of 100, for 10 commits a round instead of 2.
const rollupBatch = 100

// RollUp aggregates, for every raw series, the step intervals that are
// complete at now and come after the series' last rollup, and returns how
// many it wrote. A completed interval is never rewritten, so samples that
// arrive for it later (there are none from Recorder, which rolls up on its
// ticking goroutine) are not counted.
func RollUp(ctx context.Context, st RollupStore, step time.Duration, now time.Time) (int, error) {
	raw, err := st.SeriesSpans()
	if err != nil {
		return 0, fmt.Errorf("list series: %w", err)
	}
	rolled, err := st.RollupSpans()
	if err != nil {
		return 0, fmt.Errorf("list rollups: %w", err)
	}
	lastRollup := make(map[string]time.Time, len(rolled))
	for _, s := range rolled {
		lastRollup[s.Name] = s.Last
	}
	until := now.Truncate(step)
	written := 0
	var batch []store.SeriesRollups
	pending := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := st.WriteRollupsOf(batch); err != nil {
			return fmt.Errorf("write rollups of %d series from %s: %w", len(batch), batch[0].Series, err)
		}
		written += pending
		batch, pending = batch[:0], 0
		// A batch's reads and commit mapped the pages around each series'
		// chunks and rollups; the next batch's are elsewhere.
		if rel, ok := st.(mappedReleaser); ok {
			if err := rel.ReleaseMapped(); err != nil {
				return err
			}
		}
		return nil
	}
	for _, s := range raw {
		if err := ctx.Err(); err != nil {
			// What was read is written: as before, a cancelled round
			// keeps the series it finished.
			if ferr := flush(); ferr != nil {
				return written, ferr
			}
			return written, err
		}
		from := s.First.Truncate(step)
		if last, ok := lastRollup[s.Name]; ok && !last.Add(step).Before(from) {
			from = last.Add(step)
		}
		if !from.Before(until) {
			continue
		}
		samples, err := st.Range(s.Name, from, until)
		if err != nil {
			if ferr := flush(); ferr != nil {
				return written, ferr
			}
			return written, fmt.Errorf("read %s: %w", s.Name, err)
		}
		rs := Rollups(samples, step, until)
		if len(rs) == 0 {
			continue
		}
		batch = append(batch, store.SeriesRollups{Series: s.Name, Rollups: rs})
		pending += len(rs)
		if len(batch) == rollupBatch {
			if err := flush(); err != nil {
				return written, err
			}
		}
	}
	return written, flush()
}

// errorLog logs a repeated error once a minute with how many times it
// happened, not once a tick: a full disk at a 100 ms interval would
// otherwise write 600 lines a minute.
type errorLog struct {
	last       time.Time
	suppressed int
	failing    bool
}

const errorLogEvery = time.Minute

func (e *errorLog) report(now time.Time, err error, log *slog.Logger) {
	e.failing = true
	if !e.last.IsZero() && now.Sub(e.last) < errorLogEvery {
		e.suppressed++
		return
	}
	log.Error("history tick failed", "err", err, "failures_since_last_log", e.suppressed+1)
	e.last, e.suppressed = now, 0
}

func (e *errorLog) recovered(log *slog.Logger) {
	if e.failing {
		log.Info("history ticks work again", "failures_not_logged", e.suppressed)
	}
	*e = errorLog{}
}
