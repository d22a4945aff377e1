package history

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// fakeScalarProm answers joined queries with one labelled series per part,
// unless a part is a scalar(...), which label_replace cannot take: then the
// whole request is refused (400 bad_data), as Prometheus refuses it. Alone,
// a scalar query answers a scalar and any other a one-series vector. It
// records the queries asked alone.
func fakeScalarProm(t *testing.T) (*httptest.Server, func() []string) {
	var mu sync.Mutex
	var alone []string
	part := regexp.MustCompile(`label_replace\(\(\n(.*)\n\)`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		q := r.Form.Get("query")
		parts := part.FindAllStringSubmatch(q, -1)
		if len(parts) == 0 {
			mu.Lock()
			alone = append(alone, q)
			mu.Unlock()
			if strings.HasPrefix(q, "scalar(") {
				fmt.Fprint(w, `{"status":"success","data":{"resultType":"scalar","result":[1,"2"]}}`)
				return
			}
			fmt.Fprint(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"1"]}]}}`)
			return
		}
		var samples []string
		for i, m := range parts {
			if strings.HasPrefix(m[1], "scalar(") {
				w.WriteHeader(http.StatusBadRequest)
				fmt.Fprint(w, `{"status":"error","errorType":"bad_data","error":"expected type instant vector in call to function \"label_replace\", got scalar"}`)
				return
			}
			samples = append(samples, fmt.Sprintf(`{"metric":{%q:"%d"},"value":[1,"1"]}`, batchLabel, i))
		}
		fmt.Fprintf(w, `{"status":"success","data":{"resultType":"vector","result":[%s]}}`, strings.Join(samples, ","))
	}))
	t.Cleanup(srv.Close)
	return srv, func() []string {
		mu.Lock()
		defer mu.Unlock()
		out := alone
		alone = nil
		return out
	}
}

// A query that breaks its joined request (a scalar(...), which cannot be
// labelled) is found by halving and asked alone from then on; the healthy
// query it was last paired with in the halving is not: it goes on being
// joined with the others, as the README's failure modes say ("only a query
// that breaks its batch is asked alone").
func TestOnlyTheQueryThatBreaksAJoinedRequestIsAskedAloneNotItsHealthyNeighboursWithAFakePrometheus(t *testing.T) {
	srv, asked := fakeScalarProm(t)
	p, err := NewPrometheus(srv.URL, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	var qs []Query
	scalars := map[string]bool{}
	for i := range 100 {
		q := fmt.Sprintf(`sum(up{job="j%d"})`, i)
		if i%25 == 7 {
			q = fmt.Sprintf(`scalar(sum(up{job="j%d"}))`, i)
			scalars[q] = true
		}
		qs = append(qs, Query{Source: SourcePrometheus, Query: q})
	}
	ctx := context.Background()
	for tick := range 2 {
		for i, r := range p.SampleBatch(ctx, qs, 16) {
			want := 1.0
			if scalars[qs[i].Query] {
				want = 2
			}
			if r.Err != nil || r.V != want {
				t.Fatalf("tick %d: query %d (%s) = %v, %v; want %v", tick, i, qs[i].Query, r.V, r.Err, want)
			}
		}
		if tick == 0 {
			asked() // the first tick halves its way to the scalar queries
		}
	}
	for _, q := range asked() {
		if !scalars[q] {
			t.Errorf("the healthy query %s is asked alone on the next tick, want it joined", q)
		}
	}
}
