package nomad

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	nomadapi "github.com/hashicorp/nomad/api"
)

// Sync is what makes up for events lost while the stream was down (Nomad
// keeps only event_buffer_size events, 100 by default, and a stream
// resuming from an index it no longer holds starts at the oldest it has).
// It drops what the lists no longer show, allocations too: one
// garbage-collected while the stream was down (its terminal event lost)
// would otherwise stay "running" in the view, inflating
// GroupStatus.Running and the Allocated resources node pools read.
func TestAnAllocationGoneFromTheListAtAResyncLeavesTheView(t *testing.T) {
	var allocsGone atomic.Bool
	count, idx := 1, uint64(10)
	job := policyJob("j")
	job.TaskGroups[0].Count = &count
	job.ModifyIndex = &idx
	ns := "default"
	job.Namespace = &ns
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Nomad-Index", "20")
		var body any
		switch r.URL.Path {
		case "/v1/scaling/policies":
			body = []*nomadapi.ScalingPolicyListStub{{ID: "p1", Target: map[string]string{"Namespace": "default", "Job": "j", "Group": "web"}}}
		case "/v1/jobs":
			body = []*nomadapi.JobListStub{{ID: "j", Namespace: "default", ModifyIndex: 10}}
		case "/v1/job/j":
			body = job
		case "/v1/allocations":
			body = []*nomadapi.AllocationListStub{}
			if !allocsGone.Load() {
				body = []*nomadapi.AllocationListStub{{ID: "a1", Namespace: "default", JobID: "j", TaskGroup: "web",
					ClientStatus: nomadapi.AllocClientStatusRunning, DesiredStatus: nomadapi.AllocDesiredStatusRun, ModifyIndex: 15}}
			}
		default:
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(body)
	}))
	defer srv.Close()
	c, err := NewClient(srv.URL, "")
	if err != nil {
		t.Fatal(err)
	}
	st := NewClusterState(c, nil)
	ctx := context.Background()
	if err := st.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if gs, err := st.GroupStatus(ctx, "default", "j", "web"); err != nil || gs.Running != 1 {
		t.Fatalf("after the first sync: running %d (%v), want 1", gs.Running, err)
	}
	// The stream was down; meanwhile a1 stopped and was garbage-collected.
	allocsGone.Store(true)
	if err := st.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if gs, err := st.GroupStatus(ctx, "default", "j", "web"); err != nil || gs.Running != 0 {
		t.Fatalf("after a resync whose list no longer has a1: running %d (%v), want 0", gs.Running, err)
	}
}
