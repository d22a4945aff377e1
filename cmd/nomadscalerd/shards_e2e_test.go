package main

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/nomadscalerd/nomadscalerd/nomad"
	"github.com/nomadscalerd/nomadscalerd/nomadtest"
)

// policyKeys reads which policies a replica reconciles from its status.
func policyKeys(t *testing.T, d *daemon) []string {
	var st struct {
		Policies []struct {
			Policy struct {
				Key string `json:"key"`
			} `json:"policy"`
		} `json:"policies"`
	}
	getJSONB(d.HTTP+"/v1/status", &st)
	var out []string
	for _, p := range st.Policies {
		out = append(out, p.Policy.Key)
	}
	sort.Strings(out)
	return out
}

func TestTwoReplicasWithTwoShardsReconcileEveryPolicyExactlyOnceAndTheSurvivorTakesOver(t *testing.T) {
	agent := nomadtest.StartServer(t, nomadtest.Options{})
	c := agent.Client(t)
	const jobs = 8
	for i := range jobs {
		id := fmt.Sprintf("sharded-%d", i)
		job := nomadapi.NewServiceJob(id, id, "global", 50)
		job.Datacenters = []string{"*"}
		pol := nomadscalerPolicy(map[string][2]string{"requests": {"nomad-apm", "sum_cpu_mhz"}},
			map[string]any{"capacity_per_replica": 10.0, "dry_run": true}, nil)
		job.AddTaskGroup(scalingGroup("web", 0, 0, 3, pol))
		if _, _, err := c.Jobs().Register(job, nil); err != nil {
			t.Fatal(err)
		}
	}
	a := startDaemon(t, settings{NomadAddr: agent.Addr, Shards: 2, HALockTTL: nomad.MinHandOver})
	b := startDaemon(t, settings{NomadAddr: agent.Addr, Shards: 2, HALockTTL: nomad.MinHandOver})
	split := func() (ka, kb []string, ok bool) {
		ka, kb = policyKeys(t, a), policyKeys(t, b)
		seen := map[string]int{}
		for _, k := range append(append([]string{}, ka...), kb...) {
			seen[k]++
		}
		for _, n := range seen {
			if n != 1 {
				return ka, kb, false
			}
		}
		return ka, kb, len(seen) == jobs
	}
	waitUntil(t, 90*time.Second, "the two replicas to split every policy between them", func() bool { _, _, ok := split(); return ok })
	// Held for a while: never a policy on both, none on neither.
	for range 10 {
		if ka, kb, ok := split(); !ok {
			t.Fatalf("policies split %v / %v: want each of %d on exactly one replica", ka, kb, jobs)
		}
		time.Sleep(300 * time.Millisecond)
	}
	ka, kb, _ := split()
	t.Logf("replica a: %s; replica b: %s", strings.Join(ka, " "), strings.Join(kb, " "))
	// The replica with policies stops; the other takes its shards.
	gone, survivor := a, b
	if len(ka) == 0 {
		gone, survivor = b, a
	}
	gone.Stop()
	waitUntil(t, 60*time.Second, "the surviving replica to take every shard over", func() bool { return len(policyKeys(t, survivor)) == jobs })
}
