package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/nomadscalerd/nomadscalerd/nomadtest"
)

// constantPolicy plans for a flat request rate: 10 req/s per replica.
func constantPolicy(extra map[string]any) map[string]any {
	target := map[string]any{
		"capacity_per_replica": 10.0, "cache_size": 5.0, "forecast_horizon": 20.0, "model_step": "1s",
		"history_window": "5m", "refit_interval": "30s", "stale_after": "10s", "orders": "1,0,0", "forecast_margin": 0.0,
		"max_scale_up": 5.0, "max_scale_down": 5.0,
	}
	for k, v := range extra {
		target[k] = v
	}
	return nomadscalerPolicy(map[string][2]string{"requests": {"prometheus", "sum(rate(demo_requests_total[5s]))"}},
		target, map[string]any{"evaluation_interval": "1s", "cooldown": "2s"})
}

func constantJob(t *testing.T, id string, loadPort int, rate float64, groups ...*nomadapi.TaskGroup) *nomadapi.Job {
	job := nomadapi.NewServiceJob(id, id, "global", 50)
	job.Datacenters = []string{"*"}
	r := fmt.Sprint(rate)
	job.AddTaskGroup(loadGroup(t, fmt.Sprintf("127.0.0.1:%d", loadPort), "--pattern", "step", "--low", r, "--high", r, "--noise", "0"))
	for _, g := range groups {
		job.AddTaskGroup(g)
	}
	return job
}

func getJSON(t *testing.T, url, token string, v any) int {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	_ = json.Unmarshal(b, v)
	return res.StatusCode
}

// waitEnough waits until the group's desired count covers need replicas
// with at most two of margin: the plan adds headroom for the load's noise.
func waitEnough(t *testing.T, c *nomadapi.Client, job, group string, need int, within time.Duration) {
	t.Helper()
	waitUntil(t, within, fmt.Sprintf("%s/%s desired count in [%d, %d]", job, group, need, need+2), func() bool {
		st, _, err := c.Jobs().ScaleStatus(job, nil)
		if err != nil {
			return false
		}
		d := st.TaskGroups[group].Desired
		return d >= need && d <= need+2
	})
}

func waitDesired(t *testing.T, c *nomadapi.Client, job, group string, want int, within time.Duration) {
	t.Helper()
	waitUntil(t, within, fmt.Sprintf("%s/%s desired count %d", job, group, want), func() bool {
		st, _, err := c.Jobs().ScaleStatus(job, nil)
		return err == nil && st.TaskGroups[group].Desired == want
	})
}

func TestAnInvalidPolicyIsReportedAndSkippedWhileAValidOneScales(t *testing.T) {
	t.Parallel() // mostly waiting on real agents; the package would take too long serially
	agent, c, loadPort, prom := startLoadCluster(t)
	d := startDaemon(t, settings{NomadAddr: agent.Addr, PrometheusAddr: prom})

	bad := constantPolicy(nil)
	bad["check"] = []any{map[string]any{"requests": []any{map[string]any{"source": "datadog", "query": "x"}}}}
	job := constantJob(t, "mixed", loadPort, 50, scalingGroup("good", 1, 1, 8, constantPolicy(nil)), scalingGroup("bad", 1, 1, 8, bad))
	if _, _, err := c.Jobs().Register(job, nil); err != nil {
		t.Fatal(err)
	}
	waitEnough(t, c, "mixed", "good", 5, 150*time.Second)
	if n := desiredCount(t, c, "mixed", "bad"); n != 1 {
		t.Errorf("the invalid group was scaled to %d", n)
	}
	var st struct {
		Invalid  map[string]string `json:"invalid_policies"`
		Policies []struct {
			Policy struct{ Key string } `json:"policy"`
		} `json:"policies"`
	}
	if code := getJSON(t, d.HTTP+"/v1/status", "", &st); code != 200 {
		t.Fatalf("status %d", code)
	}
	if !strings.Contains(st.Invalid["default/mixed/bad"], `unknown source "datadog"`) {
		t.Errorf("invalid policies = %v", st.Invalid)
	}
	if len(st.Policies) != 1 || st.Policies[0].Policy.Key != "default/mixed/good" {
		t.Errorf("active policies = %+v", st.Policies)
	}
	logs := d.logs.String()
	if !strings.Contains(logs, "invalid scaling policy skipped") || !strings.Contains(logs, "job=mixed") || !strings.Contains(logs, "group=bad") {
		t.Errorf("the log does not name the job, group and reason")
	}
	res, err := http.Get(d.HTTP + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(b), "nomadscaler_invalid_policies_total 1") || !strings.Contains(string(b), `nomadscaler_policies{state="invalid"} 1`) {
		t.Errorf("invalid policy not counted in metrics")
	}
}

