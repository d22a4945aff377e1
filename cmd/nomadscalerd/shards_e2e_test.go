package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/nomadscalerd/nomadscalerd/nomad"
	"github.com/nomadscalerd/nomadscalerd/nomadtest"
)

// shardStatus is what a replica's status says about its shards: the shards
// it holds and the policies it reconciles. ok is false when the replica
// did not answer.
func shardStatus(base string) (held []int, keys []string, ok bool) {
	var st struct {
		Policies []struct {
			Policy struct {
				Key string `json:"key"`
			} `json:"policy"`
		} `json:"policies"`
		Shards []int `json:"shards"`
	}
	res, err := http.Get(base + "/v1/status")
	if err != nil {
		return nil, nil, false
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK || json.NewDecoder(res.Body).Decode(&st) != nil {
		return nil, nil, false
	}
	for _, p := range st.Policies {
		keys = append(keys, p.Policy.Key)
	}
	sort.Strings(keys)
	sort.Ints(st.Shards)
	return st.Shards, keys, true
}

// With ACLs on and the replicas holding a token of the policy the job file
// documents (which sees no variable lock: Nomad v1.10 lists them to
// management tokens only), one replica started alone takes both shards; a
// second started later gets one of them (rebalancing), every policy stays
// on exactly one replica, and when one is SIGKILLed (no release) the other
// takes its shard over after the lock TTL.
func TestWithTheDocumentedTokenASecondReplicaGetsOneOfTwoShardsAndASurvivorTakesAKilledReplicasShardOver(t *testing.T) {
	agent := nomadtest.StartServer(t, nomadtest.Options{ACLs: true})
	c := agent.Client(t) // the management token: jobs are registered with it
	token := agent.TokenFor(t, "nomadscalerd", nomadtest.JobFilePolicy(t, "../../deploy/nomad/nomadscalerd.nomad.hcl"))
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
	// The shortest hand-over Nomad allows (a 10 s Nomad lock TTL).
	ttl := nomad.MinHandOver
	args := []string{"--nomad-addr", agent.Addr, "--nomad-token", token, "--shards", "2", "--ha-lock-ttl", ttl.String()}
	a := startDaemonProcess(t, args...)
	waitUntil(t, 90*time.Second, "the first replica to hold both shards and every policy", func() bool {
		held, keys, _ := shardStatus(a.HTTP)
		return slices.Equal(held, []int{0, 1}) && len(keys) == jobs
	})

	b := startDaemonProcess(t, args...)
	// split reports whether each replica holds one shard and every policy
	// is on exactly one of them.
	split := func() (string, bool) {
		ha, ka, okA := shardStatus(a.HTTP)
		hb, kb, okB := shardStatus(b.HTTP)
		desc := fmt.Sprintf("a holds shards %v (%s), b %v (%s)", ha, strings.Join(ka, " "), hb, strings.Join(kb, " "))
		if !okA || !okB || len(ha) != 1 || len(hb) != 1 || ha[0] == hb[0] {
			return desc, false
		}
		seen := map[string]int{}
		for _, k := range append(slices.Clone(ka), kb...) {
			seen[k]++
		}
		for _, n := range seen {
			if n != 1 {
				return desc, false
			}
		}
		return desc, len(seen) == jobs
	}
	start := time.Now()
	waitUntil(t, 90*time.Second, "the two replicas to hold one shard each", func() bool { _, ok := split(); return ok })
	t.Logf("rebalanced %.1f s after the second replica started", time.Since(start).Seconds())
	// Held for a while, past the cooldown: no flapping, no policy on both
	// or on neither.
	for range 20 {
		if desc, ok := split(); !ok {
			t.Fatalf("after rebalancing: %s; want one shard each and each of %d policies on exactly one", desc, jobs)
		}
		time.Sleep(time.Second)
	}
	desc, _ := split()
	t.Log(desc)

	// Crash: no release, so b's shard is unowned until its lock runs out.
	killed := time.Now()
	if err := b.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 2*ttl+15*time.Second, "the survivor to take the killed replica's shard over", func() bool {
		held, keys, _ := shardStatus(a.HTTP)
		return slices.Equal(held, []int{0, 1}) && len(keys) == jobs
	})
	t.Logf("the killed replica's shard taken over %.1f s after the SIGKILL (lock TTL %s)", time.Since(killed).Seconds(), ttl)
}
