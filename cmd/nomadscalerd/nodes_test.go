package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	nomadapi "github.com/hashicorp/nomad/api"
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
