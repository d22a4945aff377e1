package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/nomadscalerd/nomadscalerd/nodepool"
	"github.com/nomadscalerd/nomadscalerd/nomadtest"
	"github.com/nomadscalerd/nomadscalerd/store"
)

const nodesPlanConfig = `
log_level = "debug"
pool "web" {
  node_pool = "web"
  max = 10
  headroom {
    cpu_mhz    = 1000
    memory_mib = 512
    units      = 10
  }
  instance_type "small" {
    cpu_mhz    = 4000
    memory_mib = 2048
    price      = 1
  }
  provider "noop" {}
}
`

// fakeNomadForPlan serves one web node with 2 free units.
func fakeNomadForPlan(t *testing.T) *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/nodes", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode([]*nomadapi.NodeListStub{{
			ID: "n1", Name: "client-1", NodePool: "web", Status: "ready", SchedulingEligibility: "eligible",
			NodeResources: &nomadapi.NodeResources{Cpu: nomadapi.NodeCpuResources{CpuShares: 2000}, Memory: nomadapi.NodeMemoryResources{MemoryMB: 4096}},
		}})
	})
	mux.HandleFunc("/v1/allocations", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("[]")) })
	mux.HandleFunc("/v1/node/n1", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(&nomadapi.Node{ID: "n1", Meta: map[string]string{"nomadscaler_instance_type": "small"}})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestNodesPlanPrintsTheDecisionWithoutActing(t *testing.T) {
	srv := fakeNomadForPlan(t)
	path := filepath.Join(t.TempDir(), "config.hcl")
	if err := os.WriteFile(path, []byte(nodesPlanConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	app := newApp()
	app.Writer = &out
	if err := app.Run([]string{"nomadscalerd", "nodes", "plan", "--config", path, "--nomad-addr", srv.URL}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"pool web: 1 nodes", "headroom 2 free + 0 pending of 10 units", "scale out: 2 × small", "8 short"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}

	out.Reset()
	if err := app.Run([]string{"nomadscalerd", "nodes", "plan", "--config", path, "--nomad-addr", srv.URL, "--json"}); err != nil {
		t.Fatal(err)
	}
	var ds []map[string]any
	if err := json.Unmarshal(out.Bytes(), &ds); err != nil || len(ds) != 1 || ds[0]["acted"] != false {
		t.Fatalf("json output %s (err %v), want one decision not acted on", out.String(), err)
	}
}

func TestNodesPlanRejectsAnUnknownPool(t *testing.T) {
	srv := fakeNomadForPlan(t)
	path := filepath.Join(t.TempDir(), "config.hcl")
	_ = os.WriteFile(path, []byte(nodesPlanConfig), 0o600)
	app := newApp()
	app.Writer = &bytes.Buffer{}
	err := app.Run([]string{"nomadscalerd", "nodes", "plan", "--config", path, "--nomad-addr", srv.URL, "--pool", "nope"})
	if err == nil || !strings.Contains(err.Error(), "unknown pool") {
		t.Fatalf("err = %v, want unknown pool", err)
	}
}

// seedPoolState writes what a daemon would leave for pool web: node n1 idle
// for three periods and being drained, a finished drain of n2 and the last
// decision.
func seedPoolState(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state.db")
	db, err := store.Open(path, store.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	st := nodepool.StoreState{DB: db}
	at := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	if err := st.SaveIdle(ctx, "web", nodepool.IdleState{Nodes: map[string]nodepool.NodeIdle{
		"n1": {IdleSince: at.Add(-3 * time.Minute), LastSeen: at, Periods: 3}}}); err != nil {
		t.Fatal(err)
	}
	for _, e := range []nodepool.Entry{
		{ID: "web/drain/n2", Pool: "web", Kind: nodepool.KindDrain, Phase: nodepool.PhaseDraining, At: at.Add(-time.Hour), NodeID: "n2", NodeName: "client-2"},
		{ID: "web/drain/n2", Pool: "web", Kind: nodepool.KindDrain, Phase: nodepool.PhaseDone, At: at.Add(-time.Hour), NodeID: "n2", NodeName: "client-2"},
		{ID: "web/drain/n1", Pool: "web", Kind: nodepool.KindDrain, Phase: nodepool.PhaseDraining, At: at, NodeID: "n1", NodeName: "client-1", Reason: "idle for 3 periods"},
	} {
		if err := st.Append(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.RecordDecision(ctx, nodepool.Decision{Pool: "web", At: at, Reason: "draining 1 idle nodes", Acted: true}); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestNodesStatusShowsNodesIdleCountersDrainsInFlightAndTheLastDecision(t *testing.T) {
	srv := fakeNomadForPlan(t)
	db := seedPoolState(t)
	cfg := filepath.Join(t.TempDir(), "config.hcl")
	if err := os.WriteFile(cfg, []byte(nodesPlanConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	app := newApp()
	app.Writer = &out
	if err := app.Run([]string{"nomadscalerd", "--db", db, "nodes", "status", "--config", cfg, "--nomad-addr", srv.URL}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"pool web",
		"headroom: 0 of 10 units free", // n1's 2 free units are leaving with it
		"client-1", "small", "2000 MHz", "3 periods", "draining",
		"in flight: drain of client-1 (n1) draining since 2026-11-23T12:00:00Z: idle for 3 periods",
		"last decision at 2026-11-23T12:00:00Z: draining 1 idle nodes",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "client-2") {
		t.Errorf("a finished drain is shown as in flight:\n%s", out.String())
	}

	out.Reset()
	if err := app.Run([]string{"nomadscalerd", "--db", db, "nodes", "status", "--config", cfg, "--nomad-addr", srv.URL, "--json", "--pool", "web"}); err != nil {
		t.Fatal(err)
	}
	var got []poolStatus
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("json output %s: %v", out.String(), err)
	}
	if len(got) != 1 || len(got[0].Nodes) != 1 || got[0].Nodes[0].FreeUnits != 2 || got[0].Nodes[0].InFlight != nodepool.PhaseDraining ||
		got[0].Idle["n1"].Periods != 3 || len(got[0].InFlight) != 1 || got[0].LastDecision == nil {
		t.Errorf("json status %s", out.String())
	}
}

func TestNodesStatusWithoutAConfigShowsWhatTheDatabaseKnows(t *testing.T) {
	db := seedPoolState(t)
	var out bytes.Buffer
	app := newApp()
	app.Writer = &out
	if err := app.Run([]string{"nomadscalerd", "--db", db, "nodes", "status"}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"pool web", "idle: node n1 for 3 periods", "in flight: drain of client-1", "last decision at"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	err := app.Run([]string{"nomadscalerd", "--db", db, "nodes", "status", "--pool", "nope"})
	if err == nil || !strings.Contains(err.Error(), "unknown pool") {
		t.Errorf("err = %v, want unknown pool", err)
	}
}

func TestNodesStatusExplainsADatabaseHeldByARunningDaemon(t *testing.T) {
	path := seedPoolState(t)
	held, err := store.Open(path, store.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	t.Setenv("NOMADSCALERD_ADDR", fmt.Sprintf("http://127.0.0.1:%d", nomadtest.FreePort(t))) // no daemon there
	app := newApp()
	app.Writer = &bytes.Buffer{}
	app.ErrWriter = &bytes.Buffer{}
	err = app.Run([]string{"nomadscalerd", "--db", path, "nodes", "status"})
	if err == nil || !strings.Contains(err.Error(), "db backup") {
		t.Errorf("err = %v, want advice to stop the daemon or read a backup", err)
	}
}

// A fake daemon (httptest) serves the snapshot endpoint; the real handler
// is api.HandleSnapshot, tested with the daemon in run_test.go's package.
func TestInspectionReadsASnapshotFromTheDaemonWhenTheFileIsLocked(t *testing.T) {
	path := seedPoolState(t)
	held, err := store.Open(path, store.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/db/snapshot" || r.Header.Get("Authorization") != "Bearer tok" {
			w.WriteHeader(401)
			return
		}
		_, _ = held.Backup(w)
	}))
	defer ts.Close()
	t.Setenv("NOMADSCALERD_ADDR", ts.URL)
	t.Setenv("NOMADSCALERD_TOKEN", "tok")
	var out, errOut bytes.Buffer
	app := newApp()
	app.Writer, app.ErrWriter = &out, &errOut
	if err := app.Run([]string{"nomadscalerd", "--db", path, "db", "check"}); err != nil {
		t.Fatalf("db check through the snapshot: %v", err)
	}
	if !strings.Contains(errOut.String(), "reading a snapshot") || !strings.Contains(out.String(), "schema") {
		t.Fatalf("stderr %q stdout %q", errOut.String(), out.String())
	}
}
