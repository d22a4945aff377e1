package nodepool

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/nomadscalerd/nomadscalerd/nomad"
)

func ptr[T any](v T) *T { return &v }

func nomadStub() *nomadapi.NodeListStub {
	return &nomadapi.NodeListStub{
		ID: "n1", Name: "client-1", Datacenter: "dc1", NodePool: "web", NodeClass: "m5",
		Status: "ready", SchedulingEligibility: "eligible",
		NodeResources: &nomadapi.NodeResources{Cpu: nomadapi.NodeCpuResources{CpuShares: 8000}, Memory: nomadapi.NodeMemoryResources{MemoryMB: 16384}},
		ReservedResources: &nomadapi.NodeReservedResources{Cpu: nomadapi.NodeReservedCpuResources{CpuShares: 500},
			Memory: nomadapi.NodeReservedMemoryResources{MemoryMB: 1024}},
	}
}

func alloc(desired, client string, cpu, mem int64) *nomadapi.AllocationListStub {
	return &nomadapi.AllocationListStub{NodeID: "n1", DesiredStatus: desired, ClientStatus: client,
		AllocatedResources: &nomadapi.AllocatedResources{Tasks: map[string]*nomadapi.AllocatedTaskResources{
			"main":    {Cpu: nomadapi.AllocatedCpuResources{CpuShares: cpu}, Memory: nomadapi.AllocatedMemoryResources{MemoryMB: mem}},
			"sidecar": {Cpu: nomadapi.AllocatedCpuResources{CpuShares: 100}, Memory: nomadapi.AllocatedMemoryResources{MemoryMB: 64}},
		}}}
}

func TestNodeFromNomadCountsOnlyAllocationsThatHoldResources(t *testing.T) {
	allocs := []*nomadapi.AllocationListStub{
		alloc("run", "running", 1000, 1024),
		alloc("run", "pending", 400, 256),
		alloc("stop", "running", 9999, 9999), // being stopped: freed for the scheduler
		alloc("run", "complete", 9999, 9999), // finished batch work
		alloc("run", "failed", 9999, 9999),
		alloc("evict", "running", 9999, 9999),
	}
	n := NodeFromNomad(nomadStub(), allocs, "m5.large")
	want := Node{ID: "n1", Name: "client-1", Datacenter: "dc1", NodePool: "web", NodeClass: "m5", InstanceType: "m5.large",
		Status: "ready", Eligible: true,
		Total:     Resources{CPUMHz: 7500, MemoryMiB: 15360},
		Allocated: Resources{CPUMHz: 1000 + 400 + 200, MemoryMiB: 1024 + 256 + 128}}
	if n != want {
		t.Fatalf("got %+v\nwant %+v", n, want)
	}
	s := nomadStub()
	s.Drain, s.SchedulingEligibility = true, "ineligible"
	if n := NodeFromNomad(s, nil, ""); n.Schedulable() || !n.Draining {
		t.Fatalf("draining node converted to %+v", n)
	}
}

