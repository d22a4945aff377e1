package history

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/nomadscalerd/nomadscalerd/clock"
	"github.com/nomadscalerd/nomadscalerd/store"
)

func openDB(t *testing.T) *store.DB {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "h.db"), store.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// countingStore counts the write transactions the recorder asks for.
type countingStore struct {
	*store.DB
	writes atomic.Int64
	points atomic.Int64
}

// rollupCommits counts WriteRollupsOf calls: one transaction each.
type rollupCommits struct {
	*store.DB
	commits int
}

func (c *rollupCommits) WriteRollupsOf(batch []store.SeriesRollups) error {
	c.commits++
	return c.DB.WriteRollupsOf(batch)
}

func TestRollUpWritesEverySeriesMinutesInATransactionPerHundredSeries(t *testing.T) {
	st := &rollupCommits{DB: openDB(t)}
	const series = 1250
	var pts []store.Point
	for s := range series {
		for k := range 120 {
			pts = append(pts, store.Point{Series: fmt.Sprintf("p%04d/m", s), T: t0.Add(time.Duration(k) * time.Second), V: float64(k % 60)})
		}
	}
	if err := st.WritePoints(pts); err != nil {
		t.Fatal(err)
	}
	n, err := RollUp(context.Background(), st, time.Minute, t0.Add(2*time.Minute))
	if err != nil || n != 2*series {
		t.Fatalf("rolled up %d, %v; want two minutes of %d series", n, err, series)
	}
	if st.commits != 13 {
		t.Errorf("%d rollup transactions for %d series, want 13 (100 a transaction)", st.commits, series)
	}
	for _, name := range []string{"p0000/m", "p0099/m", "p0100/m", "p1249/m"} {
		rs, err := st.RangeRollups(name, time.Time{}, time.Time{})
		if err != nil || len(rs) != 2 || rs[1].Count != 60 || rs[1].Mean != 29.5 || !rs[1].T.Equal(t0.Add(time.Minute)) {
			t.Errorf("rollups of %s: %+v, %v; want two minutes of 0..59", name, rs, err)
		}
	}
	if n, err := RollUp(context.Background(), st, time.Minute, t0.Add(2*time.Minute)); err != nil || n != 0 || st.commits != 13 {
		t.Errorf("second pass: %d rollups, %v, %d transactions; want nothing written", n, err, st.commits)
	}
}

func (c *countingStore) WritePoints(pts []store.Point) error {
	c.writes.Add(1)
	c.points.Add(int64(len(pts)))
	return c.DB.WritePoints(pts)
}

// scriptedSource answers per query text: a value, an error, or a hang.
type scriptedSource struct {
	mu     sync.Mutex
	values map[string]float64
	fail   map[string]error
	hang   map[string]bool
	calls  map[string]int
}

func (s *scriptedSource) Sample(ctx context.Context, q Query) (float64, error) {
	s.mu.Lock()
	if s.calls == nil {
		s.calls = map[string]int{}
	}
	s.calls[q.Query]++
	v, err, hang := s.values[q.Query], s.fail[q.Query], s.hang[q.Query]
	s.mu.Unlock()
	if hang {
		<-ctx.Done()
		return 0, ctx.Err()
	}
	return v, err
}

func target(series, query string) Target {
	return Target{Series: series, Query: Query{Source: "s", Query: query}}
}

