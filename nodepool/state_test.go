package nodepool

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/nomadscalerd/nomadscalerd/store"
)

func TestStoreStateKeepsOpenEntriesIdleCountersAndTheLastDecision(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), "db"), store.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s := StoreState{db}
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	if err := s.Append(ctx, Entry{ID: "a", Pool: "web", Kind: KindDrain, Phase: PhaseDraining, NodeID: "n1", At: now}); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(ctx, Entry{ID: "b", Pool: "web", Kind: KindScaleOut, Phase: PhaseLaunched, Count: 2, At: now}); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(ctx, Entry{ID: "a", Pool: "web", Kind: KindDrain, Phase: PhaseTerminated, NodeID: "n1", At: now}); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(ctx, Entry{ID: "b", Pool: "web", Kind: KindScaleOut, Phase: PhaseDone, Count: 2, At: now}); err != nil {
		t.Fatal(err)
	}
	p, err := s.Pending(ctx)
	if err != nil || len(p) != 1 || p[0].ID != "a" || p[0].Phase != PhaseTerminated {
		t.Fatalf("pending %+v err %v", p, err)
	}
	st, err := s.LoadIdle(ctx, "web")
	if err != nil || len(st.Nodes) != 0 {
		t.Fatalf("fresh idle %+v err %v", st, err)
	}
	if err := s.SaveIdle(ctx, "web", IdleState{Nodes: map[string]NodeIdle{"n1": {IdleSince: now, LastSeen: now, Periods: 3}}}); err != nil {
		t.Fatal(err)
	}
	if st, err = s.LoadIdle(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	if st.Nodes["n1"].Periods != 3 || !st.Nodes["n1"].IdleSince.Equal(now) {
		t.Fatalf("idle round trip %+v", st)
	}
	if _, ok, err := s.LastDecision("web"); err != nil || ok {
		t.Fatalf("a decision before any was recorded: ok %v, err %v", ok, err)
	}
	if err := s.RecordDecision(ctx, Decision{Pool: "web", Reason: "nothing to do"}); err != nil {
		t.Fatal(err)
	}
	if d, ok, err := s.LastDecision("web"); err != nil || !ok || d.Reason != "nothing to do" {
		t.Fatalf("last decision %+v ok %v err %v", d, ok, err)
	}
	if pools, err := s.KnownPools(); err != nil || len(pools) != 1 || pools[0] != "web" {
		t.Fatalf("known pools %v (%v), want [web] once though it has idle counters and a decision", pools, err)
	}
}
