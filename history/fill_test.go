package history

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/nomadscalerd/nomadscalerd/clock"
	"github.com/nomadscalerd/nomadscalerd/store"
)

// fakePastSource is a fake range-capable source: instant samples are 1,
// a range has a point every step valued at its Unix second, and queries
// of source "apm" have no past (as nomad-apm). It records each range
// request.
type fakePastSource struct {
	mu       sync.Mutex
	requests []fakeRangeRequest
}

type fakeRangeRequest struct {
	from, to time.Time
	step     time.Duration
	queries  int
}

func (f *fakePastSource) Sample(context.Context, Query) (float64, error) { return 1, nil }

func (f *fakePastSource) SampleRange(_ context.Context, qs []Query, from, to time.Time, step time.Duration) []RangeResult {
	f.mu.Lock()
	f.requests = append(f.requests, fakeRangeRequest{from: from, to: to, step: step, queries: len(qs)})
	f.mu.Unlock()
	out := make([]RangeResult, len(qs))
	for i, q := range qs {
		if q.Source == "apm" {
			out[i].Err = ErrNoRange
			continue
		}
		for ts := from; !ts.After(to); ts = ts.Add(step) {
			out[i].Points = append(out[i].Points, store.Sample{T: ts, V: float64(ts.Unix())})
		}
	}
	return out
}

func TestAGainedSeriesGetsItsHistoryWindowFromAFakeRangeSourceAndStoredPointsAreKeptNotDuplicated(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	clk := clock.NewFake(t0)
	db := openDB(t)
	// p/a was recorded here before (its shard was ours once): ten
	// minutes of it are stored, and ten points 100 s apart before them
	// (ticks that worked while the source was flaky), valued -1.
	var before []store.Point
	stored := func(ts time.Time) bool {
		off := t0.Sub(ts)
		return off > 20*time.Minute && off <= 30*time.Minute || off >= 2100*time.Second && off <= 3000*time.Second && off%(100*time.Second) == 0
	}
	for ts := t0.Add(-time.Hour); ts.Before(t0); ts = ts.Add(time.Second) {
		if stored(ts) {
			before = append(before, store.Point{Series: "p/a", T: ts, V: -1})
		}
	}
	if len(before) != 610 {
		t.Fatalf("%d points stored before, want 610", len(before))
	}
	if err := db.WritePoints(before); err != nil {
		t.Fatal(err)
	}
	src := &fakePastSource{}
	targets := []Target{
		{Series: "p/a", Query: Query{Source: "s", Query: "a"}, Window: time.Hour},
		{Series: "p/b", Query: Query{Source: "s", Query: "b"}, Window: time.Hour},
		{Series: "p/apm", Query: Query{Source: "apm", Query: "cpu"}, Window: time.Hour},
	}
	var logs strings.Builder
	var mu sync.Mutex
	r, err := NewRecorder(db, src, TargetsFunc(func() []Target { return targets }), clk,
		Config{FillMaxPoints: 1000, Logger: slogTo(&lockedWriter{w: &logs, mu: &mu})})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := r.Tick(ctx); err != nil { // gains all three
		t.Fatal(err)
	}
	filled := r.FillGained(ctx)

	for _, s := range []string{"p/a", "p/b"} {
		pts, err := db.Range(s, t0.Add(-time.Hour), t0)
		if err != nil {
			t.Fatal(err)
		}
		if len(pts) != 3600 {
			t.Fatalf("%s has %d points in the hour before it was gained, want one a second: 3600", s, len(pts))
		}
		for i, p := range pts {
			want := float64(p.T.Unix())
			if s == "p/a" && stored(p.T) {
				want = -1 // stored before: kept
			}
			if !p.T.Equal(t0.Add(time.Duration(i-3600)*time.Second)) || p.V != want {
				t.Fatalf("%s point %d = %+v, want %v at %v", s, i, p, want, t0.Add(time.Duration(i-3600)*time.Second))
			}
		}
	}
	// p/a lacked 2990 points and p/b 3600; nothing was written over.
	if filled != 6590 {
		t.Errorf("FillGained wrote %d points, want 2990 + 3600", filled)
	}
	if got := testutil.ToFloat64(r.m.filled); got != 6590 {
		t.Errorf("gained_filled_total = %v, want 6590", got)
	}
	src.mu.Lock()
	reqs := append([]fakeRangeRequest(nil), src.requests...)
	src.mu.Unlock()
	for _, q := range reqs {
		if n := int(q.to.Sub(q.from)/q.step) + 1; n > 1000 || q.step != time.Second {
			t.Errorf("a range request asks %d points at %s per series (%s to %s), want at most FillMaxPoints = 1000 at the 1 s interval", n, q.step, q.from, q.to)
		}
	}
	// An hour cut into slots of 1,000 s is 4 or 5 spans a series; p/a's
	// stored ten minutes can split one slot's span in two. Series missing
	// the same span share its request.
	if len(reqs) > 7 {
		t.Errorf("%d range requests for two series' hour in slots of 1,000 points, want at most 7", len(reqs))
	}

	// The next tick gains nothing: nothing more is asked or written.
	clk.Advance(time.Second)
	if err := r.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if n := r.FillGained(ctx); n != 0 {
		t.Errorf("a tick that gained nothing led to %d more back-filled points", n)
	}
	src.mu.Lock()
	again := len(src.requests)
	src.mu.Unlock()
	if again != len(reqs) {
		t.Errorf("%d range requests after a tick that gained nothing, want %d", again, len(reqs))
	}
	if pts, err := db.Range("p/apm", t0.Add(-time.Hour), t0); err != nil || len(pts) != 0 {
		t.Errorf("p/apm before it was gained: %d points, %v; want none (its source has no past)", len(pts), err)
	}
	if n := strings.Count(logs.String(), "cannot be back-filled"); n != 1 || !strings.Contains(logs.String(), "source=apm") {
		t.Errorf("%d lines say the apm checks cannot be back-filled, want 1 naming the source:\n%s", n, logs.String())
	}
}

