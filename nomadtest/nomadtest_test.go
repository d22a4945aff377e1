package nomadtest

import (
	"testing"
	"time"

	nomad "github.com/hashicorp/nomad/api"
)

func TestAServerAndAClientAgentFormATwoNodeClusterThatRunsRawExecJobs(t *testing.T) {
	s := StartServer(t, Options{CPUMHz: 2000, MemoryMiB: 1024})
	s.StartClient(t, Options{NodeClass: "extra", CPUMHz: 1000, MemoryMiB: 512})
	c := s.Client(t)
	nodes, _, err := c.Nodes().List(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 2 {
		t.Fatalf("%d nodes, want 2", len(nodes))
	}
	job := RawExecJob("smoke", "web", 2, "/bin/sleep", "300")
	if _, _, err := c.Jobs().Register(job, nil); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		allocs, _, err := c.Jobs().Allocations("smoke", false, nil)
		if err != nil {
			t.Fatal(err)
		}
		running := 0
		for _, a := range allocs {
			if a.ClientStatus == nomad.AllocClientStatusRunning {
				running++
			}
		}
		if running == 2 {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("allocations never ran\n%s", s.Log())
}