func TestScalingResumesAfterNomadIsKilledAndRestartedWithoutDuplicateActions(t *testing.T) {
	t.Parallel() // mostly waiting on real agents; the package would take too long serially
	agent, c, loadPort, prom := startLoadCluster(t)
	d := startDaemon(t, settings{NomadAddr: agent.Addr, PrometheusAddr: prom})
	if _, _, err := c.Jobs().Register(constantJob(t, "shop", loadPort, 50, scalingGroup("web", 1, 1, 8, constantPolicy(nil))), nil); err != nil {
		t.Fatal(err)
	}
	waitEnough(t, c, "shop", "web", 5, 150*time.Second)

	agent.Kill()
	time.Sleep(5 * time.Second) // the daemon retries with backoff meanwhile
	agent.Start(t)
	// The load changes after the outage: 20 req/s needs 2 replicas. Counts
	// are preserved, so only nomadscalerd moves the group.
	job := constantJob(t, "shop", loadPort, 20, scalingGroup("web", 1, 1, 8, constantPolicy(nil)))
	if _, _, err := c.Jobs().RegisterOpts(job, &nomadapi.RegisterOptions{PreserveCounts: true}, nil); err != nil {
		t.Fatal(err)
	}
	waitEnough(t, c, "shop", "web", 2, 150*time.Second)
	time.Sleep(5 * time.Second)

	// Every scale carries its journal action's ID: one applied twice shows
	// up as two events with one ID. Nomad keeps a group's last 20 events.
	evs := scalingEvents(t, c, "shop", "web")
	if len(evs) >= 20 {
		t.Fatalf("%d scaling events: Nomad may have dropped older ones, the check would be blind", len(evs))
	}
	seen := map[string]int{}
	downs := 0
	for _, e := range evs {
		if e.Count == nil {
			continue
		}
		id, _ := e.Meta["action_id"].(string)
		if id == "" {
			t.Errorf("scaling event %d->%d carries no action_id: %v", e.PreviousCount, *e.Count, e.Meta)
			continue
		}
		seen[id]++
		if *e.Count < e.PreviousCount {
			downs++
		}
	}
	for id, n := range seen {
		if n > 1 {
			t.Errorf("action %s applied %d times", id, n)
		}
	}
	// The scale-down after the outage must be there. The scale-up's event
	// may not be: Nomad writes a scale's count and its scaling event in two
	// raft applies (nomad/job_endpoint.go:1079 and :1130 in v1.10.0), so a
	// kill between them keeps the count and loses the event.
	if downs == 0 {
		t.Errorf("no scale-down event after the outage among %d actions", len(seen))
	}
	if !strings.Contains(d.logs.String(), "nomad event stream interrupted") {
		t.Errorf("the watcher never saw the outage")
	}
	t.Logf("actions: %v", seen)
}

