package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestOptimizeCommandPrintsDesiredCountsForTheGivenDemand(t *testing.T) {
	dir := t.TempDir()
	req := filepath.Join(dir, "req.json")
	demand := filepath.Join(dir, "demand.txt")
	os.WriteFile(req, []byte(`{"token":"x","check":{"name":"n","source":"s","group":"g","metric_app_name":"a"},
		"current_replicas":1,"min_replicas":1,"max_replicas":8,"cache_size":4}`), 0o600)
	os.WriteFile(demand, []byte("60\n60\n60\n60\n"), 0o600)
	for _, solver := range []string{"dp", "highs"} {
		var out bytes.Buffer
		app := newApp()
		app.Writer = &out
		if err := app.Run([]string{"nomadscalerd", "--log-level", "error", "optimize", "--input", req, "--demand", demand, "--solver", solver}); err != nil {
			t.Fatalf("%s: %v", solver, err)
		}
		var resp struct{ Desired []int }
		if err := json.Unmarshal(out.Bytes(), &resp); err != nil {
			t.Fatalf("%s: output %q: %v", solver, out.String(), err)
		}
		// 60 at capacity 10 needs 6 replicas, reached from 1 at 2 per second.
		if want := []int{3, 5, 6, 6}; !slices.Equal(resp.Desired, want) {
			t.Fatalf("%s: desired %v, want %v", solver, resp.Desired, want)
		}
	}
}

func TestOptimizeCommandRejectsAnInvalidRequest(t *testing.T) {
	req := filepath.Join(t.TempDir(), "req.json")
	os.WriteFile(req, []byte(`{"current_replicas":1,"min_replicas":3,"max_replicas":1}`), 0o600)
	app := newApp()
	app.Writer = &bytes.Buffer{}
	if err := app.Run([]string{"nomadscalerd", "optimize", "--input", req}); err == nil {
		t.Fatal("want an error for min_replicas > max_replicas")
	}
}
