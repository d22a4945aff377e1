package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
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

func TestOptimizeCommandRefusesAStartupDelayAsLongAsThePlan(t *testing.T) {
	dir := t.TempDir()
	req := filepath.Join(dir, "req.json")
	demand := filepath.Join(dir, "demand.txt")
	if err := os.WriteFile(req, []byte(`{"current_replicas":1,"min_replicas":1,"max_replicas":8,"cache_size":4}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(demand, []byte("60\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// 60 at capacity 10 needs 6 replicas and 1 serves, but a replica
	// asked for within 4 seconds that serves 4 or more seconds later
	// serves after the plan: the plan held 1 throughout.
	for _, solver := range []string{"dp", "highs"} {
		for _, delay := range []string{"4", "10"} {
			out, err := runApp(t, "--log-level", "error", "optimize", "--input", req, "--demand", demand, "--solver", solver, "--startup-delay", delay)
			if err == nil || !strings.Contains(err.Error(), "cache_size") {
				t.Errorf("%s, delay %s: err %v, printed %q; want the delay refused", solver, delay, err, out)
			}
		}
		out, err := runApp(t, "--log-level", "error", "optimize", "--input", req, "--demand", demand, "--solver", solver, "--startup-delay", "3")
		if err != nil {
			t.Fatalf("%s, delay 3: %v", solver, err)
		}
		var resp struct{ Desired []int }
		if err := json.Unmarshal([]byte(out), &resp); err != nil {
			t.Fatalf("%s, delay 3: output %q: %v", solver, out, err)
		}
		if len(resp.Desired) != 4 || resp.Desired[0] <= 1 {
			t.Fatalf("%s, delay 3: desired %v, want 4 counts asking for more than 1 at once", solver, resp.Desired)
		}
	}
}

func TestOptimizeCommandRefusesAPriceWithoutTheResourceItPrices(t *testing.T) {
	dir := t.TempDir()
	req := filepath.Join(dir, "req.json")
	demand := filepath.Join(dir, "demand.txt")
	// 8 replicas serve demand that 1 covers: at any positive replica cost
	// the plan stops most of them.
	if err := os.WriteFile(req, []byte(`{"current_replicas":8,"min_replicas":1,"max_replicas":8,"cache_size":10}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(demand, []byte("5\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"--price-per-mhz-second", "0.001"},
		{"--price-per-mib-second", "0.0001"},
		{"--price-per-mhz-second", "0.001", "--memory-mib", "512"},
	} {
		out, err := runApp(t, append([]string{"--log-level", "error", "optimize", "--input", req, "--demand", demand, "--solver", "dp"}, args...)...)
		if err == nil {
			t.Errorf("%v: no error, printed %s", args, out)
		}
	}
	out, err := runApp(t, "--log-level", "error", "optimize", "--input", req, "--demand", demand, "--solver", "dp",
		"--price-per-mhz-second", "0.001", "--cpu-mhz", "500")
	if err != nil {
		t.Fatal(err)
	}
	var resp struct{ Desired []int }
	if err := json.Unmarshal([]byte(out), &resp); err != nil {
		t.Fatalf("output %q: %v", out, err)
	}
	if resp.Desired[len(resp.Desired)-1] >= 8 {
		t.Fatalf("priced replicas: desired %v, want the idle ones stopped", resp.Desired)
	}
}