func TestASeriesLostAndGainedAgainHasTheGapItWasAwayBackFilled(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	clk := clock.NewFake(t0)
	db := openDB(t)
	src := &fakePastSource{}
	held := true
	var mu sync.Mutex
	r, err := NewRecorder(db, src, TargetsFunc(func() []Target {
		mu.Lock()
		defer mu.Unlock()
		if !held {
			return nil
		}
		return []Target{{Series: "p/a", Query: Query{Source: "s", Query: "a"}, Window: 10 * time.Minute}}
	}), clk, Config{Logger: slogTo(&strings.Builder{})})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tick := func() {
		t.Helper()
		if err := r.Tick(ctx); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Second)
	}
	tick()
	if n := r.FillGained(ctx); n != 600 {
		t.Fatalf("first gain filled %d points, want the 600 of the 10-minute window", n)
	}
	for range 59 {
		tick()
	}
	// Another replica holds it for two minutes, then it comes back.
	mu.Lock()
	held = false
	mu.Unlock()
	tick()
	clk.Advance(2*time.Minute - time.Second)
	mu.Lock()
	held = true
	mu.Unlock()
	back := clk.Now()
	tick()
	if n := r.FillGained(ctx); n != 120 {
		t.Errorf("second gain filled %d points, want the 120 of the two minutes it was away", n)
	}
	pts, err := db.Range("p/a", back.Add(-10*time.Minute), back.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if len(pts) != 601 {
		t.Errorf("%d points in the window before it came back and its first tick, want 601", len(pts))
	}
}

func TestMissingSpansCutTheGapsIntoSlotsSharedByEverySeries(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC) // a multiple of 10 s
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	// Stored: :02 and :03, and :12. Slots of 10 points at 1 s.
	got := missingSpans(at(0), at(25), time.Second, []time.Time{at(2), at(3), at(12)}, 10)
	want := []span{{at(0), at(10)}, {at(10), at(20)}, {at(20), at(25)}}
	if len(got) != len(want) {
		t.Fatalf("spans = %v, want %v", got, want)
	}
	for i := range want {
		if !got[i].from.Equal(want[i].from) || !got[i].to.Equal(want[i].to) {
			t.Fatalf("spans = %v, want %v", got, want)
		}
	}
	if got := missingSpans(at(0), at(10), time.Second, []time.Time{at(0), at(1), at(2), at(3), at(4), at(5), at(6), at(7), at(8), at(9)}, 10); len(got) != 0 {
		t.Errorf("a fully stored range has spans %v, want none", got)
	}
	// From the slot's middle: the span starts at the first missing time.
	if got := missingSpans(at(4), at(8), time.Second, []time.Time{at(4)}, 10); len(got) != 1 || !got[0].from.Equal(at(5)) || !got[0].to.Equal(at(8)) {
		t.Errorf("spans = %v, want [:05, :08)", got)
	}
}

