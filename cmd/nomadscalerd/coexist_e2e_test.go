package main

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/nomadscalerd/nomadscalerd/nomadtest"
)

// autoscalerBinary is HashiCorp's nomad-autoscaler v0.4.7 as
// scripts/install-nomad-autoscaler.sh builds it: $NOMAD_AUTOSCALER_BIN, else
// .cache/nomad-autoscaler/nomad-autoscaler under the module root. Missing
// is a failure, as a missing Nomad is (make test builds both).
func autoscalerBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("NOMAD_AUTOSCALER_BIN"); p != "" {
		return p
	}
	nomadBin := nomadtest.Require(t) // .cache/nomad/nomad: .cache is its grandparent
	p := filepath.Join(filepath.Dir(filepath.Dir(nomadBin)), "nomad-autoscaler", "nomad-autoscaler")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("nomad-autoscaler not built (make test builds it; or set NOMAD_AUTOSCALER_BIN): %v", err)
	}
	return p
}

// autoscaler is a running nomad-autoscaler agent.
type autoscaler struct {
	cmd  *exec.Cmd
	log  *nomadtest.LockedBuffer
	done chan error
}

// startAutoscaler runs nomad-autoscaler against nomadAddr with an empty
// plugin directory, or pluginDir and extra agent config when given.
func startAutoscaler(t *testing.T, nomadAddr string, pluginDirAndExtra ...string) *autoscaler {
	t.Helper()
	bin := autoscalerBinary(t)
	dir := t.TempDir()
	plugins, extra := filepath.Join(dir, "plugins"), ""
	if len(pluginDirAndExtra) == 2 {
		plugins, extra = pluginDirAndExtra[0], pluginDirAndExtra[1]
	}
	port := nomadtest.FreePort(t)
	cfg := fmt.Sprintf(`log_level  = "debug"
plugin_dir = %q
http {
  bind_address = "127.0.0.1"
  bind_port    = %d
}
nomad {
  address = %q
}
%s
`, plugins, port, nomadAddr, extra)
	if err := os.MkdirAll(plugins, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "agent.hcl")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	a := &autoscaler{log: &nomadtest.LockedBuffer{}, done: make(chan error, 1)}
	a.cmd = exec.Command(bin, "agent", "-config", path)
	a.cmd.Stdout, a.cmd.Stderr = a.log, a.log
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { a.done <- a.cmd.Wait() }()
	t.Cleanup(func() {
		if exited, _ := a.exited(); !exited {
			// Interrupt first, so that it stops its plugins; ours, by pid.
			_ = a.cmd.Process.Signal(os.Interrupt)
			select {
			case <-a.done:
			case <-time.After(10 * time.Second):
				_ = a.cmd.Process.Kill()
				<-a.done
			}
		}
		if t.Failed() {
			t.Logf("nomad-autoscaler log:\n%s", tail(a.log.String(), 80))
		}
	})
	health := fmt.Sprintf("http://127.0.0.1:%d/v1/health", port)
	waitUntil(t, 30*time.Second, "nomad-autoscaler's health endpoint", func() bool {
		res, err := http.Get(health)
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	})
	return a
}

// exited reports whether the agent has stopped, and how.
func (a *autoscaler) exited() (bool, error) {
	select {
	case err := <-a.done:
		a.done <- err
		return true, err
	default:
		return false, nil
	}
}

// sharedPolicy is nomadscalerd's policy in the shape that shares a
// namespace with nomad-autoscaler v0.4.7: the scaling block is disabled,
// which nomad-autoscaler's Nomad policy source drops before reading
// anything else, and the target's own enabled switches it on for
// nomadscalerd.
func sharedPolicy(top map[string]any) map[string]any {
	pol := nomadscalerPolicy(nil, map[string]any{"enabled": true, "model_step": "1s"}, top)
	pol["check"] = []any{map[string]any{"cpu": []any{map[string]any{"source": "nomad-apm", "query": "avg_cpu-allocated",
		"strategy": []any{map[string]any{"target-value": []any{map[string]any{"target": 70.0}}}}}}}}
	return pol
}

