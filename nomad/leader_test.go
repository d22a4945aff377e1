package nomad

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/nomadscalerd/nomadscalerd/clock"
	"github.com/nomadscalerd/nomadscalerd/nomadtest"
)

func TestExactlyOneOfTwoReplicasLeadsAndTheOtherTakesOverWhenItStops(t *testing.T) {
	agent := nomadtest.StartServer(t, nomadtest.Options{})
	c, err := NewClient(agent.Addr, "")
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, nil))
	a, b := NewLeader(c, 10*time.Second, clock.Real{}, nil, log), NewLeader(c, 10*time.Second, clock.Real{}, nil, log)
	ctxA, stopA := context.WithCancel(context.Background())
	ctxB, stopB := context.WithCancel(context.Background())
	doneA, doneB := make(chan struct{}), make(chan struct{})
	go func() { _ = a.Run(ctxA); close(doneA) }()
	go func() { _ = b.Run(ctxB); close(doneB) }()
	// Both electors log through t: they must be gone before the test ends.
	defer func() { stopA(); stopB(); <-doneA; <-doneB }()

	waitFor(t, "a leader", func() bool { return a.IsLeader() || b.IsLeader() })
	// Hold for a while: never two leaders.
	for i := 0; i < 20; i++ {
		if a.IsLeader() && b.IsLeader() {
			t.Fatal("two leaders at once")
		}
		time.Sleep(100 * time.Millisecond)
	}
	first, second, stopFirst, doneFirst := a, b, stopA, doneA
	if b.IsLeader() {
		first, second, stopFirst, doneFirst = b, a, stopB, doneB
	}
	stopFirst()
	<-doneFirst
	start := time.Now()
	waitFor(t, "the other replica to take over", func() bool { return second.IsLeader() })
	if first.IsLeader() {
		t.Fatal("the stopped replica still claims leadership")
	}
	t.Logf("takeover after %s", time.Since(start).Round(time.Millisecond))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }
