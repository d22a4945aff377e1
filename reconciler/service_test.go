package reconciler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/nomadscalerd/nomadscalerd/optimize"
	"github.com/nomadscalerd/nomadscalerd/store"
)

func TestAnOptimizeRequestNamingNoSeriesIsInvalidNotMissingHistory(t *testing.T) {
	h := newHarness(t, 2, []int{2})
	ctrl := NewController(h.rec, nil, Defaults{CacheSize: 10, ForecastHorizon: 60}, nil, slog.New(slog.DiscardHandler))
	s := &OptimizeService{Controller: ctrl, Now: h.clock.now} // neither request reaches a planner
	_, err := s.Optimize(context.Background(), optimize.Request{CurrentReplicas: 2, MinReplicas: 1, MaxReplicas: 5, CacheSize: 10})
	if !errors.Is(err, optimize.ErrInvalidRequest) || errors.Is(err, optimize.ErrNoHistory) {
		t.Fatalf("err = %v, want an invalid request (no series named), not missing history", err)
	}
	_, err = s.Optimize(context.Background(), optimize.Request{Check: optimize.Check{MetricAppName: "nobody"}, CurrentReplicas: 2, MinReplicas: 1, MaxReplicas: 5, CacheSize: 10})
	if !errors.Is(err, optimize.ErrNoHistory) {
		t.Fatalf("err = %v for a name no policy records, want no history", err)
	}
}

// fakeSeedPlanner (a fake) plans the policy's forecast_horizon seconds of
// counts 1, 2, 3, ... and, like HistoryPlanner.Plan, returns the first
// cache_size of them; it records the policy it was asked for.
type fakeSeedPlanner struct{ asked []Policy }

func (f *fakeSeedPlanner) Plan(_ context.Context, p Policy, _ int, now time.Time) (optimize.Plan, error) {
	f.asked = append(f.asked, p)
	out := make([]int, p.Target.ForecastHorizon)
	for i := range out {
		out[i] = i + 1
	}
	return optimize.Plan{Start: now, Desired: out[:min(p.Target.CacheSize, len(out))], MinReplicas: p.Min, MaxReplicas: p.Max}, nil
}

// serviceFor is an OptimizeService over a controller holding the given
// Nomad policies, with the daemon's cache_size def.
func serviceFor(t *testing.T, def int, pols ...*nomadapi.ScalingPolicy) (*OptimizeService, *fakeSeedPlanner) {
	t.Helper()
	h := newHarness(t, 2, []int{2})
	ctrl := NewController(h.rec, listedPolicies(pols), Defaults{CacheSize: def, ForecastHorizon: 60}, nil, slog.New(slog.DiscardHandler))
	if err := ctrl.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := len(ctrl.Policies()); got != len(pols) {
		t.Fatalf("%d active policies, want %d: %v", got, len(pols), ctrl.Invalid())
	}
	fp := &fakeSeedPlanner{}
	return &OptimizeService{Controller: ctrl, Planner: fp, Now: h.clock.now, CacheSize: def}, fp
}

