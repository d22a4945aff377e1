package history

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/nomadscalerd/nomadscalerd/nomadtest"
)

func TestNomadAPMReadsAllocationStatsOfARunningRawExecGroup(t *testing.T) {
	agent := nomadtest.StartServer(t, nomadtest.Options{CPUMHz: 2000, MemoryMiB: 1024})
	c := agent.Client(t)
	job := nomadtest.RawExecJob("apm", "web", 2, "/bin/sleep", "600")
	job.AddTaskGroup(nomadapi.NewTaskGroup("idle", 0))
	job.TaskGroups[1].AddTask(job.TaskGroups[0].Tasks[0])
	if _, _, err := c.Jobs().Register(job, nil); err != nil {
		t.Fatal(err)
	}
	src := NewNomadAPM(c)
	ctx := context.Background()
	q := func(query string) Query {
		return Query{Source: SourceNomadAPM, Query: query, Namespace: "default", Job: "apm", Group: "web"}
	}

	// Stats exist once both allocations run and the client has measured
	// them; until then samples fail or read zero memory.
	var mib float64
	deadline := time.Now().Add(90 * time.Second)
	for {
		v, err := src.Sample(ctx, q("sum_memory_mib"))
		running := countRunning(t, c, "apm", "web")
		if err == nil && v > 0 && running == 2 {
			mib = v
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no memory stats for 2 running allocations after 90 s (last %v, %v, running %d)\n%s", v, err, running, agent.Log())
		}
		time.Sleep(500 * time.Millisecond)
	}
	avg, err := src.Sample(ctx, q("avg_memory_mib"))
	if err != nil {
		t.Fatal(err)
	}
	pct, err := src.Sample(ctx, q("avg_memory_percent"))
	if err != nil {
		t.Fatal(err)
	}
	cpu, err := src.Sample(ctx, q("avg_cpu_percent"))
	if err != nil {
		t.Fatal(err)
	}
	mhz, err := src.Sample(ctx, q("max_cpu_mhz"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("sum_memory_mib=%.3f avg_memory_mib=%.3f avg_memory_percent=%.3f avg_cpu_percent=%.3f max_cpu_mhz=%.3f", mib, avg, pct, cpu, mhz)
	// A sleeping process uses well under its 64 MiB and 100 MHz.
	if avg <= 0 || avg > 64 {
		t.Errorf("avg_memory_mib = %v, want within (0, 64]", avg)
	}
	// Percent is MiB over the 64 MiB the task asked for; sleep's memory
	// does not move between the two samples by more than a page or two.
	if want := avg / 64 * 100; pct < want*0.8 || pct > want*1.2 {
		t.Errorf("avg_memory_percent = %v, want about %v (avg_memory_mib / 64 MiB)", pct, want)
	}
	if cpu < 0 || cpu > 50 || mhz < 0 {
		t.Errorf("an idle sleep reads cpu %v%% / %v MHz", cpu, mhz)
	}

	// A job that keeps a few percent of a core busy: its CPU in MHz and as
	// a percentage of the 100 MHz it asked for are the same number.
	burn := nomadtest.RawExecJob("burn", "work", 1, "/bin/sh", "-c",
		"while :; do i=0; while [ $i -lt 3000 ]; do i=$((i+1)); done; sleep 0.1; done")
	if _, _, err := c.Jobs().Register(burn, nil); err != nil {
		t.Fatal(err)
	}
	bq := func(query string) Query {
		return Query{Source: SourceNomadAPM, Query: query, Namespace: "default", Job: "burn", Group: "work"}
	}
	deadline = time.Now().Add(90 * time.Second)
	for {
		v, err := src.Sample(ctx, bq("avg_cpu_mhz"))
		if err == nil && v > 0 {
			p, err := src.Sample(ctx, bq("avg_cpu_percent"))
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("burn: avg_cpu_mhz=%.2f avg_cpu_percent=%.2f", v, p)
			if p < v*0.5 || p > v*1.5 {
				t.Errorf("avg_cpu_percent = %v, want about avg_cpu_mhz / 100 MHz * 100 = %v", p, v)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("burn job never showed CPU use (last %v, %v)", v, err)
		}
		time.Sleep(500 * time.Millisecond)
	}

	if _, err := src.Sample(ctx, Query{Query: "avg_cpu_percent", Namespace: "default", Job: "apm", Group: "idle"}); !errors.Is(err, ErrNoData) {
		t.Errorf("group without allocations: err = %v, want ErrNoData", err)
	}
	if _, err := src.Sample(ctx, Query{Query: "avg_cpu_percent", Namespace: "default", Job: "apm", Group: "nope"}); err == nil || !strings.Contains(err.Error(), "no group") {
		t.Errorf("unknown group: err = %v", err)
	}
	if _, err := src.Sample(ctx, Query{Query: "avg_cpu_percent", Namespace: "default", Job: "missing", Group: "web"}); err == nil {
		t.Error("unknown job: no error")
	}
	if _, err := src.Sample(ctx, q("p99_cpu_percent")); err == nil || !strings.Contains(err.Error(), "unknown query") {
		t.Errorf("unknown query: err = %v", err)
	}
}

func countRunning(t *testing.T, c *nomadapi.Client, job, group string) int {
	t.Helper()
	allocs, _, err := c.Jobs().Allocations(job, false, nil)
	if err != nil {
		return 0
	}
	n := 0
	for _, a := range allocs {
		if a.TaskGroup == group && a.ClientStatus == nomadapi.AllocClientStatusRunning {
			n++
		}
	}
	return n
}
