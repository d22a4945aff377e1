package history

import (
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/nomadscalerd/nomadscalerd/clock"
	"github.com/nomadscalerd/nomadscalerd/history/promtest"
)

// TestPrometheusSourceReadsARateFromARealServer runs Prometheus scraping an
// in-test exporter whose counter grows by 100 per second.
func TestPrometheusSourceReadsARateFromARealServer(t *testing.T) {
	promtest.Require(t)
	reg := prometheus.NewRegistry()
	requests := prometheus.NewCounter(prometheus.CounterOpts{Name: "test_requests_total", Help: "test"})
	byCode := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "test_responses_total", Help: "test"}, []string{"code"})
	reg.MustRegister(requests, byCode)
	byCode.WithLabelValues("200").Add(5)
	byCode.WithLabelValues("500").Add(1)
	exporter := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer exporter.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		tk := time.NewTicker(10 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
				requests.Inc()
			}
		}
	}()

	base := promtest.StartPrometheus(t, []string{strings.TrimPrefix(exporter.URL, "http://")})
	const rate = "rate(test_requests_total[5s])"
	// rate() extrapolates from the scrapes inside its window; wait until
	// the window is full so the value is the steady rate.
	promtest.WaitQuery(t, base, "count_over_time(test_requests_total[5s]) >= 5", 60*time.Second)

	src, err := NewPrometheus(base, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	v, err := src.Sample(ctx, Query{Source: SourcePrometheus, Query: rate})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s = %.2f", rate, v)
	// The ticker aims at 100/s; a loaded machine delays ticks, so accept
	// anything from half to a little over the target.
	if v < 50 || v > 110 {
		t.Fatalf("%s = %v, want about 100", rate, v)
	}
	if v, err := src.Sample(ctx, Query{Query: "scalar(sum(test_responses_total))"}); err != nil || v != 6 {
		t.Fatalf("scalar = %v, %v; want 6", v, err)
	}
	if _, err := src.Sample(ctx, Query{Query: "rate(test_missing_total[5s])"}); !errors.Is(err, ErrNoData) {
		t.Fatalf("empty result err = %v, want ErrNoData", err)
	}
	if _, err := src.Sample(ctx, Query{Query: "test_responses_total"}); err == nil || !strings.Contains(err.Error(), "2 series") {
		t.Fatalf("two-series result err = %v, want a refusal", err)
	}
	if _, err := src.Sample(ctx, Query{Query: "rate(("}); err == nil {
		t.Fatal("a bad query did not fail")
	}

	// The recorder stores what the real server answers, one write per tick.
	cs := &countingStore{DB: openDB(t)}
	rec, err := NewRecorder(cs, Sources{SourcePrometheus: src}, TargetsFunc(func() []Target {
		return []Target{
			{Series: "default/web/frontend/requests", Query: Query{Source: SourcePrometheus, Query: rate}},
			{Series: "default/web/frontend/missing", Query: Query{Source: SourcePrometheus, Query: "test_missing"}},
		}
	}), clock.Real{}, Config{Interval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- rec.Run(rctx) }()
	for deadline := time.Now().Add(30 * time.Second); cs.writes.Load() < 3; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("recorder wrote fewer than 3 ticks in 30 s")
		}
	}
	rcancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got, err := cs.Range("default/web/frontend/requests", time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(got)) != cs.writes.Load() || cs.points.Load() != cs.writes.Load() {
		t.Fatalf("%d samples, %d points in %d writes: want one point per write", len(got), cs.points.Load(), cs.writes.Load())
	}
	for _, s := range got {
		if s.V < 50 || s.V > 110 {
			t.Fatalf("recorded %v at %v, want about 100", s.V, s.T)
		}
	}
	if _, _, ok := rec.LastSample("default/web/frontend/missing"); ok {
		t.Fatal("a query without data has a last sample")
	}
}
