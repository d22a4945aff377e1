package reconciler

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/nomadscalerd/nomadscalerd/optimize"
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
