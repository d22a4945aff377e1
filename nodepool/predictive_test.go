package nodepool

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"
)

func TestPlannedAllocationsAreThePlansPeaksAboveTheCurrentCounts(t *testing.T) {
	r := Resources{CPUMHz: 500, MemoryMiB: 256}
	got := PlannedAllocations([]PlannedGroup{
		{Job: "web", Group: "api", Current: 4, Peak: 7, Resources: r},
		{Job: "web", Group: "ui", Current: 5, Peak: 3, Resources: r}, // falling: adds nothing
		{Job: "batch", Group: "w", Current: 1, Peak: 2, Resources: r},
		{Job: "unknown", Group: "size", Current: 0, Peak: 9}, // no resources known: no capacity to plan
	})
	if len(got) != 2 || got[0].Job != "batch" || got[0].Count != 1 || got[1].Group != "api" || got[1].Count != 3 {
		t.Fatalf("planned %+v, want batch/w 1 and web/api 3", got)
	}
}

func TestFitPlannedFillsFreeCapacityFirstAndReturnsWhatDoesNotFit(t *testing.T) {
	free := []Resources{{CPUMHz: 1000, MemoryMiB: 4096}, {CPUMHz: 600, MemoryMiB: 4096}}
	left, rest := FitPlanned(free, []QueuedGroup{{Job: "web", Group: "api", Count: 4, Resources: Resources{CPUMHz: 500, MemoryMiB: 256}}})
	if len(left) != 1 || left[0].Count != 1 {
		t.Fatalf("left %+v, want 1 of 4 unplaced (two fit on the first node, one on the second)", left)
	}
	if rest[0].CPUMHz != 0 || rest[1].CPUMHz != 100 {
		t.Fatalf("free left %+v, want 0 and 100 MHz", rest)
	}
}

func TestAPredictivePoolLaunchesForPlannedAllocationsAndKeepsNodesThePlansNeed(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	p := testPool()
	p.Min = 0
	p.ScaleDownMaxFraction = 1
	p.LeadTime = 3 * time.Minute
	alloc := Resources{CPUMHz: 1000, MemoryMiB: 512}
	// Three nodes of 8 units with 7 free each: idle, 21 units free.
	nodes := []Node{unitsNode("a", 7), unitsNode("b", 7), unitsNode("c", 7)}
	idle := IdleState{Nodes: map[string]NodeIdle{}}
	for _, n := range nodes {
		idle.Nodes[n.ID] = NodeIdle{Periods: p.Idle.Periods}
	}
	cases := []struct {
		name       string
		planned    int // allocations of 1 unit the plans add within the lead time
		wantLaunch int // small nodes (4 units each) launched
		wantDrains bool
		wantReason string
	}{
		{"no plans ahead: idle nodes drain", 0, 0, true, "draining"},
		{"planned work fits on the nodes that stay: still drains", 10, 0, true, "draining"},
		{"planned work needs every node: none drains", 19, 0, false, "kept"},
		{"planned work beyond the free capacity launches nodes now", 29, 2, false, "plans ask for 8 allocations within 3m0s that do not fit"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var planned []QueuedGroup
			if c.planned > 0 {
				planned = []QueuedGroup{{Job: "web", Group: "api", Count: c.planned, Resources: alloc}}
			}
			d, err := Decide(context.Background(), GreedyChooser{}, DecideInput{Pool: p, Nodes: nodes, Idle: idle, Now: now, Planned: planned})
			if err != nil {
				t.Fatal(err)
			}
			if LaunchCount(d.ScaleOut) != c.wantLaunch || (len(d.Drains) > 0) != c.wantDrains || !strings.Contains(d.Reason, c.wantReason) {
				t.Fatalf("decision: launch %v (%s) drains %v reason %q; want %d launched, drains %v, reason with %q",
					d.ScaleOut, d.ScaleOutReason, d.Drains, d.Reason, c.wantLaunch, c.wantDrains, c.wantReason)
			}
			if c.wantLaunch > 0 && d.ScaleOutReason != ScaleOutPredictive {
				t.Errorf("scale-out reason %q, want %q", d.ScaleOutReason, ScaleOutPredictive)
			}
		})
	}
}