func TestATickSamplesEveryTargetAndWritesThemInOneTransaction(t *testing.T) {
	cs := &countingStore{DB: openDB(t)}
	src := &scriptedSource{values: map[string]float64{"qa": 1.5, "qb": 2.5, "qc": 3.5}}
	targets := []Target{target("ns/job/web/a", "qa"), target("ns/job/web/b", "qb"), target("ns/job/api/c", "qc")}
	clk := clock.NewFake(t0)
	reg := prometheus.NewRegistry()
	r, err := NewRecorder(cs, src, TargetsFunc(func() []Target { return targets }), clk, Config{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := r.Tick(context.Background()); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Second)
	}
	if got := cs.writes.Load(); got != 3 {
		t.Fatalf("%d write transactions for 3 ticks, want 3", got)
	}
	if got := cs.points.Load(); got != 9 {
		t.Fatalf("%d points written, want 9", got)
	}
	for _, tg := range targets {
		got, err := cs.Range(tg.Series, time.Time{}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		want := src.values[tg.Query.Query]
		if len(got) != 3 || got[0].V != want || !got[0].T.Equal(t0) || !got[2].T.Equal(t0.Add(2*time.Second)) {
			t.Fatalf("%s = %+v, want 3 samples of %v from %v", tg.Series, got, want, t0)
		}
	}
	if ts, v, ok := r.LastSample("ns/job/api/c"); !ok || v != 3.5 || !ts.Equal(t0.Add(2*time.Second)) {
		t.Fatalf("LastSample = %v, %v, %v", ts, v, ok)
	}
	if got := testutil.ToFloat64(r.m.samples.WithLabelValues("ok")); got != 9 {
		t.Fatalf("samples_total{outcome=ok} = %v, want 9", got)
	}
}

func TestFailedAndSlowSamplesAreSkippedWhileTheOthersAreWritten(t *testing.T) {
	cs := &countingStore{DB: openDB(t)}
	src := &scriptedSource{
		values: map[string]float64{"good": 7},
		fail:   map[string]error{"bad": errors.New("boom")},
		hang:   map[string]bool{"slow": true},
	}
	targets := []Target{target("p/good", "good"), target("p/bad", "bad"), target("p/slow", "slow")}
	r, err := NewRecorder(cs, src, TargetsFunc(func() []Target { return targets }),
		clock.NewFake(t0), Config{SampleTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	if cs.writes.Load() != 1 || cs.points.Load() != 1 {
		t.Fatalf("writes=%d points=%d, want one write of one point", cs.writes.Load(), cs.points.Load())
	}
	for _, s := range []string{"p/bad", "p/slow"} {
		if _, _, ok := r.LastSample(s); ok {
			t.Errorf("%s has a last sample though it never succeeded", s)
		}
		if _, err := cs.Range(s, time.Time{}, time.Time{}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s was stored: %v", s, err)
		}
	}
	if got := testutil.ToFloat64(r.m.samples.WithLabelValues("timeout")); got != 1 {
		t.Errorf("timeouts = %v, want 1", got)
	}
	if got := testutil.ToFloat64(r.m.samples.WithLabelValues("error")); got != 1 {
		t.Errorf("errors = %v, want 1", got)
	}
}

func TestSampleFailuresAreLoggedAtMostOncePerIntervalPerSeries(t *testing.T) {
	var logs strings.Builder
	var mu sync.Mutex
	logger := slogTo(&lockedWriter{w: &logs, mu: &mu})
	src := &scriptedSource{fail: map[string]error{"bad": errors.New("boom")}}
	clk := clock.NewFake(t0)
	r, err := NewRecorder(&countingStore{DB: openDB(t)}, src,
		TargetsFunc(func() []Target { return []Target{target("p/bad", "bad")} }),
		clk, Config{Logger: logger, LogEvery: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 90; i++ {
		if err := r.Tick(context.Background()); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Second)
	}
	mu.Lock()
	out := logs.String()
	mu.Unlock()
	if n := strings.Count(out, "metric sample failed"); n != 2 {
		t.Fatalf("%d failure logs in 90 s, want 2:\n%s", n, out)
	}
	if !strings.Contains(out, "suppressed=59") {
		t.Fatalf("second log does not count the 59 suppressed failures:\n%s", out)
	}
}

func TestPolicyChangesArePickedUpOnTheNextTick(t *testing.T) {
	cs := &countingStore{DB: openDB(t)}
	src := &scriptedSource{values: map[string]float64{"a": 1, "b": 2}}
	var mu sync.Mutex
	current := []Target{target("p/a", "a")}
	r, err := NewRecorder(cs, src, TargetsFunc(func() []Target {
		mu.Lock()
		defer mu.Unlock()
		return current
	}), clock.NewFake(t0), Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	current = []Target{target("p/b", "b"), target("p/b", "b")}
	mu.Unlock()
	if err := r.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	src.mu.Lock()
	defer src.mu.Unlock()
	if src.calls["a"] != 1 || src.calls["b"] != 1 {
		t.Fatalf("calls = %v, want a once (first tick) and b once (second tick, deduplicated)", src.calls)
	}
}

func TestRunTicksUntilCancelledWithOneWritePerTick(t *testing.T) {
	cs := &countingStore{DB: openDB(t)}
	src := &scriptedSource{values: map[string]float64{"a": 1, "b": 2}}
	r, err := NewRecorder(cs, src, TargetsFunc(func() []Target {
		return []Target{target("p/a", "a"), target("p/b", "b")}
	}), clock.Real{}, Config{Interval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	for deadline := time.Now().Add(10 * time.Second); cs.writes.Load() < 5; {
		if time.Now().After(deadline) {
			t.Fatal("fewer than 5 ticks in 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v, want nil after cancel", err)
	}
	if w, p := cs.writes.Load(), cs.points.Load(); p != 2*w {
		t.Fatalf("%d points in %d writes, want 2 per write", p, w)
	}
}

func TestMaintainRollsUpCompletedMinutesOnceAndPrunesPastRetention(t *testing.T) {
	db := openDB(t)
	clk := clock.NewFake(t0)
	src := &scriptedSource{values: map[string]float64{"a": 0}}
	r, err := NewRecorder(db, src, TargetsFunc(func() []Target { return []Target{target("p/a", "a")} }),
		clk, Config{RawRetention: 3 * time.Minute, RollupRetention: 5 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	tickFor := func(d time.Duration) {
		for end := clk.Now().Add(d); clk.Now().Before(end); clk.Advance(time.Second) {
			src.mu.Lock()
			src.values["a"] = float64(clk.Now().Sub(t0) / time.Second)
			src.mu.Unlock()
			if err := r.Tick(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	}
	maintain := func() {
		if err := r.Maintain(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	tickFor(90 * time.Second) // samples 0..89 s, now t0+90s
	maintain()
	rs, err := db.RangeRollups("p/a", time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	want := store.Rollup{T: t0, Mean: 29.5, Min: 0, Max: 59, Count: 60}
	if len(rs) != 1 || rs[0] != want {
		t.Fatalf("rollups after 90 s = %+v, want only the first minute %+v", rs, want)
	}
	maintain() // nothing new is complete: no duplicate, no rewrite
	if rs, _ = db.RangeRollups("p/a", time.Time{}, time.Time{}); len(rs) != 1 {
		t.Fatalf("a second maintenance changed rollups: %+v", rs)
	}
	tickFor(90 * time.Second) // samples to 179 s, now t0+180s
	maintain()
	rs, _ = db.RangeRollups("p/a", time.Time{}, time.Time{})
	if len(rs) != 3 || rs[1].T != t0.Add(time.Minute) || rs[1].Mean != 89.5 || rs[2].Max != 179 {
		t.Fatalf("rollups after 180 s = %+v, want minutes 0, 1, 2", rs)
	}
	// Ten minutes later: raw keeps 3 minutes, rollups 5.
	tickFor(10 * time.Minute) // now t0+780s
	maintain()
	raw, _ := db.Range("p/a", time.Time{}, time.Time{})
	if len(raw) == 0 || raw[0].T.Before(clk.Now().Add(-3*time.Minute)) {
		t.Fatalf("raw starts at %v, retention boundary %v", raw[0].T, clk.Now().Add(-3*time.Minute))
	}
	rs, _ = db.RangeRollups("p/a", time.Time{}, time.Time{})
	if len(rs) != 5 || !rs[0].T.Equal(clk.Now().Add(-5*time.Minute)) || !rs[4].T.Equal(clk.Now().Add(-time.Minute).Truncate(time.Minute)) {
		t.Fatalf("rollups %v..%v (%d), want the last 5 minutes before %v", rs[0].T, rs[len(rs)-1].T, len(rs), clk.Now())
	}
	for _, x := range rs {
		if x.Count != 60 {
			t.Fatalf("rollup %v counts %d samples, want 60", x.T, x.Count)
		}
	}
}

func TestRecorderMetricsRegisterOnThePassedRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := NewRecorder(openDB(t), constSource(1), TargetsFunc(func() []Target { return nil }), clock.Real{}, Config{Registerer: reg}); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	for _, n := range []string{"nomadscaler_history_samples_total", "nomadscaler_history_tick_duration_seconds"} {
		if !names[n] {
			t.Errorf("%s not registered; have %v", n, names)
		}
	}
	if _, err := NewRecorder(openDB(t), constSource(1), TargetsFunc(func() []Target { return nil }), clock.Real{}, Config{Registerer: reg}); err == nil {
		t.Error("a second recorder on the same registry registered silently")
	}
}

func TestTickStampsAreRoundedToTheIntervalSoLateTicksStayOnTheirStep(t *testing.T) {
	db := openDB(t)
	clk := clock.NewFake(t0.Add(1004 * time.Millisecond))
	r, err := NewRecorder(db, constSource(1), TargetsFunc(func() []Target { return []Target{target("p/a", "a")} }),
		clk, Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []time.Duration{0, 992 * time.Millisecond, 1010 * time.Millisecond} {
		clk.Advance(d)
		if err := r.Tick(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	got, err := db.Range("p/a", time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	want := []time.Time{t0.Add(time.Second), t0.Add(2 * time.Second), t0.Add(3 * time.Second)}
	if len(got) != len(want) {
		t.Fatalf("%d samples, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if !got[i].T.Equal(want[i]) {
			t.Errorf("sample %d at %v, want %v", i, got[i].T, want[i])
		}
	}
}

func TestARepeatedTickErrorIsLoggedOnceAMinuteWithACount(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	var e errorLog
	at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for i := 0; i < 600; i++ { // a minute of failures at 100 ms, and one more
		e.report(at.Add(time.Duration(i)*100*time.Millisecond), errors.New("disk full"), log)
	}
	e.report(at.Add(time.Minute), errors.New("disk full"), log)
	e.recovered(log)
	lines := strings.Count(buf.String(), "history tick failed")
	if lines != 2 || !strings.Contains(buf.String(), "failures_since_last_log=600") || !strings.Contains(buf.String(), "history ticks work again") {
		t.Errorf("%d error lines, want 2 (the first, then one with the 600 since):\n%s", lines, buf.String())
	}
}

func TestTicksAFakeClockShowsOverrunAreCountedAsMissedIntervalsAndWarnedOnce(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	clk := clock.NewFake(t0)
	reg := prometheus.NewRegistry()
	var logs bytes.Buffer
	r, err := NewRecorder(openDB(t), constSource(1), TargetsFunc(func() []Target { return []Target{target("p/a", "a")} }),
		clk, Config{Registerer: reg, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, step := range []time.Duration{0, time.Second, 4 * time.Second, 3 * time.Second, time.Second} {
		clk.Advance(step)
		if err := r.Tick(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := testutil.ToFloat64(r.m.gaps); got != 5 {
		t.Errorf("missed intervals = %v after gaps of 4 s and 3 s at a 1 s interval, want 3 + 2 = 5", got)
	}
	if n := strings.Count(logs.String(), "history ticks overran"); n != 1 {
		t.Errorf("%d overrun warnings within a minute, want 1:\n%s", n, logs.String())
	}
}

// fakeRangeSource fails the instant samples the test says and answers
// range queries with v = the timestamp's second.
type fakeRangeSource struct {
	mu     sync.Mutex
	fail   bool
	ranges int
}

func (f *fakeRangeSource) Sample(context.Context, Query) (float64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		return 0, context.DeadlineExceeded
	}
	return 1, nil
}

func (f *fakeRangeSource) SampleRange(_ context.Context, qs []Query, from, to time.Time, step time.Duration) []RangeResult {
	f.mu.Lock()
	f.ranges++
	f.mu.Unlock()
	out := make([]RangeResult, len(qs))
	for i := range qs {
		for ts := from; !ts.After(to); ts = ts.Add(step) {
			out[i].Points = append(out[i].Points, store.Sample{T: ts, V: float64(ts.Second())})
		}
	}
	return out
}

func TestPointsAFakeSourceTimedOutOnOrAnOverrunSkippedAreBackfilledFromItsRange(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	clk := clock.NewFake(t0)
	db := openDB(t)
	src := &fakeRangeSource{}
	r, err := NewRecorder(db, src, TargetsFunc(func() []Target { return []Target{target("p/a", "a"), target("p/b", "b")} }),
		clk, Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tick := func(step time.Duration, fail bool) {
		t.Helper()
		clk.Advance(step)
		src.mu.Lock()
		src.fail = fail
		src.mu.Unlock()
		if err := r.Tick(ctx); err != nil {
			t.Fatal(err)
		}
	}
	tick(0, false)             // :00
	tick(time.Second, true)    // :01 times out
	tick(3*time.Second, false) // :04; :02 and :03 never ticked
	r.Backfill(ctx)
	for _, s := range []string{"p/a", "p/b"} {
		pts, err := db.Range(s, t0, t0.Add(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		var secs []int
		for _, p := range pts {
			secs = append(secs, p.T.Second())
		}
		if len(pts) != 5 || pts[1].V != 1 || pts[2].V != 2 || pts[3].V != 3 || pts[0].V != 1 || pts[4].V != 1 {
			t.Errorf("%s after back-fill: seconds %v values %v, want :00-:04 with :01-:03 from the range", s, secs, pts)
		}
	}
	if got := testutil.ToFloat64(r.m.backfilled); got != 6 {
		t.Errorf("back-filled %v points, want 3 per series", got)
	}
	r.Backfill(ctx)
	if src.ranges != 1 {
		t.Errorf("%d range requests, want 1: nothing was left to fill", src.ranges)
	}
}

func TestWhenEverySeriesFailsOnlyTenAreLoggedOneByOneAndTheRestInOneSummaryAMinute(t *testing.T) {
	var logs strings.Builder
	var mu sync.Mutex
	logger := slogTo(&lockedWriter{w: &logs, mu: &mu})
	fail := map[string]error{}
	var targets []Target
	for i := range 100 {
		q := fmt.Sprintf("q%d", i)
		fail[q] = errors.New("slow")
		targets = append(targets, target(fmt.Sprintf("p/%d", i), q))
	}
	clk := clock.NewFake(t0)
	r, err := NewRecorder(&countingStore{DB: openDB(t)}, &scriptedSource{fail: fail}, TargetsFunc(func() []Target { return targets }),
		clk, Config{Logger: logger, LogEvery: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	for range 30 {
		if err := r.Tick(context.Background()); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Second)
	}
	mu.Lock()
	out := logs.String()
	mu.Unlock()
	if n := strings.Count(out, `msg="metric sample failed"`); n != 10 {
		t.Errorf("%d per-series failure lines for 100 failing series in 30 s, want 10", n)
	}
	if n := strings.Count(out, "more series than are logged one by one"); n != 1 || !strings.Contains(out, "series_failures=90") {
		t.Errorf("%d summaries, want 1 counting the other 90 series:\n%s", n, out)
	}
}

// overrunningFakeSource answers 1 and, on the calls the test names, moves
// the fake clock on by overrun before answering: a sample that took longer
// than the interval, as seen by the recorder's clock.
type overrunningFakeSource struct {
	clk       *clock.Fake
	overrun   time.Duration
	overrunOn map[int]bool
	mu        sync.Mutex
	calls     int
}

func (s *overrunningFakeSource) Sample(context.Context, Query) (float64, error) {
	s.mu.Lock()
	s.calls++
	slow := s.overrunOn[s.calls]
	s.mu.Unlock()
	if slow {
		s.clk.Advance(s.overrun)
	}
	return 1, nil
}

func TestARecorderRunningOnAFakeClockCountsAnOverrunTickAsAGapAndWarnsOnce(t *testing.T) {
	clk := clock.NewFake(t0)
	src := &overrunningFakeSource{clk: clk, overrun: 2500 * time.Millisecond, overrunOn: map[int]bool{2: true, 4: true}}
	db := openDB(t)
	var logs strings.Builder
	var mu sync.Mutex
	r, err := NewRecorder(db, src, TargetsFunc(func() []Target { return []Target{target("p/a", "a")} }), clk,
		Config{Interval: time.Second, Logger: slogTo(&lockedWriter{w: &logs, mu: &mu}), LogEvery: time.Minute, MaintainEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	// Five ticks: the second and fourth overrun by 2.5 s, so each is
	// followed by the next boundary after it ends (no catch-up burst) and
	// two boundaries go unsampled.
	for i := 0; i < 5; i++ {
		if !clk.BlockUntil(1, 5*time.Second) {
			t.Fatalf("tick %d: the recorder is not waiting on its clock", i+1)
		}
		now := clk.Now()
		clk.Advance(now.Truncate(time.Second).Add(time.Second).Sub(now))
	}
	// The fifth tick is written once the recorder waits for the sixth.
	if !clk.BlockUntil(1, 5*time.Second) {
		t.Fatal("the recorder did not come back to its clock after the fifth tick")
	}
	got, err := db.Range("p/a", time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	want := []time.Time{t0.Add(time.Second), t0.Add(2 * time.Second), t0.Add(5 * time.Second), t0.Add(6 * time.Second), t0.Add(9 * time.Second)}
	if len(got) != len(want) {
		t.Fatalf("%d points, want %d at %v: %+v", len(got), len(want), want, got)
	}
	for i := range want {
		if !got[i].T.Equal(want[i]) {
			t.Errorf("point %d at %v, want %v", i, got[i].T, want[i])
		}
	}
	if n := testutil.ToFloat64(r.m.gaps); n != 4 {
		t.Errorf("missed intervals = %v after two ticks that overran by 2.5 s at a 1 s interval, want 2 + 2", n)
	}
	mu.Lock()
	out := logs.String()
	mu.Unlock()
	if n := strings.Count(out, "history ticks overran"); n != 1 {
		t.Errorf("%d overrun warnings within a minute, want 1:\n%s", n, out)
	}
	if !strings.Contains(out, "missed=2") {
		t.Errorf("the overrun warning does not count the 2 intervals the first overrun missed:\n%s", out)
	}
}

func TestATicksPointsAreHandedToObserveOnceStoredAndNotWhenTheWriteFails(t *testing.T) {
	cs := &countingStore{DB: openDB(t)}
	src := &scriptedSource{values: map[string]float64{"qa": 1.5, "qb": 2.5}}
	targets := []Target{target("ns/job/web/a", "qa"), target("ns/job/web/b", "qb")}
	var seen [][]store.Point
	r, err := NewRecorder(cs, src, TargetsFunc(func() []Target { return targets }), clock.NewFake(t0), Config{
		Observe: func(pts []store.Point) {
			// Stored before it is told: a reader it wakes finds them.
			for _, p := range pts {
				if got, err := cs.Range(p.Series, p.T, p.T.Add(time.Second)); err != nil || len(got) != 1 {
					t.Errorf("%s told before it was stored: %v, %v", p.Series, got, err)
				}
			}
			seen = append(seen, pts)
		}})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 1 || len(seen[0]) != 2 || seen[0][0].V != 1.5 || seen[0][1].V != 2.5 {
		t.Fatalf("observed %+v, want the tick's two points", seen)
	}
	if err := cs.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Tick(context.Background()); err == nil {
		t.Fatal("a tick on a closed database wrote its points")
	}
	if len(seen) != 1 {
		t.Errorf("points that were not stored were observed: %+v", seen[1:])
	}
}

// releaseCounting counts ReleaseMapped calls and makes them.
type releaseCounting struct {
	*store.DB
	releases int
}

func (c *releaseCounting) ReleaseMapped() error {
	c.releases++
	return c.DB.ReleaseMapped()
}

func TestTicksUnmapTheStoresPagesEveryTwoSecondsAndMaintainOnceItsRoundIsDone(t *testing.T) {
	st := &releaseCounting{DB: openDB(t)}
	clk := clock.NewFake(t0)
	src := &scriptedSource{values: map[string]float64{"a": 1}}
	r, err := NewRecorder(st, src, TargetsFunc(func() []Target { return []Target{target("p/a", "a")} }), clk, Config{})
	if err != nil {
		t.Fatal(err)
	}
	for range 90 {
		if err := r.Tick(context.Background()); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Second)
	}
	// Ticks at 0, 2, ..., 88 s.
	if st.releases != 45 {
		t.Fatalf("%d releases in 90 one-second ticks, want 45", st.releases)
	}
	if err := r.Maintain(context.Background()); err != nil {
		t.Fatal(err)
	}
	// One after the round's one batch of rollups, one once it is done.
	if st.releases != 47 {
		t.Fatalf("%d releases in a round, want two", st.releases-45)
	}
	if rs, err := st.RangeRollups("p/a", time.Time{}, time.Time{}); err != nil || len(rs) != 1 {
		t.Fatalf("rollups after the round = %v, %v; want the first minute", rs, err)
	}
}

func TestTheLastSampleOfASeriesNoLongerRecordedIsForgotten(t *testing.T) {
	cs := &countingStore{DB: openDB(t)}
	src := &scriptedSource{values: map[string]float64{"a": 1, "b": 2}}
	var mu sync.Mutex
	current := []Target{target("p/a", "a"), target("p/b", "b")}
	clk := clock.NewFake(t0)
	r, err := NewRecorder(cs, src, TargetsFunc(func() []Target {
		mu.Lock()
		defer mu.Unlock()
		return current
	}), clk, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := r.LastSample("p/b"); !ok {
		t.Fatal("p/b has no last sample after a tick that recorded it")
	}
	// p/b's policy is removed.
	mu.Lock()
	current = []Target{target("p/a", "a")}
	mu.Unlock()
	clk.Advance(time.Second)
	if err := r.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := r.LastSample("p/b"); ok {
		t.Error("p/b's last sample is kept after its policy went")
	}
	if _, v, ok := r.LastSample("p/a"); !ok || v != 1 {
		t.Errorf("p/a's last sample = %v, %v; want 1", v, ok)
	}
}