func decodeSeedRequest(t *testing.T, body string) optimize.Request {
	t.Helper()
	r, err := optimize.DecodeRequest(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestAnOptimizeRequestWithoutCacheSizeIsAnsweredWithTheConfiguredCacheSizeOnAFakePlanner(t *testing.T) {
	// The seed's deployment sets CACHE_SIZE on the optimizer, and its
	// request's cache_size is optional: the daemon's --cache-size (or the
	// policy's cache_size) is the answer's length then, not a built-in 10.
	const noSize = `{"check": {"metric_app_name": "web"}, "current_replicas": 2, "min_replicas": 1, "max_replicas": 100}`
	daemonDefault := scalingPolicy(reqCheck, map[string]any{}, nil)
	s, _ := serviceFor(t, 30, daemonDefault)
	res, err := s.Optimize(context.Background(), decodeSeedRequest(t, noSize))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Desired) != 30 {
		t.Errorf("%d counts without cache_size, want the daemon's cache_size 30", len(res.Desired))
	}

	own := scalingPolicy(reqCheck, map[string]any{"cache_size": 20.0}, nil)
	s, _ = serviceFor(t, 30, own)
	res, err = s.Optimize(context.Background(), decodeSeedRequest(t, noSize))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Desired) != 20 {
		t.Errorf("%d counts without cache_size, want the policy's cache_size 20", len(res.Desired))
	}
	// A request's own cache_size still wins.
	res, err = s.Optimize(context.Background(), decodeSeedRequest(t, `{"check": {"metric_app_name": "web"}, "current_replicas": 2, "min_replicas": 1, "max_replicas": 100, "cache_size": 7}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Desired) != 7 {
		t.Errorf("%d counts for cache_size 7", len(res.Desired))
	}

	// The test-data mode (the seed's only_test_data) has no policy: the
	// daemon's cache size.
	td := &OptimizeService{TestData: true, Solver: optimize.DPSolver{}, CacheSize: 30}
	res, err = td.Optimize(context.Background(), decodeSeedRequest(t, noSize))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Desired) != 30 {
		t.Errorf("test data: %d counts without cache_size, want the daemon's 30", len(res.Desired))
	}
}

func TestAnOptimizeRequestNamingAJobPlansForTheGroupItsCheckNamesOnAFakePlanner(t *testing.T) {
	// The seed's body names the app and the group: {"check": {"group":
	// "webapp", "metric_app_name": "my-app"}}. A job with two scaled groups
	// must be planned for the group asked for, not whichever sorts first.
	group := func(ns, job, g, id string) *nomadapi.ScalingPolicy {
		sp := scalingPolicy(reqCheck, map[string]any{}, nil)
		sp.ID, sp.Target = id, map[string]string{"Namespace": ns, "Job": job, "Group": g}
		return sp
	}
	s, fp := serviceFor(t, 10, group("default", "shop", "api", "p1"), group("default", "shop", "web", "p2"),
		group("default", "blog", "web", "p3"), group("prod", "blog", "web", "p4"))
	for _, c := range []struct{ check, want string }{
		{`{"group": "web", "metric_app_name": "shop"}`, "default/shop/web"},
		{`{"group": "api", "metric_app_name": "shop"}`, "default/shop/api"},
		{`{"group": "web", "metric_app_name": "default/shop/web"}`, "default/shop/web"},
		{`{"group": "other", "metric_app_name": "prod/blog/web"}`, "prod/blog/web"},
	} {
		fp.asked = nil
		_, err := s.Optimize(context.Background(), decodeSeedRequest(t, `{"check": `+c.check+`, "current_replicas": 2, "min_replicas": 1, "max_replicas": 5}`))
		if err != nil {
			t.Fatalf("%s: %v", c.check, err)
		}
		if len(fp.asked) != 1 || fp.asked[0].Key != c.want {
			t.Errorf("%s planned %q, want %s", c.check, keysOf(fp.asked), c.want)
		}
	}
	// Names that still fit several policies are a 400 with the choices,
	// not another group's plan.
	for _, check := range []string{
		`{"metric_app_name": "shop"}`,                 // two groups, none named
		`{"group": "web", "metric_app_name": "blog"}`, // two namespaces
		`{"group": "web"}`,                            // three jobs
	} {
		fp.asked = nil
		_, err := s.Optimize(context.Background(), decodeSeedRequest(t, `{"check": `+check+`, "current_replicas": 2, "min_replicas": 1, "max_replicas": 5}`))
		if !errors.Is(err, optimize.ErrInvalidRequest) || !strings.Contains(err.Error(), "namespace/job/group") {
			t.Errorf("%s: err %v, want an invalid request naming the choices", check, err)
		}
		if len(fp.asked) != 0 {
			t.Errorf("%s planned %q for an ambiguous name", check, keysOf(fp.asked))
		}
	}
}

// emptyHistoryPlanner (a fake) fails as HistoryPlanner does for a policy
// whose requests check has no sample yet.
type emptyHistoryPlanner struct{ err error }

func (e emptyHistoryPlanner) Plan(context.Context, Policy, int, time.Time) (optimize.Plan, error) {
	return optimize.Plan{}, e.err
}

func TestAnOptimizeRequestForAnActivePolicyWithNoSampleYetIsShortHistoryNotNoHistoryOnAFakePlanner(t *testing.T) {
	// 404 says no active policy records the check (a wrong name); a
	// policy that is active but has recorded nothing yet is warming up:
	// 503 with Retry-After, as the README's warm-up promises.
	s, _ := serviceFor(t, 10, scalingPolicy(reqCheck, map[string]any{}, nil))
	for _, cause := range []error{
		fmt.Errorf("%w for requests yet", optimize.ErrNoHistory),
		fmt.Errorf("load history: %w", store.ErrNotFound),
	} {
		s.Planner = emptyHistoryPlanner{err: cause}
		_, err := s.Optimize(context.Background(), decodeSeedRequest(t, `{"check": {"metric_app_name": "web"}, "current_replicas": 2, "min_replicas": 1, "max_replicas": 5}`))
		if !errors.Is(err, optimize.ErrShortHistory) || errors.Is(err, optimize.ErrNoHistory) {
			t.Errorf("planner failing with %v: err %v, want short history (503), not no history (404)", cause, err)
		}
	}
}
