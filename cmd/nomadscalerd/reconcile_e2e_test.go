package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"
)

// The step workload: 10 req/s, and 60 req/s for 20 s of every 60 s,
// starting 40 s into each cycle (by the absolute clock). With 10 req/s per
// replica the group needs 1 replica, then 6.
const (
	stepPeriod  = 60 * time.Second
	stepHighAt  = 40 * time.Second
	stepHighFor = 20 * time.Second
	startDelay  = 8 * time.Second
)

func stepPolicy() map[string]any {
	return nomadscalerPolicy(map[string][2]string{
		"requests": {"prometheus", "sum(rate(demo_requests_total[2s]))"},
	}, map[string]any{
		"capacity_per_replica": 10.0,
		"startup_delay":        startDelay.String(),
		"cache_size":           3.0,
		"forecast_horizon":     30.0,
		"model_step":           "2s",
		"seasonality":          []any{stepPeriod.String()},
		"fourier_terms":        8.0,
		"forecast_margin":      1.0,
		"noise_margin":         1.0,
		"history_window":       "10m",
		"refit_interval":       "15s",
		"stale_after":          "15s",
		"orders":               "1,0,0;1,0,1",
		"max_scale_up":         3.0,
		"max_scale_down":       3.0,
		"replan_interval":      "2s",
		// This test judges the plan, so the floor is kept out of its way.
		// The floor reads the last minute: a margin above 1 holds the
		// high step's seconds in it at 4 replicas for longer than the 15 s
		// after the step this test judges the plan's fall by, and its
		// trend, anchored at the latest seconds of a 5 s rate, rises
		// until those seconds are past the step (6 replicas for 12 s).
		"floor_margin": 1.0,
		"floor_trend":  false,
		// The 40 s between steps, less the startup delay and the
		// deployment a rise is asked for ahead of, leave the replicas
		// down for less than the default 30 s flap window, which would
		// keep them (a fall asked back within 30 s is a flap); this test
		// judges that the plan falls after each step.
		"flap_window": "0s",
	}, map[string]any{"evaluation_interval": "1s", "cooldown": "3s"})
}

func registerStepJob(t *testing.T, c *nomadapi.Client, loadPort int, policy map[string]any) {
	t.Helper()
	job := nomadapi.NewServiceJob("shop", "shop", "global", 50)
	job.Datacenters = []string{"*"}
	job.AddTaskGroup(loadGroup(t, fmt.Sprintf("127.0.0.1:%d", loadPort), "--pattern", "step", "--low", "10", "--high", "60",
		"--period", stepPeriod.String(), "--high-at", stepHighAt.String(), "--high-for", stepHighFor.String(), "--noise", "0"))
	job.AddTaskGroup(scalingGroup("web", 1, 1, 8, policy))
	if _, _, err := c.Jobs().Register(job, nil); err != nil {
		t.Fatal(err)
	}
}

// nextStep returns the start of the first high window at or after t.
func nextStep(t time.Time) time.Time {
	cycle := t.Truncate(stepPeriod)
	s := cycle.Add(stepHighAt)
	if s.Before(t) {
		s = s.Add(stepPeriod)
	}
	return s
}

func TestPredictiveScalingRisesAheadOfEachPeriodicStepAndFallsAfterIt(t *testing.T) {
	t.Parallel() // mostly waiting on real agents; the package would take too long serially
	agent, c, loadPort, prom := startLoadCluster(t)
	d := startDaemon(t, settings{NomadAddr: agent.Addr, PrometheusAddr: prom})
	registerStepJob(t, c, loadPort, stepPolicy())

	// Learn for two full cycles, then judge the next two steps.
	judgeFrom := nextStep(time.Now().Add(2 * stepPeriod))
	judgeUntil := judgeFrom.Add(stepPeriod + stepHighFor + 15*time.Second)
	t.Logf("learning until %s, judging steps at %s and %s", judgeFrom.Format(time.TimeOnly), judgeFrom.Format(time.TimeOnly),
		judgeFrom.Add(stepPeriod).Format(time.TimeOnly))
	time.Sleep(time.Until(judgeUntil))

	evs := scalingEvents(t, c, "shop", "web")
	var counts []string
	for _, e := range evs {
		at := time.Unix(0, int64(e.Time))
		cnt := "-"
		if e.Count != nil {
			cnt = fmt.Sprint(*e.Count)
			if *e.Count < 1 || *e.Count > 8 {
				t.Errorf("scaled to %d outside [1, 8] at %s", *e.Count, at.Format(time.TimeOnly))
			}
		}
		if !strings.Contains(e.Message, "nomadscalerd") || e.Meta["plan_id"] == nil || e.Meta["reason"] == nil {
			t.Errorf("event at %s does not explain itself: %q %v", at.Format(time.TimeOnly), e.Message, e.Meta)
		}
		counts = append(counts, fmt.Sprintf("%s→%s", at.Format("04:05"), cnt))
	}
	t.Logf("scaling events: %s", strings.Join(counts, " "))
	for k := 0; k < 2; k++ {
		step := judgeFrom.Add(time.Duration(k) * stepPeriod)
		// Ahead: by the time the step arrives, all 6 replicas it needs
		// have been requested.
		if got := countAt(evs, step); got < 6 {
			t.Errorf("step at %s: %d replicas requested when it arrived, want all 6 (requested ahead)", step.Format(time.TimeOnly), got)
		}
		// The rise started shortly before the step: each count served covers
		// the plan a startup delay plus 5 s of deployment ahead, so a
		// scale-up lands up to about 20 s before it.
		if lead := startDelay + 20*time.Second; !scaledUpIn(evs, step.Add(-lead), step) {
			t.Errorf("step at %s: no scale-up in the %s before it", step.Format(time.TimeOnly), lead)
		}
		// Back down after the step.
		if got := countAt(evs, step.Add(stepHighFor+15*time.Second)); got > 3 {
			t.Errorf("step at %s: still %d replicas 15 s after it ended", step.Format(time.TimeOnly), got)
		}
	}
	if t.Failed() {
		t.Logf("daemon log tail:\n%s", tail(d.logs.String(), 400))
	}
}

// countAt is the count requested by the last scaling event at or before at.
func countAt(evs []nomadapi.ScalingEvent, at time.Time) int {
	n := 1
	for _, e := range evs {
		if time.Unix(0, int64(e.Time)).After(at) {
			break
		}
		if e.Count != nil {
			n = int(*e.Count)
		}
	}
	return n
}

func scaledUpIn(evs []nomadapi.ScalingEvent, from, to time.Time) bool {
	for _, e := range evs {
		at := time.Unix(0, int64(e.Time))
		if at.Before(from) || at.After(to) || e.Count == nil || e.PreviousCount == 0 {
			continue
		}
		if *e.Count > e.PreviousCount {
			return true
		}
	}
	return false
}
