package main

import (
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/nomadscalerd/nomadscalerd/history/promtest"
	"github.com/nomadscalerd/nomadscalerd/nomad"
	"github.com/nomadscalerd/nomadscalerd/nomadtest"
	"github.com/nomadscalerd/nomadscalerd/store"
)

// A replica started next to one holding both shards gets one of them, and
// with it the past of its policies' Prometheus checks: back-filled from
// Prometheus, not only what it samples itself from then on.
func TestAReplicaThatTakesAShardOverHasItsPoliciesHistoryFromBeforeItStarted(t *testing.T) {
	promtest.Require(t)
	agent := nomadtest.StartServer(t, nomadtest.Options{})
	c := agent.Client(t)
	reg := prometheus.NewRegistry()
	level := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "shard_level", Help: "test"}, []string{"svc"})
	reg.MustRegister(level)
	const jobs = 6
	for i := range jobs {
		level.WithLabelValues(fmt.Sprintf("s%d", i)).Set(float64(10 + i))
	}
	prom := promtest.ScrapeRegistry(t, reg)
	for i := range jobs {
		id := fmt.Sprintf("moved-%d", i)
		job := nomadapi.NewServiceJob(id, id, "global", 50)
		job.Datacenters = []string{"*"}
		pol := nomadscalerPolicy(map[string][2]string{"requests": {"prometheus", fmt.Sprintf(`sum(shard_level{svc="s%d"})`, i)}},
			map[string]any{"capacity_per_replica": 10.0, "dry_run": true}, nil)
		job.AddTaskGroup(scalingGroup("web", 0, 0, 3, pol))
		if _, _, err := c.Jobs().Register(job, nil); err != nil {
			t.Fatal(err)
		}
	}
	args := []string{"--nomad-addr", agent.Addr, "--prometheus-addr", prom, "--shards", "2", "--ha-lock-ttl", nomad.MinHandOver.String(), "--sample-interval", "1s"}
	a := startDaemonProcess(t, args...)
	waitUntil(t, 90*time.Second, "the first replica to hold both shards and every policy", func() bool {
		held, keys, _ := shardStatus(a.HTTP)
		return slices.Equal(held, []int{0, 1}) && len(keys) == jobs
	})
	// Half a minute of every gauge in Prometheus before b exists.
	promtest.WaitQuery(t, prom, `count_over_time(shard_level{svc="s0"}[60s]) >= 30`, 90*time.Second)
	bStarted := time.Now()
	b := startDaemonProcess(t, args...)
	var keysB []string
	waitUntil(t, 90*time.Second, "the second replica to hold one shard and its policies", func() bool {
		held, keys, _ := shardStatus(b.HTTP)
		keysB = keys
		return len(held) == 1 && len(keys) > 0
	})
	// b samples its policies only once it holds their shard, after it
	// started: points from before are back-filled ones.
	waitUntil(t, 60*time.Second, "the second replica to back-fill its policies' history", func() bool {
		return counter(scrape(b.HTTP+"/metrics"), "nomadscaler_history_gained_filled_total") >= float64(25*len(keysB))
	})
	path, err := fetchSnapshot(b.HTTP, "")
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(path)
	db, err := store.Open(path, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, key := range keysB {
		var i int
		if _, err := fmt.Sscanf(key, "default/moved-%d/web", &i); err != nil {
			t.Fatalf("policy key %q: %v", key, err)
		}
		pts, err := db.Range(store.SeriesName(key, "requests"), time.Time{}, bStarted)
		if err != nil {
			t.Fatalf("%s in b's database: %v", key, err)
		}
		if len(pts) < 25 {
			t.Errorf("%s has %d points from before b started in b's database, want at least 25 (Prometheus had 30 scrapes)", key, len(pts))
		}
		for _, p := range pts {
			if p.V != float64(10+i) {
				t.Fatalf("%s has %v at %s, want the gauge's %d", key, p.V, p.T, 10+i)
			}
		}
	}
	t.Logf("b holds %v, back-filled %.0f points", keysB, counter(scrape(b.HTTP+"/metrics"), "nomadscaler_history_gained_filled_total"))
}
