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

func TestTheLastScalingEventIsReadBackFromARealNomadWithItsCooldownAndPastAnErrorEvent(t *testing.T) {
	agent := nomadtest.StartServer(t, nomadtest.Options{})
	c, err := NewClient(agent.Addr, "")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, ok, err := c.LastScalingEvent(ctx, "", "absent", "web"); ok || err != nil {
		t.Fatalf("a job that does not exist: ok %v, err %v; want no event and no error", ok, err)
	}
	job := nomadtest.RawExecJob("evented", "web", 1, "/bin/sleep", "3600")
	if _, _, err := agent.Client(t).Jobs().Register(job, nil); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := c.LastScalingEvent(ctx, "", "evented", "web"); ok || err != nil {
		t.Fatalf("a group never scaled: ok %v, err %v; want no event and no error", ok, err)
	}
	until := time.Date(2026, 12, 1, 12, 0, 30, 500, time.UTC).Format(time.RFC3339Nano)
	// The registration's deployment blocks a scale until its allocation
	// is healthy: retried until it is (a loaded machine takes seconds).
	var before, after time.Time
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		before = time.Now()
		err := c.Scale(ctx, reconciler.ScaleRequest{Job: "evented", Group: "web", Count: ptr(2), Message: "up",
			Meta: map[string]any{reconciler.CooldownUntilMeta: until, "replica": "a"}})
		after = time.Now()
		if err == nil {
			break
		}
		if !errors.Is(err, reconciler.ErrActiveDeployment) || time.Now().After(deadline) {
			t.Fatal(err)
		}
	}
	// A reported error records no scale: it must not hide the one before.
	if _, _, err := agent.Client(t).Jobs().ScaleWithRequest("evented", &nomadapi.ScalingRequest{
		Target: map[string]string{"Job": "evented", "Group": "web"}, Error: true, Message: "a failed check"}, nil); err != nil {
		t.Fatal(err)
	}
	ev, ok, err := c.LastScalingEvent(ctx, "", "evented", "web")
	if err != nil || !ok {
		t.Fatalf("last scaling event: ok %v, err %v", ok, err)
	}
	if ev.Message != "up" || ev.Count == nil || *ev.Count != 2 || ev.PreviousCount != 1 || ev.Meta[reconciler.CooldownUntilMeta] != until || ev.Meta["replica"] != "a" {
		t.Errorf("last scaling event %+v (count %v), want the scale to 2 with its meta", ev, ev.Count)
	}
	// Nomad's clock is this machine's: the event's time is the scale's.
	if ev.Time.Before(before.Add(-time.Second)) || ev.Time.After(after.Add(time.Second)) {
		t.Errorf("event time %s, want between %s and %s", ev.Time, before, after)
	}
}
