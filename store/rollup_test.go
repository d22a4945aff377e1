package store_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/nomadscalerd/nomadscalerd/history"
	"github.com/nomadscalerd/nomadscalerd/store"
)

func TestRollUpSummarisesChunkedHistoryAndTheOpenWindowMinuteByMinute(t *testing.T) {
	d, err := store.Open(filepath.Join(t.TempDir(), "r.db"), store.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	start := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	// 5 minutes at 1 s, values 0..59 each minute: two sealed windows and
	// one open.
	for i := range 300 {
		if err := d.WritePoints([]store.Point{{Series: "p/m", T: start.Add(time.Duration(i) * time.Second), V: float64(i % 60)}}); err != nil {
			t.Fatal(err)
		}
	}
	n, err := history.RollUp(context.Background(), d, time.Minute, start.Add(5*time.Minute))
	if err != nil || n != 5 {
		t.Fatalf("rolled up %d, %v; want 5 minutes", n, err)
	}
	rs, err := d.RangeRollups("p/m", time.Time{}, time.Time{})
	if err != nil || len(rs) != 5 {
		t.Fatalf("rollups = %+v, %v", rs, err)
	}
	for i, r := range rs {
		if !r.T.Equal(start.Add(time.Duration(i)*time.Minute)) || r.Count != 60 || r.Min != 0 || r.Max != 59 || r.Mean != 29.5 {
			t.Errorf("minute %d = %+v, want 60 samples of 0..59", i, r)
		}
	}
	// Nothing new is complete: a second pass writes nothing.
	if n, err := history.RollUp(context.Background(), d, time.Minute, start.Add(5*time.Minute)); err != nil || n != 0 {
		t.Fatalf("second pass rolled up %d, %v; want 0", n, err)
	}
}
