package nomad

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/nomadscalerd/nomadscalerd/nomadtest"
	"github.com/nomadscalerd/nomadscalerd/store"
)

func TestTheClusterStateHoldsTheNodesWithWhatTheirAllocationsHoldAndFollowsEligibilityAndDrainEvents(t *testing.T) {
	agent := nomadtest.StartServer(t, nomadtest.Options{NodePool: "default", NodeClass: "web", CPUMHz: 4000, MemoryMiB: 2048,
		Meta: map[string]string{"nomadscaler_instance_type": "m5.large"}})
	api := agent.Client(t)
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
	st.TrackNodes()
	ctx, cancel := context.WithCancel(context.Background())
	w := NewWatcher(c, db, st, nil)
	w.OnConnect(st.Sync)
	done := make(chan struct{})
	go func() { _ = w.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	node := func() Node {
		ns, err := st.Nodes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(ns) != 1 {
			t.Fatalf("%d nodes in the view, want the agent's one", len(ns))
		}
		return ns[0]
	}
	waitFor(t, "the agent's node, ready and eligible, in the view", func() bool {
		ns, err := st.Nodes(ctx)
		return err == nil && len(ns) == 1 && ns[0].Status == "ready" && ns[0].Eligible
	})
	n := node()
	if n.NodeClass != "web" || n.NodePool != "default" || n.Meta["nomadscaler_instance_type"] != "m5.large" || n.Address == "" {
		t.Errorf("node %+v: want class web, pool default, the instance type meta and an address", n)
	}
	if n.CPUMHz <= 0 || n.CPUMHz > 4000 || n.MemoryMiB <= 0 || n.MemoryMiB > 2048 {
		t.Errorf("allocatable %d MHz / %d MiB, want within the agent's 4000 / 2048", n.CPUMHz, n.MemoryMiB)
	}
	if n.AllocatedCPUMHz != 0 {
		t.Errorf("allocated %d MHz on an empty node", n.AllocatedCPUMHz)
	}

	// Two allocations of a running group: their resources reach the node
	// by Allocation events, and leave when the job stops.
	job := nomadtest.RawExecJob("hold", "web", 2, "/bin/sleep", "600")
	if _, _, err := api.Jobs().Register(job, nil); err != nil {
		t.Fatal(err)
	}
	var want int64
	for _, task := range job.TaskGroups[0].Tasks {
		want += int64(*task.Resources.CPU)
	}
	want *= 2
	waitFor(t, "the allocations' CPU on the node", func() bool { return node().AllocatedCPUMHz == want })
	if _, _, err := api.Jobs().Deregister("hold", false, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the stopped job's allocations to free the node", func() bool { return node().AllocatedCPUMHz == 0 })

	// Eligibility and drain arrive by Node events. A drain of an empty
	// node completes at once, and the view may see it start and end
	// between two looks: a running batch allocation keeps it open until
	// its deadline (Nomad lets batch allocations finish until then).
	batch := nomadtest.RawExecJob("batch-hold", "work", 1, "/bin/sleep", "600")
	batchType := "batch"
	batch.Type = &batchType
	if _, _, err := api.Jobs().Register(batch, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the batch allocation's CPU on the node", func() bool { return node().AllocatedCPUMHz > 0 })
	if _, err := api.Nodes().ToggleEligibility(n.ID, false, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the node to turn ineligible in the view", func() bool { return !node().Eligible })
	if _, err := api.Nodes().UpdateDrainOpts(n.ID, &nomadapi.DrainOptions{DrainSpec: &nomadapi.DrainSpec{Deadline: time.Minute}}, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the node to drain in the view", func() bool { return node().Drain })
}

// nodeEvent builds a Node topic event as the stream delivers it (the
// payload a decoded JSON object).
func nodeEvent(t *testing.T, typ string, index uint64, n *nomadapi.Node) nomadapi.Event {
	t.Helper()
	raw, err := json.Marshal(n)
	if err != nil {
		t.Fatal(err)
	}
	var payload map[string]any
	if err := json.Unmarshal(raw, &payload); err != nil {
		t.Fatal(err)
	}
	return nomadapi.Event{Topic: nomadapi.TopicNode, Type: typ, Index: index, Payload: map[string]any{"Node": payload}}
}

func TestNodeEventsNeverRollTheViewBackAndADeregisteredNodeLeaves(t *testing.T) {
	st := NewClusterState(&Client{}, nil)
	st.TrackNodes()
	st.isSynced = true
	close(st.synced)
	ctx := context.Background()
	newer := &nomadapi.Node{ID: "n1", Status: "ready", SchedulingEligibility: nomadapi.NodeSchedulingIneligible, ModifyIndex: 9,
		NodeResources:     &nomadapi.NodeResources{Cpu: nomadapi.NodeCpuResources{CpuShares: 2000}, Memory: nomadapi.NodeMemoryResources{MemoryMB: 1024}},
		ReservedResources: &nomadapi.NodeReservedResources{Cpu: nomadapi.NodeReservedCpuResources{CpuShares: 100}},
		Attributes:        map[string]string{"unique.platform.aws.instance-id": "i-1", "kernel.name": "linux", ipAttribute: "10.0.0.1"}}
	older := &nomadapi.Node{ID: "n1", Status: "ready", SchedulingEligibility: nomadapi.NodeSchedulingEligible, ModifyIndex: 7}
	st.HandleEvents(ctx, 9, []nomadapi.Event{nodeEvent(t, "NodeEligibility", 9, newer)})
	st.HandleEvents(ctx, 7, []nomadapi.Event{nodeEvent(t, "NodeEligibility", 7, older)}) // replayed
	ns, err := st.Nodes(ctx)
	if err != nil || len(ns) != 1 {
		t.Fatalf("nodes %+v, %v; want n1", ns, err)
	}
	n := ns[0]
	if n.Eligible || n.CPUMHz != 1900 || n.MemoryMiB != 1024 || n.Address != "10.0.0.1" {
		t.Errorf("node %+v: want the newer, ineligible version with 1900 MHz allocatable, 1024 MiB, address 10.0.0.1", n)
	}
	if n.Attributes["unique.platform.aws.instance-id"] != "i-1" || n.Attributes["kernel.name"] != "" {
		t.Errorf("attributes %v: want the platform's kept and the others dropped", n.Attributes)
	}
	st.HandleEvents(ctx, 10, []nomadapi.Event{nodeEvent(t, "NodeDeregistration", 10, &nomadapi.Node{ID: "n1", ModifyIndex: 10})})
	if ns, _ := st.Nodes(ctx); len(ns) != 0 {
		t.Errorf("a deregistered node is still in the view: %+v", ns)
	}
}

func TestAViewThatDoesNotTrackNodesIgnoresNodeEventsAndSaysSo(t *testing.T) {
	st := NewClusterState(&Client{}, nil)
	st.isSynced = true
	close(st.synced)
	ctx := context.Background()
	st.HandleEvents(ctx, 3, []nomadapi.Event{nodeEvent(t, "NodeRegistration", 3, &nomadapi.Node{ID: "n1", ModifyIndex: 3})})
	if ns, err := st.Nodes(ctx); !errors.Is(err, ErrNodesNotTracked) || len(ns) != 0 {
		t.Fatalf("nodes %+v, %v; want none and ErrNodesNotTracked", ns, err)
	}
}
