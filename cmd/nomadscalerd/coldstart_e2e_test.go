package main

import (
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/nomadscalerd/nomadscalerd/nomadtest"
)

// Cold start: a policy with no model history is scaled by the reactive floor
// from its first evaluation, and an idle group (a constant metric) scales in
// without fit errors. Both read CPU from Nomad's allocation stats
// (nomad-apm), so they need no Prometheus.

// cpuGroup is scalingGroup running command on a cpuMHz allocation, with one
// nomad-apm check, avg_cpu_percent: 100% of the allocation per replica.
func cpuGroup(count, min, max, cpuMHz int, command string, args []string, top map[string]any) *nomadapi.TaskGroup {
	pol := nomadscalerPolicy(map[string][2]string{"cpu": {"nomad-apm", "avg_cpu_percent"}},
		map[string]any{"capacity_per_replica": 100.0}, top)
	tg := scalingGroup("work", count, min, max, pol)
	tg.Tasks[0].Config = map[string]any{"command": command, "args": args}
	tg.Tasks[0].Resources.CPU = intp(cpuMHz)
	return tg
}

func registerCPUJob(t *testing.T, c *nomadapi.Client, id string, tg *nomadapi.TaskGroup) {
	t.Helper()
	job := nomadapi.NewServiceJob(id, id, "global", 50)
	job.Datacenters = []string{"*"}
	job.AddTaskGroup(tg)
	if _, _, err := c.Jobs().Register(job, nil); err != nil {
		t.Fatal(err)
	}
	// Scaled-up burners would keep eating cores until the agent stops;
	// stop them first.
	t.Cleanup(func() { _, _, _ = c.Jobs().Deregister(id, true, nil) })
}

var okSamplesRe = regexp.MustCompile(`(?m)^nomadscaler_history_samples_total\{outcome="ok"\} (\S+)$`)

