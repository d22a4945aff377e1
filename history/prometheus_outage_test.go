package history

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// fakeJoinedProm answers every part of a joined query with one labelled
// series, or 503 while down (a Prometheus restarting, a proxy in trouble).
func fakeJoinedProm(t *testing.T, down *atomic.Bool) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		}
		_ = r.ParseForm()
		q := r.Form.Get("query")
		parts := strings.Count(q, "label_replace(")
		var samples []string
		if parts == 0 {
			samples = append(samples, `{"metric":{},"value":[1,"1"]}`)
		}
		for i := range parts {
			samples = append(samples, fmt.Sprintf(`{"metric":{%q:"%d"},"value":[1,"1"]}`, batchLabel, i))
		}
		fmt.Fprintf(w, `{"status":"success","data":{"resultType":"vector","result":[%s]}}`, strings.Join(samples, ","))
	}))
	t.Cleanup(srv.Close)
	return srv
}

// A joined request that fails is split in halves down to the query that
// breaks it, which is asked alone from then on. A request that failed
// because Prometheus could not answer (a 503 during a restart) is not
// split: splitting would mark every query to be asked alone, one request
// per query per tick instead of one per 50 for as long as they are
// recorded.
func TestAPrometheusOutageDoesNotEndTheBatchingOfQueries(t *testing.T) {
	var down atomic.Bool
	srv := fakeJoinedProm(t, &down)
	p, err := NewPrometheus(srv.URL, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	var qs []Query
	for i := range 100 {
		qs = append(qs, Query{Source: SourcePrometheus, Query: fmt.Sprintf(`sum(up{job="j%d"})`, i)})
	}
	ctx := context.Background()
	down.Store(true)
	p.SampleBatch(ctx, qs, 16) // one tick during the outage
	down.Store(false)
	p.SampleBatch(ctx, qs, 16) // Prometheus is back
	before := p.Requests()
	res := p.SampleBatch(ctx, qs, 16)
	for i, r := range res {
		if r.Err != nil || r.V != 1 {
			t.Fatalf("query %d: %v, %v", i, r.V, r.Err)
		}
	}
	if n := p.Requests() - before; n > 2 {
		t.Fatalf("a healthy tick of 100 queries sent %d requests after a single failed tick, want 2 (batches of 50)", n)
	}
}
