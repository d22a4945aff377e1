package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/nomadscalerd/nomadscalerd/nomadtest"
)

// buildPlugin builds the nomadscaler target plugin (its own module, next
// to this package) into dir.
func buildPlugin(t *testing.T, dir string) {
	t.Helper()
	out, err := exec.Command("go", "build", "-C", filepath.Join("..", "nomadscaler"), "-o", filepath.Join(dir, "nomadscaler"), ".").CombinedOutput()
	if err != nil {
		t.Fatalf("build the nomadscaler plugin: %v\n%s", err, out)
	}
}

// pluginEvents are the group's scaling events made through the plugin.
func pluginEvents(t *testing.T, c *nomadapi.Client, job, group string, since time.Time) []nomadapi.ScalingEvent {
	var out []nomadapi.ScalingEvent
	for _, e := range scalingEvents(t, c, job, group) {
		if strings.HasPrefix(e.Message, "nomadscaler: ") && time.Unix(0, int64(e.Time)).After(since) {
			out = append(out, e)
		}
	}
	return out
}

func TestTheNomadscalerPluginScalesFromNomadscalerdsPlanThenFromItsCacheThenHolds(t *testing.T) {
	t.Parallel() // mostly waiting on real agents; the package would take too long serially
	nomadtest.Require(t)
	plugins := t.TempDir()
	buildPlugin(t, plugins)
	agent := nomadtest.StartServer(t, nomadtest.Options{CPUMHz: 8000, MemoryMiB: 4096})
	c := agent.Client(t)
	d := startDaemon(t, settings{NomadAddr: agent.Addr})
	// The cache may be served 15 s after it was fetched; then the plugin
	// holds.
	as := startAutoscaler(t, agent.Addr, plugins, `target "nomadscaler" {
  driver = "nomadscaler"
  config = {
    cache_max_age = "15s"
  }
}`)

	// The seed's policy as written (its group here), in the job: the
	// plugin owns it (optimizer_url), nomadscalerd records it and answers.
	// model_step 1s: nomadscalerd forecasts after 30 s of history, not 5 min.
	pol := nomadscalerPolicy(nil, map[string]any{"namespace": "default", "job": "seed", "group": "frontend",
		"optimizer_url": d.HTTP, "cache_size": 10.0, "model_step": "1s"}, map[string]any{"evaluation_interval": "2s", "cooldown": "1s"})
	pol["check"] = []any{map[string]any{"cpu": []any{map[string]any{"source": "nomad-apm", "query": "avg_cpu-allocated",
		"strategy": []any{map[string]any{"target-value": []any{map[string]any{"target": 75.0}}}}}}}}
	job := nomadapi.NewServiceJob("seed", "seed", "global", 50)
	job.Datacenters = []string{"*"}
	job.AddTaskGroup(scalingGroup("frontend", 3, 1, 3, pol))
	if _, _, err := c.Jobs().Register(job, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _, _ = c.Jobs().Deregister("seed", true, nil) })

	// An idle group: target-value wants fewer, the plugin asks nomadscalerd
	// and scales to its plan, the minimum.
	start := time.Now()
	waitUntil(t, 120*time.Second, "the plugin to scale seed/frontend to 1", func() bool {
		return desiredCount(t, c, "seed", "frontend") == 1 && len(pluginEvents(t, c, "seed", "frontend", start)) > 0
	})
	for _, e := range scalingEvents(t, c, "seed", "frontend") {
		if strings.HasPrefix(e.Message, "nomadscalerd") {
			t.Errorf("nomadscalerd scaled the plugin's group: %q", e.Message)
		}
	}

	// nomadscalerd gone: a count moved out of band is put back from the cache.
	d.Stop()
	stopped := time.Now()
	scaleTo := func(n int) {
		t.Helper()
		if _, _, err := c.Jobs().Scale("seed", "frontend", &n, "moved by the test", false, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	scaleTo(3)
	waitUntil(t, 30*time.Second, "the plugin to scale back to 1 from its cache", func() bool {
		return desiredCount(t, c, "seed", "frontend") == 1 && len(pluginEvents(t, c, "seed", "frontend", stopped)) > 0
	})

	// Past cache_max_age the plugin holds whatever count the group has.
	time.Sleep(16 * time.Second)
	scaleTo(3)
	held := time.Now()
	time.Sleep(10 * time.Second) // five evaluations
	if evs := pluginEvents(t, c, "seed", "frontend", held); len(evs) > 0 || desiredCount(t, c, "seed", "frontend") != 3 {
		t.Errorf("with an expired cache the plugin scaled: %+v", evs)
	}
	if l := as.log.String(); !strings.Contains(l, "cached counts expired") {
		t.Errorf("nomad-autoscaler's log does not say the plugin held on an expired cache:\n%s", tail(l, 40))
	}
	if exited, err := as.exited(); exited {
		t.Fatalf("nomad-autoscaler exited (%v)", err)
	}
}
