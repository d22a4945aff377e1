package nomad

import (
	"context"
	"errors"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/nomadscalerd/nomadscalerd/nomadtest"
	"github.com/nomadscalerd/nomadscalerd/reconciler"
)

func TestAScaleDuringADeploymentIsErrActiveDeployment(t *testing.T) {
	agent := nomadtest.StartServer(t, nomadtest.Options{})
	c, err := NewClient(agent.Addr, "")
	if err != nil {
		t.Fatal(err)
	}
	job := nomadtest.RawExecJob("deploying", "web", 1, "/bin/sleep", "3600")
	// A deployment that stays open: a new allocation must be healthy for a
	// minute before it counts.
	job.TaskGroups[0].Update = &nomadapi.UpdateStrategy{MinHealthyTime: ptr(time.Minute), HealthyDeadline: ptr(2 * time.Minute), ProgressDeadline: ptr(3 * time.Minute)}
	if _, _, err := agent.Client(t).Jobs().Register(job, nil); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	two, three := 2, 3
	deadline := time.Now().Add(60 * time.Second)
	var scaleErr error
	for time.Now().Before(deadline) {
		// The registration's own deployment may already block the first
		// scale; either way a second change right after the first must be.
		if err := c.Scale(ctx, reconciler.ScaleRequest{Job: "deploying", Group: "web", Count: &two, Message: "test"}); err != nil && !errors.Is(err, reconciler.ErrActiveDeployment) {
			t.Fatalf("first scale: %v", err)
		}
		scaleErr = c.Scale(ctx, reconciler.ScaleRequest{Job: "deploying", Group: "web", Count: &three, Message: "test"})
		if scaleErr != nil {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if !errors.Is(scaleErr, reconciler.ErrActiveDeployment) {
		t.Fatalf("scaling during a deployment: %v, want ErrActiveDeployment", scaleErr)
	}
}

func ptr[T any](v T) *T { return &v }
