package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/nomadscalerd/nomadscalerd/optimize"
)

type fakeOptimizer struct{ calls int }

func (f *fakeOptimizer) Optimize(_ context.Context, r optimize.Request) (optimize.Response, error) {
	f.calls++
	if r.Check.MetricAppName == "" && r.Check.Group == "" {
		return optimize.Response{}, fmt.Errorf("%w: check.metric_app_name or check.group must name it", optimize.ErrInvalidRequest)
	}
	if r.Check.MetricAppName == "unknown" {
		return optimize.Response{}, fmt.Errorf("%w for %q", optimize.ErrNoHistory, "unknown")
	}
	if r.Check.MetricAppName == "new" {
		return optimize.Response{}, fmt.Errorf("forecast: 12 seconds of history: %w", optimize.ErrShortHistory)
	}
	out := make([]int, r.CacheSize)
	for i := range out {
		out[i] = r.MinReplicas
	}
	return optimize.Response{Desired: out}, nil
}

// optimizeServer serves POST /optimize from o behind the token "tok",
// until the test ends.
func optimizeServer(t *testing.T, o Optimizer) *httptest.Server {
	t.Helper()
	s, err := New(Config{Addr: "127.0.0.1:0", Token: "tok"}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	s.HandleOptimize(o)
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return ts
}

func TestOptimizeAnswersEveryStatusCodeOfTheSeedsAPI(t *testing.T) {
	fo := &fakeOptimizer{}
	ts := optimizeServer(t, fo)
	const ok = `"check": {"name": "c", "source": "prometheus", "group": "web", "metric_app_name": "shop"}, "current_replicas": 2, "min_replicas": 1, "max_replicas": 5`
	cases := []struct {
		name, body, bearer string
		code               int
		reason             string
	}{
		{"token in the body", `{"token": "tok", ` + ok + `}`, "", 200, ""},
		{"token as bearer", `{` + ok + `, "cache_size": 4}`, "tok", 200, ""},
		{"no token", `{` + ok + `}`, "", 401, "token"},
		{"wrong token", `{"token": "nope", ` + ok + `}`, "", 401, "token"},
		{"wrong bearer, no body token", `{` + ok + `}`, "nope", 401, "token"},
		{"string for a number", `{"token": "tok", "current_replicas": "two"}`, "", 400, "current_replicas"},
		{"unknown field", `{"token": "tok", ` + ok + `, "colour": 1}`, "", 400, "colour"},
		{"min above max", `{"token": "tok", "current_replicas": 1, "min_replicas": 4, "max_replicas": 2}`, "", 400, "exceeds"},
		{"negative count", `{"token": "tok", "current_replicas": -1, "min_replicas": 0, "max_replicas": 2}`, "", 400, "negative"},
		{"cache size zero", `{"token": "tok", "current_replicas": 1, "min_replicas": 0, "max_replicas": 2, "cache_size": 0}`, "", 400, "cache_size"},
		{"cache size too big", `{"token": "tok", "current_replicas": 1, "min_replicas": 0, "max_replicas": 2, "cache_size": 3601}`, "", 400, "cache_size"},
		{"body over 1 MiB", `{"token": "tok", "pad": "` + strings.Repeat("x", MaxBodyBytes) + `"}`, "", 400, "1 MiB"},
		{"no series named", `{"token": "tok", "current_replicas": 1, "min_replicas": 0, "max_replicas": 2}`, "", 400, "metric_app_name"},
		{"unknown history", `{"token": "tok", "check": {"metric_app_name": "unknown"}, "current_replicas": 1, "min_replicas": 0, "max_replicas": 2}`, "", 404, "no history"},
		{"history too short yet", `{"token": "tok", "check": {"metric_app_name": "new"}, "current_replicas": 1, "min_replicas": 0, "max_replicas": 2}`, "", 503, "too short"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := fo.calls
			req, _ := http.NewRequest("POST", ts.URL+"/optimize", strings.NewReader(tc.body))
			if tc.bearer != "" {
				req.Header.Set("Authorization", "Bearer "+tc.bearer)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != tc.code {
				t.Fatalf("status %d, want %d: %s", res.StatusCode, tc.code, b)
			}
			if tc.code == 200 {
				var r optimize.Response
				if err := json.Unmarshal(b, &r); err != nil || len(r.Desired) == 0 {
					t.Fatalf("body %s", b)
				}
				return
			}
			var e map[string]string
			if err := json.Unmarshal(b, &e); err != nil || !strings.Contains(e["error"], tc.reason) || strings.Contains(e["error"], "\n") {
				t.Errorf("error body %s does not give a one-line reason mentioning %q", b, tc.reason)
			}
			if tc.code == 401 && fo.calls != before {
				t.Errorf("the optimizer ran for an unauthenticated request")
			}
		})
	}
}

func TestAnOptimizeRequestMissingAReplicaCountIsA400NotAPlanFromZeroOnAFakeOptimizer(t *testing.T) {
	// The seed's body makes only cache_size optional. Read as 0, a missing
	// max_replicas was answered 200 with a plan of zeros, and a missing
	// current_replicas with a plan ramping up from no replica.
	fo := &fakeOptimizer{}
	ts := optimizeServer(t, fo)
	fields := map[string]string{"current_replicas": `"current_replicas": 3`, "min_replicas": `"min_replicas": 1`, "max_replicas": `"max_replicas": 10`}
	for missing := range fields {
		for _, as := range []string{"absent", "null"} {
			parts := []string{`"token": "tok"`, `"check": {"metric_app_name": "my-app"}`}
			for name, f := range fields {
				switch {
				case name != missing:
					parts = append(parts, f)
				case as == "null":
					parts = append(parts, `"`+name+`": null`)
				}
			}
			res, err := http.Post(ts.URL+"/optimize", "application/json", strings.NewReader("{"+strings.Join(parts, ", ")+"}"))
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(res.Body)
			res.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), missing+" is required") {
				t.Errorf("%s %s: %d %s, want 400 saying it is required", missing, as, res.StatusCode, b)
			}
		}
	}
	if fo.calls != 0 {
		t.Errorf("the optimizer planned %d requests missing a count", fo.calls)
	}
}