func TestARunningRecorderFillsAGainedSeriesBesideItsTicksFromAFakeRangeSource(t *testing.T) {
	clk := clock.NewFake(t0)
	db := openDB(t)
	src := &fakePastSource{}
	r, err := NewRecorder(db, src, TargetsFunc(func() []Target {
		return []Target{{Series: "p/a", Query: Query{Source: "s", Query: "a"}, Window: 10 * time.Minute}}
	}), clk, Config{Interval: time.Second, MaintainEvery: time.Hour, Logger: slogTo(&strings.Builder{})})
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
	// The tick loop and the back-fill loop wait on the clock.
	for i := range 3 {
		if !clk.BlockUntil(2, 5*time.Second) {
			t.Fatalf("tick %d: the recorder is not waiting on its clock", i+1)
		}
		now := clk.Now()
		clk.Advance(now.Truncate(time.Second).Add(time.Second).Sub(now))
	}
	for deadline := time.Now().Add(10 * time.Second); testutil.ToFloat64(r.m.filled) < 600; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%v points back-filled after 10 s, want the 600 of the window before the first tick", testutil.ToFloat64(r.m.filled))
		}
	}
	first := t0.Add(time.Second) // the first tick's time
	pts, err := db.Range("p/a", first.Add(-10*time.Minute), first)
	if err != nil {
		t.Fatal(err)
	}
	if len(pts) != 600 || pts[0].V != float64(first.Add(-10*time.Minute).Unix()) {
		t.Errorf("%d points in the window before the first tick, want 600 from the range source", len(pts))
	}
	if got := testutil.ToFloat64(r.m.filled); got != 600 {
		t.Errorf("gained_filled_total = %v, want 600: the later ticks gained nothing", got)
	}
}

func TestGainingManySeriesAsksAFakeRangeSourceForAtMostFiftySeriesAndAHundredThousandPointsARequest(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	db := openDB(t)
	src := &fakePastSource{}
	var targets []Target
	for i := range 120 {
		targets = append(targets, Target{Series: fmt.Sprintf("p/%03d", i), Query: Query{Source: "s", Query: fmt.Sprint(i)}, Window: 2 * time.Hour})
	}
	r, err := NewRecorder(db, src, TargetsFunc(func() []Target { return targets }), clock.NewFake(t0), Config{Logger: slogTo(&strings.Builder{})})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := r.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if n := r.FillGained(ctx); n != 120*7200 {
		t.Errorf("back-filled %d points, want 120 series x 7,200", n)
	}
	src.mu.Lock()
	defer src.mu.Unlock()
	for _, q := range src.requests {
		points := int(q.to.Sub(q.from)/q.step) + 1
		if q.queries > 50 || points > 10000 || q.queries*points > 100_000 {
			t.Errorf("a range request for %d series x %d points, want at most 50 series, 10,000 points a series and 100,000 in all", q.queries, points)
		}
	}
	// Two hours cut at 10,000-point slots are one or two spans a series,
	// the same for all; at most 27 series of 3,600 points or more fit in
	// 100,000 points: about 2 x 120 / 27 requests (per batch of 50).
	if len(src.requests) > 12 {
		t.Errorf("%d range requests for 120 series' two hours, want at most 12", len(src.requests))
	}
}

// flakyPastSource is a fake range source whose range requests fail while
// failures lasts (counted down per request), then answer as
// fakePastSource does.
type flakyPastSource struct {
	fakePastSource
	failures int
	calls    int
}

func (f *flakyPastSource) SampleRange(ctx context.Context, qs []Query, from, to time.Time, step time.Duration) []RangeResult {
	f.mu.Lock()
	f.calls++
	fail := f.failures > 0
	if fail {
		f.failures--
	}
	f.mu.Unlock()
	if !fail {
		return f.fakePastSource.SampleRange(ctx, qs, from, to, step)
	}
	out := make([]RangeResult, len(qs))
	for i := range out {
		out[i].Err = fmt.Errorf("fake: connection refused")
	}
	return out
}

func (f *flakyPastSource) rangeCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// seriesA is the one target of the flaky back-fill tests.
var seriesA = Target{Series: "p/a", Query: Query{Source: "s", Query: "a"}, Window: 10 * time.Minute}

// flakyFill is a recorder on a fresh database and a fake clock, over a
// fake range source failing its first failures requests, after the first
// tick gained targets' series; logs is what it logged.
type flakyFill struct {
	r    *Recorder
	src  *flakyPastSource
	clk  *clock.Fake
	db   *store.DB
	logs func() string
}

