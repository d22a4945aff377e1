package nomad

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nomadscalerd/nomadscalerd/clock"
	"github.com/nomadscalerd/nomadscalerd/nomadtest"
)

// With ACLs on, a token of the policy the job file documents sees no
// variable lock (Nomad v1.10 lists them to management tokens only); two
// replicas holding it still split two shards, and a clean stop leaves no
// heartbeat behind.
func TestWithTheDocumentedScopedTokenTwoReplicasOnARealNomadTakeOneShardEach(t *testing.T) {
	agent := nomadtest.StartServer(t, nomadtest.Options{ACLs: true})
	token := agent.TokenFor(t, "nomadscalerd", nomadtest.JobFilePolicy(t, "../deploy/nomad/nomadscalerd.nomad.hcl"))
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	start := func(name string) (*Shards, func()) { return runReplica(t, agent.Addr, token, name, log) }
	a, stopA := start("a")
	defer stopA()
	waitFor(t, "a alone to hold both shards", func() bool { return slices.Equal(a.Held(), []int{0, 1}) })
	b, stopB := start("b")
	defer stopB()
	began := time.Now()
	waitFor(t, "one shard each", func() bool { return len(a.Held()) == 1 && len(b.Held()) == 1 })
	t.Logf("split %.1f s after b started", time.Since(began).Seconds())

	scoped, err := NewClient(agent.Addr, token)
	if err != nil {
		t.Fatal(err)
	}
	vars, _, err := scoped.api.Variables().PrefixList("nomadscalerd/", nil)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, m := range vars {
		switch {
		case strings.HasPrefix(m.Path, HeartbeatPrefix):
			paths = append(paths, m.Path)
		case strings.HasPrefix(m.Path, ShardLockPrefix) && m.Lock != nil:
			t.Errorf("%s listed with its lock to a scoped token: this Nomad no longer hides locks", m.Path)
		}
	}
	if want := []string{HeartbeatPrefix + "a", HeartbeatPrefix + "b"}; !slices.Equal(paths, want) {
		t.Errorf("the scoped token lists heartbeats %v, want %v", paths, want)
	}
	stopA()
	stopB()
	for _, prefix := range []string{HeartbeatPrefix, HeldPrefix} {
		left, _, err := scoped.api.Variables().PrefixList(prefix, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(left) != 0 {
			t.Errorf("%d variables under %s left after both replicas stopped cleanly", len(left), prefix)
		}
	}
}

// runReplica runs a replica named name of two shards, with the shortest
// lock TTL, against the Nomad at addr until the returned stop is called
// (which waits for it to release its locks). Run's error is dropped: it
// ends with the context the stop cancels.
func runReplica(t *testing.T, addr, token, name string, log *slog.Logger) (*Shards, func()) {
	t.Helper()
	c, err := NewClient(addr, token)
	if err != nil {
		t.Fatal(err)
	}
	s := NewShards(c, 2, name, MinHandOver, nil, clock.Real{}, log)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = s.Run(ctx); close(done) }()
	return s, func() { cancel(); <-done }
}
