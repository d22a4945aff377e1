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

// jobEvent is a Job event as the stream decodes it: j's JSON into maps.
func jobEvent(t *testing.T, typ string, j *nomadapi.Job) nomadapi.Event {
	t.Helper()
	b, err := json.Marshal(map[string]any{"Job": j})
	if err != nil {
		t.Fatal(err)
	}
	var payload map[string]any
	if err := json.Unmarshal(b, &payload); err != nil {
		t.Fatal(err)
	}
	return nomadapi.Event{Topic: nomadapi.TopicJob, Type: typ, Payload: payload}
}

func TestAStoppedJobGarbageCollectedByAFakeNomadLeavesTheClusterStateWithItsPolicies(t *testing.T) {
	// Nomad's job GC deletes a stopped job in a batch deregistration: the
	// event (JobBatchDeregistered) carries the job as it was before, and
	// the job is gone.
	var gets atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/job/j" {
			gets.Add(1)
		}
		http.Error(w, "job not found", http.StatusNotFound)
	}))
	defer srv.Close()
	c, err := NewClient(srv.URL, "")
	if err != nil {
		t.Fatal(err)
	}
	st := NewClusterState(c, nil)
	st.isSynced = true
	close(st.synced)
	job := policyJob("j")
	ns, stop, idx := "default", true, uint64(7)
	job.Namespace, job.Stop, job.ModifyIndex = &ns, &stop, &idx
	st.upsertJob(job)
	if got := st.JobPolicies("default", "j"); len(got) != 1 {
		t.Fatalf("the stopped job has %d policies in the view, want 1", len(got))
	}
	st.HandleEvents(context.Background(), 20, []nomadapi.Event{jobEvent(t, "JobBatchDeregistered", job)})
	if got := st.JobPolicies("default", "j"); len(got) != 0 {
		t.Errorf("after the job was garbage-collected the view still holds %d of its policies", len(got))
	}
	list, err := st.ListPolicies(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 0 {
		t.Errorf("ListPolicies = %d policies, want none", len(list))
	}
	if gets.Load() != 1 {
		t.Errorf("%d GETs of the job, want 1 to confirm it is gone", gets.Load())
	}
}