func TestOnlyTheLeaderOfTwoHAReplicasScalesAndTheOtherTakesOver(t *testing.T) {
	t.Parallel() // mostly waiting on real agents; the package would take too long serially
	agent, c, loadPort, prom := startLoadCluster(t)
	a := startDaemon(t, settings{NomadAddr: agent.Addr, PrometheusAddr: prom, HA: true})
	b := startDaemon(t, settings{NomadAddr: agent.Addr, PrometheusAddr: prom, HA: true})
	role := func(d *daemon) string {
		var h map[string]string
		getJSON(t, d.HTTP+"/health", "", &h)
		return h["role"]
	}
	waitUntil(t, 60*time.Second, "one leader", func() bool { return role(a) == "leader" || role(b) == "leader" })
	leader, follower := a, b
	if role(b) == "leader" {
		leader, follower = b, a
	}
	if role(follower) != "follower" {
		t.Fatalf("two leaders")
	}
	if _, _, err := c.Jobs().Register(constantJob(t, "shop", loadPort, 30, scalingGroup("web", 1, 1, 8, constantPolicy(nil))), nil); err != nil {
		t.Fatal(err)
	}
	waitEnough(t, c, "shop", "web", 3, 150*time.Second)
	var st struct {
		Leader   bool `json:"leader"`
		Policies []struct {
			LastDecision struct{ Action, Reason string } `json:"last_decision"`
		} `json:"policies"`
	}
	getJSON(t, follower.HTTP+"/v1/status", "", &st)
	if st.Leader || len(st.Policies) != 1 || !strings.Contains(st.Policies[0].LastDecision.Reason, "follower") {
		t.Errorf("follower status = %+v", st)
	}
	leader.Stop()
	waitUntil(t, 30*time.Second, "the follower to take over", func() bool { return role(follower) == "leader" })
	job := constantJob(t, "shop", loadPort, 60, scalingGroup("web", 1, 1, 8, constantPolicy(nil)))
	if _, _, err := c.Jobs().RegisterOpts(job, &nomadapi.RegisterOptions{PreserveCounts: true}, nil); err != nil {
		t.Fatal(err)
	}
	waitEnough(t, c, "shop", "web", 6, 120*time.Second)
}

// BenchmarkReactionFromJobEventToReconcile measures, on a real agent, the
// time from a job update being accepted by Nomad to the start of the
// reconcile it triggers (read back from the reconcile's own timestamp).
func BenchmarkReactionFromJobEventToReconcile(b *testing.B) {
	agent := nomadtest.StartServer(b, nomadtest.Options{CPUMHz: 8000, MemoryMiB: 4096})
	c := agent.Client(b)
	d := startDaemon(b, settings{NomadAddr: agent.Addr})
	pol := constantPolicy(nil)
	pol["evaluation_interval"] = "1h" // only events trigger reconciles
	job := nomadapi.NewServiceJob("react", "react", "global", 50)
	job.Datacenters = []string{"*"}
	job.AddTaskGroup(scalingGroup("web", 1, 1, 8, pol))
	if _, _, err := c.Jobs().Register(job, nil); err != nil {
		b.Fatal(err)
	}
	lastDecision := func() time.Time {
		var st struct {
			Policies []struct {
				LastDecision struct {
					Time time.Time `json:"time"`
				} `json:"last_decision"`
			} `json:"policies"`
		}
		getJSONB(d.HTTP+"/v1/status", &st)
		if len(st.Policies) == 0 {
			return time.Time{}
		}
		return st.Policies[0].LastDecision.Time
	}
	deadline := time.Now().Add(30 * time.Second)
	for lastDecision().IsZero() && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	n := max(b.N, 100)
	lags := make([]time.Duration, 0, n)
	b.ResetTimer()
	for i := 0; i < n; i++ {
		job.Meta = map[string]string{"rev": fmt.Sprint(i)}
		before := lastDecision()
		sent := time.Now()
		if _, _, err := c.Jobs().RegisterOpts(job, &nomadapi.RegisterOptions{PreserveCounts: true}, nil); err != nil {
			b.Fatal(err)
		}
		for {
			if at := lastDecision(); at.After(before) && at.After(sent) {
				lags = append(lags, at.Sub(sent))
				break
			}
			if time.Since(sent) > 10*time.Second {
				b.Fatalf("no reconcile within 10s of update %d", i)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	b.StopTimer()
	sort.Slice(lags, func(i, j int) bool { return lags[i] < lags[j] })
	p50, p99 := lags[len(lags)/2], lags[len(lags)*99/100]
	b.ReportMetric(float64(p50.Microseconds())/1000, "p50_ms")
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99_ms")
	b.Logf("job update -> reconcile start over %d updates: p50 %s, p99 %s (nomad-autoscaler polls every 10s)", len(lags), p50, p99)
}

func getJSONB(url string, v any) {
	res, err := http.Get(url)
	if err != nil {
		return
	}
	defer res.Body.Close()
	_ = json.NewDecoder(res.Body).Decode(v)
}
