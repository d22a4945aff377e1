package history

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nomadscalerd/nomadscalerd/history/promtest"
)

func TestABatchOfATickAnswersEachQueryAsAloneWithAFewRequestsToARealPrometheus(t *testing.T) {
	promtest.Require(t)
	reg := prometheus.NewRegistry()
	byJob := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "batch_requests_total", Help: "test"}, []string{"svc", "code"})
	reg.MustRegister(byJob)
	const jobs = 120
	for i := range jobs {
		byJob.WithLabelValues(fmt.Sprintf("j%d", i), "200").Add(float64(i))
	}
	byJob.WithLabelValues("j0", "500").Add(7)
	base := promtest.ScrapeRegistry(t, reg)
	promtest.WaitQuery(t, base, "count(batch_requests_total) >= 121", 60*time.Second)
	src, err := NewPrometheus(base, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	var qs []Query
	for i := range jobs {
		q := fmt.Sprintf(`sum(batch_requests_total{svc="j%d",code="200"})`, i)
		qs = append(qs, Query{Source: SourcePrometheus, Query: q}, Query{Source: SourcePrometheus, Query: q}) // two checks, one query
	}
	qs = append(qs,
		Query{Source: SourcePrometheus, Query: "scalar(sum(batch_requests_total{code=\"500\"}))"}, // a scalar cannot be labelled
		Query{Source: SourcePrometheus, Query: "rate(("},                                          // broken
		Query{Source: SourcePrometheus, Query: `batch_requests_total{svc="j0"}`},                  // two series
		Query{Source: SourcePrometheus, Query: `sum(batch_missing_total)`},                        // nothing
	)
	ctx := context.Background()
	before := src.Requests()
	res := Sources{SourcePrometheus: src}.SampleBatch(ctx, qs, 16)
	first := src.Requests() - before
	for i := range jobs {
		for _, k := range []int{2 * i, 2*i + 1} {
			if res[k].Err != nil || res[k].V != float64(i) {
				t.Errorf("query %d (%s) = %v, %v; want %d", k, qs[k].Query, res[k].V, res[k].Err, i)
			}
		}
	}
	n := 2 * jobs
	if res[n].Err != nil || res[n].V != 7 {
		t.Errorf("scalar query = %v, %v; want 7", res[n].V, res[n].Err)
	}
	if res[n+1].Err == nil {
		t.Error("a broken query did not fail")
	}
	if res[n+2].Err == nil || !strings.Contains(res[n+2].Err.Error(), "2 series") {
		t.Errorf("two-series query: %v, want the refusal it gets alone", res[n+2].Err)
	}
	if !errors.Is(res[n+3].Err, ErrNoData) {
		t.Errorf("empty query: %v, want ErrNoData", res[n+3].Err)
	}
	// 124 distinct queries: 3 joined requests, plus the halvings that
	// isolate the two that cannot be joined.
	if first > 30 {
		t.Errorf("%d requests for 244 checks on the first tick, want at most 30", first)
	}
	before = src.Requests()
	_ = Sources{SourcePrometheus: src}.SampleBatch(ctx, qs, 16)
	if again := src.Requests() - before; again > 8 {
		t.Errorf("%d requests on the next tick, want the joined 3 plus the isolated few (at most 8)", again)
	}
	t.Logf("requests: %d on the first tick, %d on the next, for %d checks", first, src.Requests()-before, len(qs))

	// The same queries over the past seconds, as a back-fill asks: one
	// point a second (as far back as this young Prometheus has data).
	time.Sleep(2 * time.Second) // two more scrapes: some past to ask for
	to := time.Now().Truncate(time.Second)
	from := to.Add(-5 * time.Second)
	rr := Sources{SourcePrometheus: src}.SampleRange(ctx, qs[:2*jobs], from, to, time.Second)
	for k, r := range rr {
		if r.Err != nil || len(r.Points) == 0 {
			t.Fatalf("range of query %d: %+v, want points", k, r)
		}
		for _, p := range r.Points {
			if p.V != float64(k/2) || p.T.Before(from) || p.T.After(to) || p.T.Nanosecond() != 0 {
				t.Fatalf("range of query %d has %+v, want %d on a whole second in [%s, %s]", k, p, k/2, from, to)
			}
		}
	}
}
