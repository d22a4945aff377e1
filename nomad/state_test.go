package nomad

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/nomadscalerd/nomadscalerd/nomadtest"
	"github.com/nomadscalerd/nomadscalerd/reconciler"
	"github.com/nomadscalerd/nomadscalerd/store"
)

// policyJob is a job whose group count is zero, with a nomadscaler policy.
func policyJob(id string) *nomadapi.Job {
	job := nomadtest.RawExecJob(id, "web", 0, "/bin/sleep", "600")
	mn, mx, on := int64(0), int64(5), true
	job.TaskGroups[0].Scaling = &nomadapi.ScalingPolicy{Min: &mn, Max: &mx, Enabled: &on, Policy: map[string]any{
		"target": []any{map[string]any{"nomadscaler": []any{map[string]any{"dry_run": true}}}},
		"check":  []any{map[string]any{"requests": []any{map[string]any{"source": "nomad-apm", "query": "sum_cpu_mhz"}}}},
	}}
	return job
}

func TestTheClusterStateIsSyncedByOneListThenFollowsEventsWithoutAskingNomadPerPolicy(t *testing.T) {
	agent := nomadtest.StartServer(t, nomadtest.Options{})
	api := agent.Client(t)
	if _, _, err := api.Jobs().Register(policyJob("before"), nil); err != nil {
		t.Fatal(err)
	}
	c, err := NewClient(agent.Addr, "")
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(filepath.Join(t.TempDir(), "s.db"), store.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st := NewClusterState(c, nil)
	if _, err := st.GroupStatus(context.Background(), "default", "before", "web"); !errors.Is(err, ErrNotSynced) {
		t.Fatalf("before the first list: %v, want ErrNotSynced", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := NewWatcher(c, db, st, nil)
	w.OnConnect(st.Sync)
	done := make(chan struct{})
	go func() { _ = w.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	wctx, wcancel := context.WithTimeout(ctx, 60*time.Second)
	defer wcancel()
	if err := st.WaitSynced(wctx); err != nil {
		t.Fatal(err)
	}
	gs, err := st.GroupStatus(ctx, "default", "before", "web")
	if err != nil || !gs.Exists || gs.Desired != 0 {
		t.Fatalf("listed job: %+v, %v; want an existing group with count 0", gs, err)
	}
	// A job without an update block gets Nomad's deployments: its group
	// waits 10 s for a new allocation to run healthy.
	if gs.MinHealthy != 10*time.Second {
		t.Errorf("listed job without an update block: min healthy %v, want Nomad's default 10s", gs.MinHealthy)
	}
	// A job-level update block is its groups'. (The job command fills
	// max_parallel = 1 into an update block that does not set it; with 0
	// Nomad runs no deployments.)
	slow := policyJob("slow")
	mh, one := 25*time.Second, 1
	slow.Update = &nomadapi.UpdateStrategy{MinHealthyTime: &mh, MaxParallel: &one}
	if _, _, err := api.Jobs().Register(slow, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the slow job's policy", func() bool { return len(st.JobPolicies("default", "slow")) == 1 })
	if gs, err := st.GroupStatus(ctx, "default", "slow", "web"); err != nil || gs.MinHealthy != mh {
		t.Errorf("job with update { min_healthy_time = \"25s\" }: %+v, %v; want min healthy 25s", gs, err)
	}
	if _, _, err := api.Jobs().Deregister("slow", true, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the slow job's policy to go", func() bool { return len(st.JobPolicies("default", "slow")) == 0 })

	// A job registered after the list arrives by its Job event, policy
	// and all.
	if _, _, err := api.Jobs().Register(policyJob("after"), nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the later job's policy", func() bool { return len(st.JobPolicies("default", "after")) == 1 })
	pols, err := st.ListPolicies(ctx)
	if err != nil || len(pols) != 2 {
		t.Fatalf("policies %d, %v; want both jobs' policies", len(pols), err)
	}
	if p, err := reconciler.ParsePolicy(pols[0], reconciler.Defaults{CacheSize: 10, ForecastHorizon: 60, WithoutPrometheus: true}); err != nil || p.Group != "web" {
		t.Fatalf("a policy read from a job spec: %+v, %v; want it to parse as the policy endpoint's", p, err)
	}

	// A scale is seen at once, then confirmed by the event.
	two := 2
	waitFor(t, "Nomad to take the scale to 2", func() bool {
		err := st.Scale(ctx, reconciler.ScaleRequest{Namespace: "default", Job: "after", Group: "web", Count: &two, Message: "test"})
		if err != nil && !errors.Is(err, reconciler.ErrActiveDeployment) {
			t.Fatal(err)
		}
		return err == nil
	})
	if gs, _ := st.GroupStatus(ctx, "default", "after", "web"); gs.Desired != 2 {
		t.Fatalf("right after scaling to 2: desired %d", gs.Desired)
	}
	// Someone else scales it: only the event tells.
	// The scale to 2 started a deployment that refuses another scale until
	// it ends: the outside scale is retried while Nomad says so.
	three := int64(3)
	waitFor(t, "Nomad to take the outside scale", func() bool {
		_, _, err := api.Jobs().ScaleWithRequest("after", &nomadapi.ScalingRequest{Count: &three, Target: map[string]string{"Job": "after", "Group": "web"}}, nil)
		if err != nil && !errors.Is(Classify(err), reconciler.ErrActiveDeployment) {
			t.Fatal(err)
		}
		return err == nil
	})
	waitFor(t, "the outside scale's event", func() bool {
		gs, _ := st.GroupStatus(ctx, "default", "after", "web")
		return gs.Desired == 3
	})

	// A purged job goes, with its policies.
	if _, _, err := api.Jobs().Deregister("before", true, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the purged job to leave the view", func() bool { return len(st.JobPolicies("default", "before")) == 0 })
	if gs, _ := st.GroupStatus(ctx, "default", "before", "web"); gs.Exists {
		t.Error("a purged job's group still exists in the view")
	}
}

func TestAnOlderFakeJobVersionNeverRollsTheViewBack(t *testing.T) {
	st := NewClusterState(&Client{}, nil)
	st.isSynced = true
	newer, older := policyJob("j"), policyJob("j")
	n5, n3 := 5, 3
	i9, i7 := uint64(9), uint64(7)
	newer.TaskGroups[0].Count, newer.ModifyIndex = &n5, &i9
	older.TaskGroups[0].Count, older.ModifyIndex = &n3, &i7
	st.upsertJob(newer)
	st.upsertJob(older) // a replayed event
	gs, err := st.GroupStatus(context.Background(), "default", "j", "web")
	if err != nil || gs.Desired != 5 {
		t.Fatalf("desired %d (%v), want 5 from the newer version", gs.Desired, err)
	}
}

func TestRequestsToNomadNeverExceedTheClientsConnectionLimit(t *testing.T) {
	var inFlight, peak atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
		_, _ = w.Write([]byte(`"127.0.0.1:4647"`))
	}))
	defer srv.Close()
	c, err := NewClientLimited(srv.URL, "", 4)
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 100)
	for range 100 {
		go func() { errs <- c.Ping(context.Background()) }()
	}
	for range 100 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if peak.Load() > 4 || peak.Load() < 2 {
		t.Errorf("%d requests at once at the server, want at most the limit 4 (and some concurrency)", peak.Load())
	}
}

func TestAJobFromAnEventKeepsItsTasksMemoryAndItsGroupsUpdateBlock(t *testing.T) {
	// A Job event's payload as the event stream decodes it: JSON into maps.
	var payload map[string]any
	err := json.Unmarshal([]byte(`{"Job": {"ID": "j", "Namespace": "default", "ModifyIndex": 7, "TaskGroups": [{
		"Name": "web", "Count": 2,
		"Update": {"MaxParallel": 1, "MinHealthyTime": 25000000000},
		"Scaling": {"Type": "horizontal", "Min": 0, "Max": 5, "Enabled": true, "Policy": {}},
		"Tasks": [{"Name": "t", "Resources": {"CPU": 100, "MemoryMB": 256}}]}]}}`), &payload)
	if err != nil {
		t.Fatal(err)
	}
	e := nomadapi.Event{Topic: nomadapi.TopicJob, Type: "JobRegistered", Payload: payload}
	j, err := jobFromEvent(&e)
	if err != nil {
		t.Fatal(err)
	}
	st := NewClusterState(nil, nil)
	st.upsertJob(j)
	st.isSynced = true
	gs, err := st.GroupStatus(context.Background(), "default", "j", "web")
	if err != nil || gs.Desired != 2 || gs.MinHealthy != 25*time.Second {
		t.Errorf("group status %+v, %v; want count 2 and min healthy 25s", gs, err)
	}
	js := st.jobs[jobKey{"default", "j"}]
	if g := js.groups["web"]; g.cpuMHz != 100 || g.memMiB != 256 {
		t.Errorf("group resources %v MHz, %v MiB; want 100 and 256", g.cpuMHz, g.memMiB)
	}
}
