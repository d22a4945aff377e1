package history

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/nomadscalerd/nomadscalerd/clock"
)

// Missed grid times are matched to the range's points by millisecond: at
// a sample interval under a second (the daemon allows 100 ms), matching by
// second wrote every grid time of a missed point's second, over the points
// the ticks had stored.
func TestABackfillAtASubSecondIntervalWritesOnlyTheMissedPoints(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	clk := clock.NewFake(t0)
	db := openDB(t)
	src := &fakePastSource{} // instant samples are 1; range points their Unix second
	r, err := NewRecorder(db, src, TargetsFunc(func() []Target {
		return []Target{{Series: "p/a", Query: Query{Source: "s", Query: "a"}}}
	}), clk, Config{Interval: 500 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := r.Tick(ctx); err != nil { // 12:00:00.0
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	if err := r.Tick(ctx); err != nil { // 12:00:01.0; 12:00:00.5 missed
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	if err := r.Tick(ctx); err != nil { // 12:00:02.0; 12:00:01.5 missed
		t.Fatal(err)
	}
	r.Backfill(ctx)
	if got := testutil.ToFloat64(r.m.backfilled); got != 2 {
		t.Errorf("back-filled %v points for two missed grid times, want 2", got)
	}
	pts, err := db.Range("p/a", t0, t0.Add(2500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pts {
		if p.T.Nanosecond() == 0 && p.V != 1 {
			t.Fatalf("the tick's point at %s was written over with %v by the back-fill; points %+v", p.T.Format("15:04:05.0"), p.V, pts)
		}
	}
}
