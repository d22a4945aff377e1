package nomad

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nomadscalerd/nomadscalerd/clock"
)

// A token that may not list variables (the case step's fallback is
// written for) fails the balancer's view every period for as long as the
// replica runs: the warning is logged once a minute, not every second.
func TestAReplicaThatCannotLookAtTheOtherReplicasDoesNotWarnEverySecond(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC))
	tab := &lockTable{owner: []string{"", ""}, alive: map[string]bool{"a": true}}
	a := newReplicaSim(tab, "a", clk)
	var logs strings.Builder
	a.bal.log = slog.New(slog.NewTextHandler(&logs, nil))
	a.bal.view = func(context.Context, []bool) (shardView, error) {
		return shardView{}, errors.New("Permission denied: 403 listing variables")
	}
	for range 60 { // a minute of periods
		a.bal.step(context.Background())
		clk.Advance(time.Second)
	}
	if n := strings.Count(logs.String(), "looking at the other replicas failed"); n > 1 {
		t.Fatalf("%d warnings in one minute of a lasting failure, want at most 1", n)
	}
}
