package main

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/nomadscalerd/nomadscalerd/nodepool"
	"github.com/nomadscalerd/nomadscalerd/store"
)

func TestNodepoolStateKeepsOpenEntriesAndIdleCounters(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), "db"), store.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s := nodepoolState{db}
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	_ = s.Append(ctx, nodepool.Entry{ID: "a", Pool: "web", Kind: nodepool.KindDrain, Phase: nodepool.PhaseDraining, NodeID: "n1", At: now})
	_ = s.Append(ctx, nodepool.Entry{ID: "b", Pool: "web", Kind: nodepool.KindScaleOut, Phase: nodepool.PhaseLaunched, Count: 2, At: now})
	_ = s.Append(ctx, nodepool.Entry{ID: "a", Pool: "web", Kind: nodepool.KindDrain, Phase: nodepool.PhaseTerminated, NodeID: "n1", At: now})
	_ = s.Append(ctx, nodepool.Entry{ID: "b", Pool: "web", Kind: nodepool.KindScaleOut, Phase: nodepool.PhaseDone, Count: 2, At: now})
	p, err := s.Pending(ctx)
	if err != nil || len(p) != 1 || p[0].ID != "a" || p[0].Phase != nodepool.PhaseTerminated {
		t.Fatalf("pending %+v err %v", p, err)
	}
	st, err := s.LoadIdle(ctx, "web")
	if err != nil || len(st.Nodes) != 0 {
		t.Fatalf("fresh idle %+v err %v", st, err)
	}
	_ = s.SaveIdle(ctx, "web", nodepool.IdleState{Nodes: map[string]nodepool.NodeIdle{"n1": {IdleSince: now, LastSeen: now, Periods: 3}}})
	st, _ = s.LoadIdle(ctx, "web")
	if st.Nodes["n1"].Periods != 3 || !st.Nodes["n1"].IdleSince.Equal(now) {
		t.Fatalf("idle round trip %+v", st)
	}
}