func newFlakyFill(t *testing.T, failures int, targets func() []Target) flakyFill {
	t.Helper()
	f := flakyFill{src: &flakyPastSource{failures: failures}, clk: clock.NewFake(t0), db: openDB(t)}
	var logs strings.Builder
	var mu sync.Mutex
	var err error
	f.r, err = NewRecorder(f.db, f.src, TargetsFunc(targets), f.clk, Config{Logger: slogTo(&lockedWriter{w: &logs, mu: &mu})})
	if err != nil {
		t.Fatal(err)
	}
	f.logs = func() string {
		mu.Lock()
		defer mu.Unlock()
		return logs.String()
	}
	if err := f.r.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestAFailedBackFillOfAGainedSeriesIsRetriedAfterABackoffWithAFakeSourceThatRecovers(t *testing.T) {
	f := newFlakyFill(t, 2, func() []Target { return []Target{seriesA} })
	r, src, clk, db, ctx := f.r, f.src, f.clk, f.db, context.Background()
	if n := r.FillGained(ctx); n != 0 || src.rangeCalls() != 1 {
		t.Fatalf("first back-fill wrote %d points in %d requests, want a failed request and none", n, src.rangeCalls())
	}
	at, ok := r.nextFillRetry()
	if !ok || !at.Equal(t0.Add(fillRetryFirst)) {
		t.Fatalf("next retry at %v (%v), want %v", at, ok, t0.Add(fillRetryFirst))
	}
	// Not due yet: nothing is asked.
	clk.Advance(fillRetryFirst - time.Second)
	if n := r.FillGained(ctx); n != 0 || src.rangeCalls() != 1 {
		t.Fatalf("a back-fill before the retry is due wrote %d points in %d requests, want no request", n, src.rangeCalls())
	}
	// Due: fails again, and the next wait doubles.
	clk.Advance(time.Second)
	if n := r.FillGained(ctx); n != 0 || src.rangeCalls() != 2 {
		t.Fatalf("second attempt wrote %d points in %d requests, want a failed second request", n, src.rangeCalls())
	}
	if at, _ := r.nextFillRetry(); !at.Equal(clk.Now().Add(2 * fillRetryFirst)) {
		t.Fatalf("third attempt at %v, want %v", at, clk.Now().Add(2*fillRetryFirst))
	}
	clk.Advance(2 * fillRetryFirst)
	if n := r.FillGained(ctx); n != 600 {
		t.Fatalf("third attempt wrote %d points, want the 600 of the window before the first tick", n)
	}
	if _, ok := r.nextFillRetry(); ok {
		t.Error("a retry is still queued after the back-fill succeeded")
	}
	pts, err := db.Range("p/a", t0.Add(-10*time.Minute), t0)
	if err != nil {
		t.Fatal(err)
	}
	if len(pts) != 600 {
		t.Errorf("%d points stored in the window, want 600", len(pts))
	}
	if logs := f.logs(); !strings.Contains(logs, "retried=1") {
		t.Errorf("the failure was not logged as retried:\n%s", logs)
	}
}

func TestABackFillThatKeepsFailingIsGivenUpAfterFiveAttemptsWithAFakeSource(t *testing.T) {
	f := newFlakyFill(t, 1000, func() []Target { return []Target{seriesA} })
	r, src, clk, ctx := f.r, f.src, f.clk, context.Background()
	for i := range 10 {
		r.FillGained(ctx)
		at, ok := r.nextFillRetry()
		if !ok {
			if i+1 != fillAttempts {
				t.Fatalf("given up after %d attempts, want %d", i+1, fillAttempts)
			}
			break
		}
		clk.Advance(at.Sub(clk.Now()))
	}
	if got := src.rangeCalls(); got != fillAttempts {
		t.Errorf("%d range requests, want %d", got, fillAttempts)
	}
	if logs := f.logs(); !strings.Contains(logs, "given_up=1") {
		t.Errorf("giving up was not logged:\n%s", logs)
	}
}

func TestARetryOfASeriesNoLongerSampledIsDroppedWithAFakeSource(t *testing.T) {
	targets := []Target{seriesA}
	var mu sync.Mutex
	f := newFlakyFill(t, 1, func() []Target {
		mu.Lock()
		defer mu.Unlock()
		return targets
	})
	r, src, clk, ctx := f.r, f.src, f.clk, context.Background()
	r.FillGained(ctx)
	// The shard moved away: the next tick samples nothing.
	mu.Lock()
	targets = nil
	mu.Unlock()
	clk.Advance(fillRetryFirst)
	if err := r.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if n := r.FillGained(ctx); n != 0 || src.rangeCalls() != 1 {
		t.Errorf("a retry of a lost series wrote %d points in %d requests, want none asked", n, src.rangeCalls())
	}
	if _, ok := r.nextFillRetry(); ok {
		t.Error("the lost series' retry is still queued")
	}
}