func TestQueuedFromEvaluationReadsCountsResourcesAndReasons(t *testing.T) {
	job := &nomadapi.Job{TaskGroups: []*nomadapi.TaskGroup{
		{Name: ptr("api"), Tasks: []*nomadapi.Task{
			{Resources: &nomadapi.Resources{CPU: ptr(500), MemoryMB: ptr(256)}},
			{Resources: &nomadapi.Resources{CPU: ptr(100), MemoryMB: ptr(64)}},
		}},
		{Name: ptr("lb"), Tasks: []*nomadapi.Task{{Resources: &nomadapi.Resources{CPU: ptr(50), MemoryMB: ptr(32)}}}},
		{Name: ptr("gpu"), Tasks: []*nomadapi.Task{{Resources: &nomadapi.Resources{CPU: ptr(50), MemoryMB: ptr(32)}}}},
		{Name: ptr("mem"), Tasks: []*nomadapi.Task{{Resources: &nomadapi.Resources{CPU: ptr(50), MemoryMB: ptr(4096)}}}},
	}}
	ev := &nomadapi.Evaluation{JobID: "shop", Status: "blocked",
		QueuedAllocations: map[string]int{"api": 7},
		FailedTGAllocs: map[string]*nomadapi.AllocationMetric{
			"api": {NodesEvaluated: 3, NodesExhausted: 3, DimensionExhausted: map[string]int{"cpu": 3}, CoalescedFailures: 4},
			"lb":  {NodesEvaluated: 3, NodesExhausted: 3, DimensionExhausted: map[string]int{"network: reserved port collision http=80": 3, "cpu": 1}},
			"gpu": {NodesEvaluated: 3, NodesFiltered: 3, ConstraintFiltered: map[string]int{"${meta.gpu} = true": 3}},
			"mem": {NodesEvaluated: 3, NodesExhausted: 2, DimensionExhausted: map[string]int{"memory": 2}, CoalescedFailures: 1},
		}}
	got := QueuedFromEvaluation(ev, job)
	want := []QueuedGroup{
		{Job: "shop", Group: "api", Count: 7, Resources: Resources{CPUMHz: 600, MemoryMiB: 320}, Reason: ReasonCPU},
		{Job: "shop", Group: "gpu", Count: 1, Resources: Resources{CPUMHz: 50, MemoryMiB: 32}, Reason: ReasonNoEligibleNodes},
		{Job: "shop", Group: "lb", Count: 1, Resources: Resources{CPUMHz: 50, MemoryMiB: 32}, Reason: ReasonPorts},
		{Job: "shop", Group: "mem", Count: 2, Resources: Resources{CPUMHz: 50, MemoryMiB: 4096}, Reason: ReasonMemory},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("group %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

// fakeNomadHTTP serves the few Nomad endpoints the adapter uses.
type fakeNomadHTTP struct {
	mu          sync.Mutex
	infoCalls   int
	drainBody   map[string]any
	eligibility map[string]any
}

func (f *fakeNomadHTTP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w.Header().Set("X-Nomad-Index", "1")
	enc := json.NewEncoder(w)
	switch {
	case r.URL.Path == "/v1/nodes":
		if r.URL.Query().Get("resources") != "true" {
			http.Error(w, "resources not requested", 400)
			return
		}
		other := nomadStub()
		other.ID, other.NodePool = "n2", "batch"
		_ = enc.Encode([]*nomadapi.NodeListStub{nomadStub(), other})
	case r.URL.Path == "/v1/allocations":
		_ = enc.Encode([]*nomadapi.AllocationListStub{alloc("run", "running", 1000, 1024)})
	case r.URL.Path == "/v1/node/n1":
		f.infoCalls++
		_ = enc.Encode(&nomadapi.Node{ID: "n1", Meta: map[string]string{DefaultInstanceTypeMeta: "m5.large"}})
	case r.URL.Path == "/v1/node/n1/drain":
		_ = json.NewDecoder(r.Body).Decode(&f.drainBody)
		_ = enc.Encode(map[string]any{})
	case r.URL.Path == "/v1/node/n1/eligibility":
		_ = json.NewDecoder(r.Body).Decode(&f.eligibility)
		_ = enc.Encode(map[string]any{})
	default:
		http.NotFound(w, r)
	}
}

func TestNomadAdapterWithFakeHTTPListsPoolNodesAndDrains(t *testing.T) {
	fake := &fakeNomadHTTP{}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	c, err := nomadapi.NewClient(&nomadapi.Config{Address: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	a := NewNomadAdapter(c, "")
	ctx := context.Background()
	for range 2 {
		nodes, err := a.PoolNodes(ctx, Selector{NodePool: "web"})
		if err != nil {
			t.Fatal(err)
		}
		if len(nodes) != 1 || nodes[0].ID != "n1" || nodes[0].InstanceType != "m5.large" || nodes[0].Allocated.CPUMHz != 1100 {
			t.Fatalf("nodes %+v, want n1 of m5.large with 1100 MHz allocated", nodes)
		}
	}
	if fake.infoCalls != 1 {
		t.Fatalf("node info read %d times, want once (cached)", fake.infoCalls)
	}
	if err := a.Drain(ctx, "n1", DrainOptions{Deadline: 15 * time.Minute, Meta: DrainedByMeta}); err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(fake.drainBody)
	for _, want := range []string{`"Deadline":900000000000`, `"drained_by":"nomadscalerd"`} {
		if !strings.Contains(string(body), want) {
			t.Fatalf("drain request %s lacks %s", body, want)
		}
	}
	if err := a.SetEligibility(ctx, "n1", true); err != nil {
		t.Fatal(err)
	}
	if fake.eligibility["Eligibility"] != "eligible" {
		t.Fatalf("eligibility request %v", fake.eligibility)
	}
}

// stateNodes stands in for the cluster state's nodes.
type stateNodes []nomad.Node

func (s stateNodes) Nodes(context.Context) ([]nomad.Node, error) { return s, nil }

func TestAPoolReconcileReadsNodesFromTheClusterStateWithoutAskingNomad(t *testing.T) {
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		http.Error(w, "no request expected", http.StatusInternalServerError)
	}))
	defer srv.Close()
	c, err := nomadapi.NewClient(&nomadapi.Config{Address: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	a := NewNomadAdapter(c, "").WithNodes(stateNodes{
		{ID: "n1", NodePool: "web", NodeClass: "c", Datacenter: "dc1", Address: "10.0.0.1", Status: "ready", Eligible: true,
			CPUMHz: 2000, MemoryMiB: 4096, AllocatedCPUMHz: 1100, AllocatedMemoryMiB: 1024,
			Meta: map[string]string{DefaultInstanceTypeMeta: "m5.large"}, Attributes: map[string]string{AWSInstanceIDAttribute: "i-1"}},
		{ID: "n2", NodePool: "batch", Status: "ready", Eligible: true},
		{ID: "n3", NodePool: "web", Status: "ready", Drain: true},
	})
	nodes, err := a.PoolNodes(context.Background(), Selector{NodePool: "web"})
	if err != nil {
		t.Fatal(err)
	}
	want := Node{ID: "n1", NodePool: "web", NodeClass: "c", Datacenter: "dc1", InstanceType: "m5.large", InstanceID: "i-1",
		Address: "10.0.0.1", Status: "ready", Eligible: true, Total: Resources{CPUMHz: 2000, MemoryMiB: 4096},
		Allocated: Resources{CPUMHz: 1100, MemoryMiB: 1024}}
	if len(nodes) != 2 || nodes[0] != want || nodes[1].ID != "n3" || !nodes[1].Draining || nodes[1].Schedulable() {
		t.Fatalf("pool web: %+v; want n1 as %+v and the draining n3", nodes, want)
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("%d requests to Nomad, want none", n)
	}
}

func TestADrainRequestIsOfUnknownOutcomeUnlessAFakeNomadRefusedIt(t *testing.T) {
	for _, tc := range []struct {
		status  int // 0: the connection is dropped
		unknown bool
	}{{403, false}, {400, false}, {500, true}, {503, true}, {0, true}} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if tc.status == 0 {
				hj, ok := w.(http.Hijacker)
				if !ok {
					t.Error("cannot hijack")
					return
				}
				conn, _, err := hj.Hijack()
				if err == nil {
					conn.Close()
				}
				return
			}
			http.Error(w, "no", tc.status)
		}))
		c, err := nomadapi.NewClient(&nomadapi.Config{Address: srv.URL})
		if err != nil {
			t.Fatal(err)
		}
		err = NewNomadAdapter(c, "").Drain(context.Background(), "n1", DrainOptions{Deadline: time.Minute})
		srv.Close()
		if err == nil || errors.Is(err, ErrDrainOutcomeUnknown) != tc.unknown {
			t.Errorf("status %d: err %v, want an error with unknown outcome %v", tc.status, err, tc.unknown)
		}
	}
}