// okSamples is how many metric samples the daemon has stored, from its own
// /metrics (each test's daemon has its own registry and one series).
func okSamples(d *daemon) float64 {
	res, err := http.Get(d.HTTP + "/metrics")
	if err != nil {
		return 0
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	m := okSamplesRe.FindSubmatch(b)
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

// waitFirstSample returns when the daemon stored its first sample.
func waitFirstSample(t *testing.T, d *daemon, within time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if okSamples(d) > 0 {
			return time.Now()
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("no metric sample stored within %s", within)
	return time.Time{}
}

var floorInReason = regexp.MustCompile(`floor (\d+);`)

func TestABurningGroupIsScaledUpWithinOneEvaluationIntervalOfTheFirstSample(t *testing.T) {
	t.Parallel() // mostly waiting on real agents; the package would take too long serially
	agent := nomadtest.StartServer(t, nomadtest.Options{CPUMHz: 8000, MemoryMiB: 4096})
	c := agent.Client(t)
	d := startDaemon(t, settings{NomadAddr: agent.Addr})

	// One busy loop on a 100 MHz allocation reads as far above 100%: the
	// floor alone asks for more than one replica. evaluation_interval is
	// the default, 10 s.
	registered := time.Now()
	registerCPUJob(t, c, "burn", cpuGroup(1, 1, 3, 100, "/bin/sh", []string{"-c", "while :; do :; done"}, nil))
	first := waitFirstSample(t, d, 90*time.Second)

	// One evaluation interval after the first sample, plus a few seconds
	// for a busy machine.
	const within = 10*time.Second + 5*time.Second
	var up *nomadapi.ScalingEvent
	waitUntil(t, within+time.Until(first), "a scale-up of burn/work", func() bool {
		for _, e := range scalingEvents(t, c, "burn", "work") {
			if e.Count != nil && *e.Count > 1 {
				ev := e
				up = &ev
				return true
			}
		}
		return false
	})
	at := time.Unix(0, int64(up.Time))
	t.Logf("first sample %s after registration; scaled %d -> %d %s after the first sample (%s after registration): %s",
		first.Sub(registered).Round(100*time.Millisecond), up.PreviousCount, *up.Count,
		at.Sub(first).Round(100*time.Millisecond), at.Sub(registered).Round(100*time.Millisecond), up.Message)
	if at.Sub(first) > within {
		t.Errorf("scaled up %s after the first sample, want within %s", at.Sub(first), within)
	}
	// The floor set the count: the reason names it, and it asks for at
	// least the count scaled to. (Above max the bounds clamp it, and the
	// reason then names the bounds as what capped the floor.)
	m := floorInReason.FindStringSubmatch(up.Message)
	if m == nil {
		t.Fatalf("the scale-up does not name the floor: %q", up.Message)
	}
	if floor, _ := strconv.Atoi(m[1]); floor < int(*up.Count) {
		t.Errorf("floor %d is below the count %d it was scaled to: the floor did not set it (%q)", floor, *up.Count, up.Message)
	}
	if !strings.Contains(up.Message, "the floor (recent demand) wants") && !strings.Contains(up.Message, "the policy's bounds wants") {
		t.Errorf("the scale-up was set by neither the floor nor its clamp to the bounds: %q", up.Message)
	}
}

func TestAnIdleGroupScalesInToItsMinimumWithoutErrors(t *testing.T) {
	t.Parallel() // mostly waiting on real agents; the package would take too long serially
	agent := nomadtest.StartServer(t, nomadtest.Options{CPUMHz: 8000, MemoryMiB: 4096})
	c := agent.Client(t)
	d := startDaemon(t, settings{NomadAddr: agent.Addr})

	// model_step 1s: a forecast needs model.MinSteps steps of history, so
	// the first fit of the constant (~0) metric comes 30 s in, within the
	// test, rather than after 5 minutes at the default 10s.
	tg := cpuGroup(3, 1, 5, 100, "/bin/sleep", []string{"infinity"}, map[string]any{"evaluation_interval": "2s", "cooldown": "2s"})
	tg.Scaling.Policy["target"].([]any)[0].(map[string]any)["nomadscaler"].([]any)[0].(map[string]any)["model_step"] = "1s"
	registered := time.Now()
	registerCPUJob(t, c, "idle", tg)
	first := waitFirstSample(t, d, 90*time.Second)
	waitDesired(t, c, "idle", "work", 1, 60*time.Second+time.Until(first))
	done := time.Now()
	t.Logf("first sample %s after registration; at 1 replica %s after the first sample (%s after registration)",
		first.Sub(registered).Round(100*time.Millisecond), done.Sub(first).Round(100*time.Millisecond),
		done.Sub(registered).Round(100*time.Millisecond))

	// Keep evaluating at the minimum until the history is long enough to
	// plan from: the constant metric must forecast as its level.
	planned := func() string {
		var st struct {
			Policies []struct {
				LastDecision struct {
					PlanID string `json:"plan_id"`
					Source string `json:"source"`
				} `json:"last_decision"`
			} `json:"policies"`
		}
		getJSON(t, d.HTTP+"/v1/status", "", &st)
		if len(st.Policies) != 1 {
			return ""
		}
		return st.Policies[0].LastDecision.PlanID
	}
	waitUntil(t, 60*time.Second+time.Until(first), "a plan from the idle history", func() bool { return planned() != "" })
	t.Logf("first plan %s after the first sample", time.Since(first).Round(100*time.Millisecond))
	time.Sleep(5 * time.Second) // a few more evaluations at the minimum

	for _, e := range scalingEvents(t, c, "idle", "work") {
		if e.Count != nil && *e.Count > e.PreviousCount {
			t.Errorf("an idle group was scaled up: %q", e.Message)
		}
	}
	if n := desiredCount(t, c, "idle", "work"); n != 1 {
		t.Errorf("scaled back to %d after reaching the minimum", n)
	}
	var bad []string
	for _, l := range strings.Split(d.logs.String(), "\n") {
		if strings.Contains(l, "level=ERROR") || strings.Contains(l, "likelihood not finite") {
			bad = append(bad, l)
		}
	}
	if len(bad) > 0 {
		t.Errorf("%d error lines in the daemon log:\n%s", len(bad), strings.Join(bad, "\n"))
	}
}
