package history

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nomadscalerd/nomadscalerd/clock"
)

// downPastSource is fakePastSource whose range requests fail while down.
type downPastSource struct {
	fakePastSource
	down atomic.Bool
}

func (f *downPastSource) SampleRange(ctx context.Context, qs []Query, from, to time.Time, step time.Duration) []RangeResult {
	if f.down.Load() {
		out := make([]RangeResult, len(qs))
		for i := range out {
			out[i].Err = errors.New("connection refused")
		}
		return out
	}
	return f.fakePastSource.SampleRange(ctx, qs, from, to, step)
}

// A gained series' window is back-filled beside the ticks and retried
// after a failure (Prometheus restarting with the job). RollUp meanwhile
// rolls up the minutes the ticks wrote and goes on from each series' last
// rollup, so a window filled after it lies wholly before that: the fill
// rolls its own minutes up, or its hour would be gone from the month of
// history once raw retention passed.
func TestAGainedSeriesWindowFilledAfterARollupIsRolledUpToo(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	clk := clock.NewFake(t0)
	db := openDB(t)
	src := &downPastSource{}
	src.down.Store(true)
	targets := []Target{{Series: "p/b", Query: Query{Source: "s", Query: "b"}, Window: time.Hour}}
	r, err := NewRecorder(db, src, TargetsFunc(func() []Target { return targets }), clk, Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := r.Tick(ctx); err != nil { // gains p/b
		t.Fatal(err)
	}
	if n := r.FillGained(ctx); n != 0 { // the source is down: retried in 30 s
		t.Fatalf("filled %d points from a source that is down", n)
	}
	for range 90 {
		clk.Advance(time.Second)
		if err := r.Tick(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Maintain(ctx); err != nil { // rolls up 12:00
		t.Fatal(err)
	}
	src.down.Store(false)
	if n := r.FillGained(ctx); n != 3600 {
		t.Fatalf("the retry filled %d points, want the hour before the gain: 3600", n)
	}
	clk.Advance(time.Minute)
	if err := r.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	rs, err := db.RangeRollups("p/b", t0.Add(-time.Hour), t0)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 60 {
		t.Fatalf("%d rollups of the back-filled hour before the gain, want 60", len(rs))
	}
}