func TestAPredictiveBlockResolvesItsLeadTime(t *testing.T) {
	src := `
pool "web" {
  max = 10
  instance_type "small" {
    cpu_mhz = 4000
    memory_mib = 2048
    price = 1
  }
  predictive {}
  provider "noop" {}
}
pool "batch" {
  max = 10
  instance_type "small" {
    cpu_mhz = 4000
    memory_mib = 2048
    price = 1
  }
  predictive {
    lead_time = "5m"
  }
  provider "noop" {}
}
pool "plain" {
  max = 10
  instance_type "small" {
    cpu_mhz = 4000
    memory_mib = 2048
    price = 1
  }
  provider "noop" {}
}
`
	pools, err := ParsePools([]byte(src), "pools.hcl")
	if err != nil {
		t.Fatal(err)
	}
	lead := map[string]time.Duration{}
	for _, p := range pools {
		lead[p.Name] = p.LeadTime
	}
	if lead["web"] != 3*time.Minute || lead["batch"] != 5*time.Minute || lead["plain"] != 0 {
		t.Fatalf("lead times %v, want web 3m (default), batch 5m, plain 0 (not predictive)", lead)
	}
	_, err = ParsePools([]byte(strings.Replace(src, `"5m"`, `"soon"`, 1)), "pools.hcl")
	if err == nil || !strings.Contains(err.Error(), "predictive.lead_time") {
		t.Fatalf("a bad lead_time gave %v, want an error naming predictive.lead_time", err)
	}
}

// fakeJobs counts reads of a fixed set of jobs.
type fakeJobs struct {
	jobs  map[string]*nomadapi.Job
	reads int
}

func (f *fakeJobs) JobState(_ context.Context, _, id string) (*nomadapi.Job, *nomadapi.JobSummary, error) {
	f.reads++
	j, ok := f.jobs[id]
	if !ok {
		return nil, nil, errors.New("job not found")
	}
	return j, nil, nil
}

func TestPeakPlansWithFakeJobsSizeRisingGroupsOfThePoolsJobsAndCacheTheJobs(t *testing.T) {
	web := testJob("web", "api") // 500 MHz, 256 MiB a replica, datacenter dc1, node pool default
	other := testJob("other", "api")
	pool := "gpu"
	other.NodePool = &pool
	jobs := &fakeJobs{jobs: map[string]*nomadapi.Job{"web": web, "other": other}}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	src := NewPeakPlans(func(from, to time.Time) []PlannedGroup {
		return []PlannedGroup{
			{Namespace: "default", Job: "web", Group: "api", Current: 2, Peak: 5},
			{Namespace: "default", Job: "other", Group: "api", Current: 1, Peak: 4}, // another node pool
			{Namespace: "default", Job: "flat", Group: "api", Current: 3, Peak: 3},  // not rising: never read
		}
	}, jobs, func() time.Time { return now })
	sel := Selector{NodePool: "default"}
	for range 3 {
		gs, err := src.PlannedGroups(context.Background(), sel, now, now.Add(3*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if len(gs) != 1 || gs[0].Job != "web" || gs[0].Resources != (Resources{CPUMHz: 500, MemoryMiB: 256}) {
			t.Fatalf("groups %+v, want web/api sized 500 MHz / 256 MiB", gs)
		}
	}
	if jobs.reads != 2 {
		t.Fatalf("%d job reads for three rounds, want 2 (web and other once each, cached)", jobs.reads)
	}
}

func TestPlansReachTheLongestLeadTimeOfThePredictivePools(t *testing.T) {
	if got := PlanHorizon([]Pool{{Name: "plain"}}); got != 0 {
		t.Fatalf("without a predictive pool: %s, want 0", got)
	}
	got := PlanHorizon([]Pool{{Name: "a", LeadTime: 3 * time.Minute}, {Name: "plain"}, {Name: "b", LeadTime: 5 * time.Minute}})
	if got != 5*time.Minute+10*time.Second {
		t.Fatalf("plan horizon %s, want the longest lead time 5m plus 10s", got)
	}
}

// partialPlans is a fake PlanSource: some groups read, and an error for
// the rest.
type partialPlans struct {
	groups []PlannedGroup
	err    error
}

func (f partialPlans) PlannedGroups(context.Context, Selector, time.Time, time.Time) ([]PlannedGroup, error) {
	return f.groups, f.err
}

func TestAPredictivePoolKeepsThePlansItCouldReadWhenAFakeJobReadFails(t *testing.T) {
	h := newHarness(t, "", unitsNode("a", 7))
	h.ctl.d.Plans = partialPlans{
		groups: []PlannedGroup{{Namespace: "default", Job: "web", Group: "api", Current: 2, Peak: 5, Resources: Resources{CPUMHz: 500, MemoryMiB: 256}}},
		err:    errors.New("job default/gone: job not found"),
	}
	p := testPool()
	p.LeadTime = 3 * time.Minute
	got := h.ctl.planned(context.Background(), p, h.clock.now())
	if len(got) != 1 || got[0].Job != "web" || got[0].Count != 3 {
		t.Fatalf("planned %+v, want web/api's 3 more allocations although another job could not be read", got)
	}
}
