package main

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	"github.com/hashicorp/nomad-autoscaler/sdk"
)

type fakeGroup struct {
	count  int64
	scaled []sdk.ScalingAction
	cfgs   []map[string]string
}

func (f *fakeGroup) SetConfig(map[string]string) error { return nil }
func (f *fakeGroup) Status(map[string]string) (*sdk.TargetStatus, error) {
	return &sdk.TargetStatus{Ready: true, Count: f.count}, nil
}
func (f *fakeGroup) Scale(a sdk.ScalingAction, cfg map[string]string) error {
	f.scaled = append(f.scaled, a)
	f.cfgs = append(f.cfgs, cfg)
	f.count = a.Count
	return nil
}

type fixedBounds struct{ lo, hi int }

func (b fixedBounds) Bounds(string) (int, int, error) { return b.lo, b.hi, nil }

// optimizer is a fake optimizer service recording the seed's bodies.
type optimizer struct {
	mu      sync.Mutex
	desired []int
	down    bool
	bodies  []optimizeRequest
	auth    []string
}

func (o *optimizer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var req optimizeRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	o.bodies, o.auth = append(o.bodies, req), append(o.auth, r.Header.Get("Authorization"))
	if o.down {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"desired": o.desired})
}

func (o *optimizer) calls() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.bodies)
}

type testClock struct{ t time.Time }

func (c *testClock) now() time.Time { return c.t }

func newTestPlugin(t *testing.T, o *optimizer, g *fakeGroup, lo, hi int) (*Plugin, map[string]string, *testClock) {
	t.Helper()
	srv := httptest.NewServer(o)
	t.Cleanup(srv.Close)
	clk := &testClock{t: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
	p := NewPlugin(hclog.NewNullLogger())
	p.nomad, p.bounds, p.now, p.token = g, fixedBounds{lo, hi}, clk.now, "SUPER_SECRET_TOKEN"
	// The seed's policy file target, as written.
	cfg := map[string]string{"namespace": "production", "job": "web-app", "group": "frontend", "optimizer_url": srv.URL, "cache_size": "4"}
	return p, cfg, clk
}

func action() sdk.ScalingAction {
	return sdk.ScalingAction{Count: 9, Direction: sdk.ScaleDirectionUp, Meta: map[string]interface{}{"nomad_policy_id": "p1"}}
}

func TestScaleAsksTheOptimizerWithTheSeedsBodyAndScalesToItsCountForThisSecond(t *testing.T) {
	o := &optimizer{desired: []int{3, 4, 5, 6}}
	g := &fakeGroup{count: 2}
	p, cfg, clk := newTestPlugin(t, o, g, 1, 10)
	if err := p.Scale(action(), cfg); err != nil {
		t.Fatal(err)
	}
	want := optimizeRequest{Token: "SUPER_SECRET_TOKEN", Check: optimizeCheck{Name: "nomadscaler", Source: "nomad-apm", Group: "frontend", MetricAppName: "production/web-app/frontend"},
		CurrentReplicas: 2, MinReplicas: 1, MaxReplicas: 10, CacheSize: 4}
	if len(o.bodies) != 1 || o.bodies[0] != want || o.auth[0] != "Bearer SUPER_SECRET_TOKEN" {
		t.Fatalf("optimizer got %+v (auth %v), want one %+v", o.bodies, o.auth, want)
	}
	if len(g.scaled) != 1 || g.scaled[0].Count != 3 {
		t.Fatalf("scaled %+v, want to 3 (second 0 of the plan), not the strategy's 9", g.scaled)
	}
	if c := g.cfgs[0]; c["Job"] != "web-app" || c["Group"] != "frontend" || c["Namespace"] != "production" {
		t.Errorf("the Nomad target got %v, want the group named as it reads it", c)
	}
	clk.t = clk.t.Add(2 * time.Second) // second 2: 5, from the cache
	if err := p.Scale(action(), cfg); err != nil {
		t.Fatal(err)
	}
	if o.calls() != 1 || g.scaled[1].Count != 5 || g.scaled[1].Direction != sdk.ScaleDirectionUp {
		t.Fatalf("second use: %d optimizer calls, scaled %+v; want the cache's 5", o.calls(), g.scaled)
	}
	clk.t = clk.t.Add(3 * time.Second) // third use: a fresh answer, served from its second 0
	o.desired = []int{1, 1, 1, 1}
	if err := p.Scale(action(), cfg); err != nil {
		t.Fatal(err)
	}
	if o.calls() != 2 || g.scaled[2].Count != 1 || g.scaled[2].Direction != sdk.ScaleDirectionDown {
		t.Fatalf("after two uses: %d optimizer calls, scaled %+v; want a fresh answer's 1", o.calls(), g.scaled)
	}
}

func TestCountsAreKeptWithinTheMinAndMax(t *testing.T) {
	o := &optimizer{desired: []int{50}}
	g := &fakeGroup{count: 2}
	p, cfg, _ := newTestPlugin(t, o, g, 1, 8)
	if err := p.Scale(action(), cfg); err != nil {
		t.Fatal(err)
	}
	if len(g.scaled) != 1 || g.scaled[0].Count != 8 {
		t.Fatalf("scaled %+v, want to max 8", g.scaled)
	}
}

func TestWhenTheOptimizerFailsTheCacheIsServedUntilItExpiresThenTheCountHolds(t *testing.T) {
	o := &optimizer{down: true}
	g := &fakeGroup{count: 2}
	p, cfg, clk := newTestPlugin(t, o, g, 1, 10)
	var noop *sdk.TargetScalingNoOpError
	if err := p.Scale(action(), cfg); !errors.As(err, &noop) || len(g.scaled) != 0 {
		t.Fatalf("no answer yet: err = %v, scaled %+v; want a hold", err, g.scaled)
	}
	o.down, o.desired = false, []int{4, 4, 6, 6}
	if err := p.Scale(action(), cfg); err != nil || g.count != 4 {
		t.Fatalf("err %v, count %d; want 4", err, g.count)
	}
	o.down = true
	for i, want := range []int{6, 6} { // seconds 2 and 3 of the cached plan, optimizer down
		clk.t = clk.t.Add(time.Second)
		if i == 0 {
			clk.t = clk.t.Add(time.Second)
		}
		err := p.Scale(action(), cfg)
		if err != nil && !errors.As(err, &noop) {
			t.Fatal(err)
		}
		if g.count != int64(want) {
			t.Fatalf("optimizer down, use %d: count %d, want the cache's %d", i, g.count, want)
		}
	}
	clk.t = clk.t.Add(defaultMaxAge)
	before := len(g.scaled)
	if err := p.Scale(action(), cfg); !errors.As(err, &noop) || len(g.scaled) != before {
		t.Fatalf("expired cache: err = %v, scaled %+v; want a hold", err, g.scaled[before:])
	}
}

func TestAPolicyWithoutAnOptimizerURLIsAnError(t *testing.T) {
	g := &fakeGroup{count: 2}
	p, cfg, _ := newTestPlugin(t, &optimizer{desired: []int{3}}, g, 1, 10)
	delete(cfg, "optimizer_url")
	if err := p.Scale(action(), cfg); err == nil || len(g.scaled) != 0 {
		t.Fatalf("err = %v, scaled %+v; want an error and nothing scaled", err, g.scaled)
	}
}