func TestStatusNeedsTheToken(t *testing.T) {
	s, _ := New(Config{Addr: "127.0.0.1:0", Token: "tok"}, Deps{})
	s.HandleStatus(StatusFunc(func(context.Context) any { return map[string]bool{"leader": true} }))
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	res, _ := http.Get(ts.URL + "/v1/status")
	res.Body.Close()
	if res.StatusCode != 401 {
		t.Fatalf("without token: %d", res.StatusCode)
	}
	req, _ := http.NewRequest("GET", ts.URL+"/v1/status", nil)
	req.Header.Set("Authorization", "Bearer tok")
	res, _ = http.DefaultClient.Do(req)
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("with token: %d", res.StatusCode)
	}
}

func TestRootDescribesTheService(t *testing.T) {
	s, _ := New(Config{Addr: "127.0.0.1:0", Version: "v"}, Deps{})
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	res, _ := http.Get(ts.URL + "/")
	var d map[string]any
	_ = json.NewDecoder(res.Body).Decode(&d)
	res.Body.Close()
	if res.StatusCode != 200 || d["service"] != "nomadscalerd" {
		t.Fatalf("GET / = %d %v", res.StatusCode, d)
	}
}

// blockingOptimizer (a fake) holds every request until released, so a test
// can fill the planning slots.
type blockingOptimizer struct {
	entered chan struct{}
	release chan struct{}
}

func (b *blockingOptimizer) Optimize(ctx context.Context, r optimize.Request) (optimize.Response, error) {
	b.entered <- struct{}{}
	<-b.release
	return optimize.Response{Desired: make([]int, r.CacheSize)}, nil
}

func TestOptimizeRefusesHugeRangesAndMoreConcurrentPlansThanItsSlots(t *testing.T) {
	bo := &blockingOptimizer{entered: make(chan struct{}, MaxConcurrentPlans), release: make(chan struct{})}
	ts := optimizeServer(t, bo)
	post := func(body string) (int, string) {
		resp, err := http.Post(ts.URL+"/optimize", "application/json", strings.NewReader(body))
		if err != nil {
			t.Error(err)
			return 0, ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := post(`{"token": "tok", "current_replicas": 1, "min_replicas": 0, "max_replicas": 1000000000, "cache_size": 3600}`); code != 400 || !strings.Contains(body, "at most 10000") {
		t.Errorf("max_replicas 1e9: %d %s, want 400 naming the bound", code, body)
	}
	const ok = `{"token": "tok", "current_replicas": 1, "min_replicas": 0, "max_replicas": 5, "cache_size": 3}`
	done := make(chan int, MaxConcurrentPlans)
	for range MaxConcurrentPlans {
		go func() { code, _ := post(ok); done <- code }()
	}
	for range MaxConcurrentPlans {
		<-bo.entered
	}
	if code, body := post(ok); code != 429 {
		t.Errorf("with every slot busy: %d %s, want 429", code, body)
	}
	close(bo.release)
	for range MaxConcurrentPlans {
		if code := <-done; code != 200 {
			t.Errorf("a request in a slot answered %d, want 200", code)
		}
	}
}