func TestNomadscalerdAndNomadAutoscalerScaleTwoGroupsOfOneNamespaceWithoutACrash(t *testing.T) {
	t.Parallel() // mostly waiting on real agents; the package would take too long serially
	agent := nomadtest.StartServer(t, nomadtest.Options{CPUMHz: 8000, MemoryMiB: 4096})
	c := agent.Client(t)
	d := startDaemon(t, settings{NomadAddr: agent.Addr})
	as := startAutoscaler(t, agent.Addr)

	// One job in the default namespace, two groups: "ours" idles at 3
	// replicas under nomadscalerd (min 1), "theirs" runs 1 replica under
	// nomad-autoscaler's fixed-value strategy, which wants 2.
	ours := scalingGroup("ours", 3, 1, 5, sharedPolicy(map[string]any{"evaluation_interval": "2s", "cooldown": "2s"}))
	disabled := false
	ours.Scaling.Enabled = &disabled
	theirs := scalingGroup("theirs", 1, 1, 3, map[string]any{
		"evaluation_interval": "2s", "cooldown": "2s",
		"check": []any{map[string]any{"fixed": []any{map[string]any{
			"strategy": []any{map[string]any{"fixed-value": []any{map[string]any{"value": 2.0}}}}}}}},
	})
	job := nomadapi.NewServiceJob("shared", "shared", "global", 50)
	job.Datacenters = []string{"*"}
	job.AddTaskGroup(ours)
	job.AddTaskGroup(theirs)
	if _, _, err := c.Jobs().Register(job, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _, _ = c.Jobs().Deregister("shared", true, nil) })

	waitUntil(t, 90*time.Second, "nomad-autoscaler to scale theirs to 2", func() bool { return desiredCount(t, c, "shared", "theirs") == 2 })
	waitUntil(t, 120*time.Second, "nomadscalerd to scale ours to 1", func() bool { return desiredCount(t, c, "shared", "ours") == 1 })
	// Some more evaluations of both, then neither touched the other's group
	// and nomad-autoscaler is still running.
	time.Sleep(10 * time.Second)
	if exited, err := as.exited(); exited {
		t.Fatalf("nomad-autoscaler exited (%v)", err)
	}
	if l := as.log.String(); strings.Contains(l, "panic:") {
		t.Fatalf("nomad-autoscaler panicked:\n%s", tail(l, 40))
	}
	for _, e := range scalingEvents(t, c, "shared", "ours") {
		if !strings.HasPrefix(e.Message, "nomadscalerd") {
			t.Errorf("ours was scaled by someone else: %+v", e)
		}
	}
	for _, e := range scalingEvents(t, c, "shared", "theirs") {
		if strings.HasPrefix(e.Message, "nomadscalerd") {
			t.Errorf("nomadscalerd scaled nomad-autoscaler's group: %+v", e)
		}
	}
	if n := desiredCount(t, c, "shared", "theirs"); n != 2 {
		t.Errorf("theirs at %d, want nomad-autoscaler's 2", n)
	}
	if n := desiredCount(t, c, "shared", "ours"); n != 1 {
		t.Errorf("ours at %d, want nomadscalerd's 1", n)
	}
	if !strings.Contains(d.logs.String(), "policy active") {
		t.Errorf("nomadscalerd never activated its policy")
	}
}

// The control: the same policy with the scaling block enabled is read by
// nomad-autoscaler v0.4.7, which cannot resolve target "nomadscaler" and
// crashes. This is why the shared shape disables the block.
func TestNomadAutoscalerCrashesOnANomadscalerPolicyWhoseScalingBlockIsEnabled(t *testing.T) {
	t.Parallel() // mostly waiting on real agents; the package would take too long serially
	agent := nomadtest.StartServer(t, nomadtest.Options{CPUMHz: 8000, MemoryMiB: 4096})
	c := agent.Client(t)
	as := startAutoscaler(t, agent.Addr)
	job := nomadapi.NewServiceJob("exposed", "exposed", "global", 50)
	job.Datacenters = []string{"*"}
	job.AddTaskGroup(scalingGroup("ours", 1, 1, 5, sharedPolicy(map[string]any{"evaluation_interval": "2s"})))
	if _, _, err := c.Jobs().Register(job, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _, _ = c.Jobs().Deregister("exposed", true, nil) })
	waitUntil(t, 60*time.Second, "nomad-autoscaler to exit", func() bool {
		exited, _ := as.exited()
		return exited
	})
	l := as.log.String()
	i := strings.Index(l, "panic:")
	if i < 0 {
		t.Fatalf("nomad-autoscaler exited without a panic:\n%s", tail(l, 40))
	}
	t.Logf("nomad-autoscaler: %s", tail(l[i:], 30))
}
