package history

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nomadscalerd/nomadscalerd/clock"
	"github.com/nomadscalerd/nomadscalerd/history/promtest"
	"github.com/nomadscalerd/nomadscalerd/store"
)

// TestGainedSeriesAreBackFilledFromARealPrometheusInRangeRequestsOfBoundedPoints
// runs Prometheus scraping two gauges for about 20 s, then a recorder
// gains both series with a 30 s window and requests of at most 7 points.
func TestGainedSeriesAreBackFilledFromARealPrometheusInRangeRequestsOfBoundedPoints(t *testing.T) {
	promtest.Require(t)
	reg := prometheus.NewRegistry()
	level := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "fill_level", Help: "test"}, []string{"svc"})
	reg.MustRegister(level)
	level.WithLabelValues("s0").Set(10)
	level.WithLabelValues("s1").Set(20)
	base := promtest.ScrapeRegistry(t, reg)
	promtest.WaitQuery(t, base, `count_over_time(fill_level{svc="s1"}[30s]) >= 20`, 90*time.Second)
	src, err := NewPrometheus(base, slog.Default())
	if err != nil {
		t.Fatal(err)
	}

	db := openDB(t)
	// s0 was recorded here a few seconds ago (valued -1): kept as it is.
	kept := time.Now().Truncate(time.Second).Add(-5 * time.Second)
	if err := db.WritePoints([]store.Point{{Series: "p/s0", T: kept, V: -1}}); err != nil {
		t.Fatal(err)
	}
	const window = 30 * time.Second
	rec, err := NewRecorder(db, Sources{SourcePrometheus: src}, TargetsFunc(func() []Target {
		return []Target{
			{Series: "p/s0", Query: Query{Source: SourcePrometheus, Query: `sum(fill_level{svc="s0"})`}, Window: window},
			{Series: "p/s1", Query: Query{Source: SourcePrometheus, Query: `sum(fill_level{svc="s1"})`}, Window: window},
		}
	}), clock.Real{}, Config{FillMaxPoints: 7, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	before := src.Requests()
	at := time.Now().Round(time.Second)
	if err := rec.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	ticked := src.Requests()
	filled := rec.FillGained(ctx)
	requests := src.Requests() - ticked
	t.Logf("back-filled %d points in %d range requests (the tick took %d)", filled, requests, ticked-before)

	for s, want := range map[string]float64{"p/s0": 10, "p/s1": 20} {
		pts, err := db.Range(s, at.Add(-window), at)
		if err != nil {
			t.Fatal(err)
		}
		// Prometheus had 20 scrapes (some of them bunched on a loaded
		// host) and answers every second since the first (an instant
		// lookup reaches 5 minutes back).
		if len(pts) < 15 {
			t.Errorf("%s has %d points in the %s before it was gained, want at least 15", s, len(pts), window)
		}
		for i, p := range pts {
			w := want
			if s == "p/s0" && p.T.Equal(kept) {
				w = -1
			}
			if p.V != w || p.T.Nanosecond() != 0 || (i > 0 && !p.T.After(pts[i-1].T)) {
				t.Fatalf("%s point %d = %+v, want %v on a whole second after the one before", s, i, p, w)
			}
		}
	}
	// 30 points a series in requests of 7: 5 or 6 spans, each asked for
	// both series at once (s0's stored point lies inside a span).
	if requests < 5 || requests > 7 {
		t.Errorf("%d range requests, want 5 to 7: 30 s in slots of 7 points, both series in one", requests)
	}
	if n := rec.FillGained(ctx); n != 0 {
		t.Errorf("a second FillGained without a gained series wrote %d points", n)
	}
}
