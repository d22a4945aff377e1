package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/nomadscalerd/nomadscalerd/history/promtest"
	"github.com/nomadscalerd/nomadscalerd/nomad"
	"github.com/nomadscalerd/nomadscalerd/nomadtest"
)

func waitUntil(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s", d, what)
}

// daemon runs nomadscalerd in-process until stopped.
type daemon struct {
	HTTP   string
	cancel context.CancelFunc
	done   chan error
	logs   *nomadtest.LockedBuffer
}

func startDaemon(t testing.TB, s settings) *daemon {
	t.Helper()
	if s.HTTPAddr == "" {
		s.HTTPAddr = fmt.Sprintf("127.0.0.1:%d", nomadtest.FreePort(t))
	}
	if s.DB == "" {
		s.DB = filepath.Join(t.TempDir(), "nomadscalerd.db")
	}
	if s.CacheSize == 0 {
		s.CacheSize, s.ForecastHorizon = 10, 60
	}
	if s.SampleInterval == 0 {
		s.SampleInterval = time.Second
	}
	if s.HALockTTL == 0 {
		s.HALockTTL = nomad.MinHandOver
	}
	d := &daemon{HTTP: "http://" + s.HTTPAddr, done: make(chan error, 1), logs: &nomadtest.LockedBuffer{}}
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	log := slog.New(slog.NewTextHandler(d.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	go func() { d.done <- runDaemon(ctx, s, log) }()
	t.Cleanup(func() {
		d.Stop()
		if t.Failed() {
			t.Logf("daemon %s log:\n%s", s.HTTPAddr, tail(d.logs.String(), 120))
		}
	})
	return d
}

func (d *daemon) Stop() {
	if d.cancel == nil {
		return
	}
	d.cancel()
	d.cancel = nil
	<-d.done
}

func tail(s string, lines int) string {
	ls := strings.Split(s, "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}

// scalingGroup is a task group that only sleeps, with a nomadscaler policy.
func scalingGroup(name string, count, min, max int, policy map[string]any) *nomadapi.TaskGroup {
	tg := nomadapi.NewTaskGroup(name, count)
	task := nomadapi.NewTask("main", "raw_exec")
	task.Config = map[string]any{"command": "/bin/sleep", "args": []string{"3600"}}
	task.Resources = &nomadapi.Resources{CPU: intp(20), MemoryMB: intp(16)}
	task.LogConfig = &nomadapi.LogConfig{MaxFiles: intp(1), MaxFileSizeMB: intp(1)}
	tg.AddTask(task)
	tg.EphemeralDisk = &nomadapi.EphemeralDisk{SizeMB: intp(10)}
	// No deployments: each scale would otherwise start one, and Nomad
	// blocks scaling until it finishes (handled, but it slows the tests).
	tg.Update = &nomadapi.UpdateStrategy{MaxParallel: intp(0)}
	enabled := true
	mn, mx := int64(min), int64(max)
	tg.Scaling = &nomadapi.ScalingPolicy{Min: &mn, Max: &mx, Enabled: &enabled, Policy: policy}
	return tg
}

// loadGroup runs `nomadscalerd demo load` (this test binary) as a raw_exec task.
func loadGroup(t *testing.T, listen string, args ...string) *nomadapi.TaskGroup {
	tg := nomadapi.NewTaskGroup("load", 1)
	task := nomadapi.NewTask("load", "raw_exec")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	task.Config = map[string]any{"command": self, "args": append([]string{"demo", "load", "--listen", listen}, args...)}
	task.Env = map[string]string{runMainEnv: "1"}
	task.Resources = &nomadapi.Resources{CPU: intp(50), MemoryMB: intp(64)}
	task.LogConfig = &nomadapi.LogConfig{MaxFiles: intp(1), MaxFileSizeMB: intp(1)}
	tg.AddTask(task)
	tg.EphemeralDisk = &nomadapi.EphemeralDisk{SizeMB: intp(10)}
	return tg
}

// nomadscalerPolicy builds a scaling policy body in the shape Nomad stores.
func nomadscalerPolicy(checks map[string][2]string, target map[string]any, top map[string]any) map[string]any {
	pol := map[string]any{}
	var cl []any
	names := make([]string, 0, len(checks))
	for n := range checks {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		cl = append(cl, map[string]any{n: []any{map[string]any{"source": checks[n][0], "query": checks[n][1]}}})
	}
	pol["check"] = cl
	pol["target"] = []any{map[string]any{"nomadscaler": []any{target}}}
	for k, v := range top {
		pol[k] = v
	}
	return pol
}

func scalingEvents(t *testing.T, c *nomadapi.Client, job, group string) []nomadapi.ScalingEvent {
	t.Helper()
	st, _, err := c.Jobs().ScaleStatus(job, nil)
	if err != nil {
		t.Fatal(err)
	}
	evs := st.TaskGroups[group].Events
	sort.Slice(evs, func(i, j int) bool { return evs[i].Time < evs[j].Time })
	return evs
}

func desiredCount(t *testing.T, c *nomadapi.Client, job, group string) int {
	t.Helper()
	st, _, err := c.Jobs().ScaleStatus(job, nil)
	if err != nil {
		t.Fatal(err)
	}
	return st.TaskGroups[group].Desired
}

func intp(i int) *int { return &i }

// startLoadCluster starts a real Nomad agent with room for a scaled group,
// picks the port the demo load task will serve on, and starts a Prometheus
// scraping it; it returns the agent, its client, the port and Prometheus'
// address.
func startLoadCluster(t *testing.T) (*nomadtest.Agent, *nomadapi.Client, int, string) {
	t.Helper()
	agent := nomadtest.StartServer(t, nomadtest.Options{CPUMHz: 8000, MemoryMiB: 4096})
	loadPort := nomadtest.FreePort(t)
	prom := promtest.StartPrometheus(t, []string{fmt.Sprintf("127.0.0.1:%d", loadPort)})
	return agent, agent.Client(t), loadPort, prom
}
