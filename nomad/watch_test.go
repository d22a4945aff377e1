package nomad

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/nomadscalerd/nomadscalerd/nomadtest"
	"github.com/nomadscalerd/nomadscalerd/store"
)

type recorder struct {
	mu      sync.Mutex
	indexes []uint64
	events  []nomadapi.Event
}

func (r *recorder) HandleEvents(_ context.Context, index uint64, evs []nomadapi.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.indexes = append(r.indexes, index)
	r.events = append(r.events, evs...)
}

func (r *recorder) count(topic nomadapi.Topic, typ, key string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.events {
		if e.Topic == topic && (typ == "" || e.Type == typ) && (key == "" || e.Key == key || jobOf(e) == key) {
			n++
		}
	}
	return n
}

func jobOf(e nomadapi.Event) string {
	if e.Topic == nomadapi.TopicAllocation {
		if a, err := e.Allocation(); err == nil && a != nil {
			return a.JobID
		}
	}
	return ""
}

func (r *recorder) strictlyIncreasing() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := 1; i < len(r.indexes); i++ {
		if r.indexes[i] <= r.indexes[i-1] {
			return false
		}
	}
	return true
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func startWatcher(t *testing.T, c *Client, db *store.DB, rec *recorder) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	w := NewWatcher(c, db, rec, nil)
	done := make(chan struct{})
	go func() { _ = w.Run(ctx); close(done) }()
	return func() { cancel(); <-done }
}

func TestWatcherDeliversJobAndAllocationEventsAndResumesWithoutReplayAfterNomadAndWatcherRestarts(t *testing.T) {
	agent := nomadtest.StartServer(t, nomadtest.Options{})
	db, err := store.Open(filepath.Join(t.TempDir(), "w.db"), store.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	c, err := NewClient(agent.Addr, "")
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	stop := startWatcher(t, c, db, rec)
	defer func() { stop() }()

	api := agent.Client(t)
	if _, _, err := api.Jobs().Register(nomadtest.RawExecJob("job-a", "g", 1, "/bin/sleep", "600"), nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "job-a's Job event", func() bool { return rec.count(nomadapi.TopicJob, "JobRegistered", "job-a") >= 1 })
	waitFor(t, "job-a's Allocation event", func() bool { return rec.count(nomadapi.TopicAllocation, "", "job-a") >= 1 })

	// Nomad goes away and comes back on the same data dir.
	agent.Stop()
	agent.Start(t)
	if _, _, err := api.Jobs().Register(nomadtest.RawExecJob("job-b", "g", 1, "/bin/sleep", "600"), nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "job-b's Job event after the agent restart", func() bool { return rec.count(nomadapi.TopicJob, "JobRegistered", "job-b") >= 1 })

	// The watcher itself restarts (a daemon restart) from the stored index.
	stop()
	before, _ := db.GetUint64Meta(IndexKey)
	stop = startWatcher(t, c, db, rec)
	if _, _, err := api.Jobs().Register(nomadtest.RawExecJob("job-c", "g", 1, "/bin/sleep", "600"), nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "job-c's Job event after the watcher restart", func() bool { return rec.count(nomadapi.TopicJob, "JobRegistered", "job-c") >= 1 })

	if n := rec.count(nomadapi.TopicJob, "JobRegistered", "job-a"); n != 1 {
		t.Errorf("job-a registered %d times in the stream, want exactly 1 (no replay)", n)
	}
	if n := rec.count(nomadapi.TopicJob, "JobRegistered", "job-b"); n != 1 {
		t.Errorf("job-b registered %d times, want 1", n)
	}
	if !rec.strictlyIncreasing() {
		t.Errorf("batch indexes not strictly increasing: %v", rec.indexes)
	}
	// The index is stored once the handler has returned: wait for it
	// rather than race it.
	waitFor(t, fmt.Sprintf("the stored index to advance past %d", before), func() bool {
		after, _ := db.GetUint64Meta(IndexKey)
		return after > before
	})
}

func TestAStoredIndexFromAnotherClusterIsDroppedSoEventsStillArrive(t *testing.T) {
	agent := nomadtest.StartServer(t, nomadtest.Options{})
	db, err := store.Open(filepath.Join(t.TempDir(), "w.db"), store.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.PutUint64Meta(IndexKey, 1_000_000_000); err != nil { // a long-lived cluster's index
		t.Fatal(err)
	}
	c, err := NewClient(agent.Addr, "")
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	stop := startWatcher(t, c, db, rec)
	defer stop()
	if _, _, err := agent.Client(t).Jobs().Register(nomadtest.RawExecJob("job-new", "g", 1, "/bin/sleep", "600"), nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "job-new's Job event", func() bool { return rec.count(nomadapi.TopicJob, "JobRegistered", "job-new") >= 1 })
	if idx, _ := db.GetUint64Meta(IndexKey); idx >= 1_000_000_000 {
		t.Fatalf("stored index still %d", idx)
	}
}
