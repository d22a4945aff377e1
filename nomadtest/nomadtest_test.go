package nomadtest

import (
	"fmt"
	"net"
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

func TestFreePortsAreDistinctBindableAndBelowTheEphemeralRange(t *testing.T) {
	ports := FreePorts(t, 50)
	seen := map[int]bool{}
	for _, p := range ports {
		if seen[p] {
			t.Fatalf("port %d came out twice", p)
		}
		seen[p] = true
		if p < 10000 || p >= 32768 {
			t.Fatalf("port %d outside [10000, 32768)", p)
		}
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			t.Fatalf("port %d not bindable: %v", p, err)
		}
		ln.Close()
	}
}

func TestAPortIsNeverHandedOutTwiceEvenAfterItsCallerReleasedIt(t *testing.T) {
	seen := map[int]bool{}
	for range 200 {
		// Each port is released at once (as a test does until its
		// process binds it): only the handed-out set keeps it from
		// coming out again.
		p := FreePort(t)
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
	}
}
