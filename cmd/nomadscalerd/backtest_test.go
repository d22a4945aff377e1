package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// writeTrace writes a gzip trace of a slow wave of requests per second.
func writeTrace(t *testing.T, dir string, n int) string {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	for s := 0; s < n; s++ {
		fmt.Fprintf(zw, "%d\n", int(math.Round(3+2*math.Sin(2*math.Pi*float64(s)/1200))))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "trace.txt.gz")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func runBacktestCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	app := &cli.App{Writer: &out, ErrWriter: &errOut, Commands: []*cli.Command{backtestCommand()}}
	err := app.Run(append([]string{"nomadscalerd", "backtest"}, args...))
	return out.String(), err
}

func TestBacktestPrintsOneJSONResultPerStrategyAndDrawsThePlot(t *testing.T) {
	dir := t.TempDir()
	trace := writeTrace(t, dir, 4000)
	png := filepath.Join(dir, "bt.png")
	out, err := runBacktestCLI(t, "--trace", trace, "--start", "600", "--duration", "30m", "--scale", "20", "--rate-window", "60",
		"--strategies", "target-value,hpa,oracle", "--json", "--plot", png)
	if err != nil {
		t.Fatal(err)
	}
	var report struct {
		Trace   string `json:"trace"`
		Seconds int    `json:"seconds"`
		Results []struct {
			Strategy       string  `json:"strategy"`
			ReplicaSeconds int64   `json:"replica_seconds"`
			Cost           float64 `json:"cost"`
		} `json:"results"`
	}
	if err := json.Unmarshal([]byte(out), &report); err != nil {
		t.Fatalf("output is not the JSON report: %v\n%s", err, out)
	}
	if report.Trace != trace || report.Seconds != 1800 || len(report.Results) != 3 {
		t.Fatalf("report %+v: want the trace, 1800 seconds and three results", report)
	}
	for i, name := range []string{"target-value", "hpa", "oracle"} {
		r := report.Results[i]
		if r.Strategy != name || r.ReplicaSeconds < 1800 || r.Cost <= 0 {
			t.Errorf("result %d: %+v", i, r)
		}
	}
	if st, err := os.Stat(png); err != nil || st.Size() == 0 {
		t.Errorf("no plot written: %v", err)
	}
}

func TestBacktestPrintsATableByDefault(t *testing.T) {
	trace := writeTrace(t, t.TempDir(), 1000)
	out, err := runBacktestCLI(t, "--trace", trace, "--strategies", "hpa")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "unmet_requests") || !strings.HasPrefix(strings.TrimSpace(lines[1]), "hpa") {
		t.Errorf("table:\n%s", out)
	}
}

func TestBacktestSplitsEachStrategyByTheTrafficsLevelWhenAsked(t *testing.T) {
	args := []string{"--trace", "synthetic:flash-crowd:0.25", "--duration", "2h", "--strategies", "target-value,hpa", "--by-level", "10"}
	out, err := runBacktestCLI(t, append(args, "--json")...)
	if err != nil {
		t.Fatal(err)
	}
	var report struct {
		Results []struct {
			ReplicaSeconds int64 `json:"replica_seconds"`
		} `json:"results"`
		Levels []struct {
			From       float64 `json:"from"`
			Seconds    int     `json:"seconds"`
			Strategies []struct {
				Strategy       string `json:"strategy"`
				ReplicaSeconds int64  `json:"replica_seconds"`
			} `json:"strategies"`
		} `json:"levels"`
	}
	if err := json.Unmarshal([]byte(out), &report); err != nil {
		t.Fatalf("output is not the JSON report: %v\n%s", err, out)
	}
	if len(report.Levels) == 0 || len(report.Results) != 2 {
		t.Fatalf("report %+v: want levels beside two results", report)
	}
	seconds, rs := 0, int64(0)
	for _, l := range report.Levels {
		seconds += l.Seconds
		if len(l.Strategies) != 2 || l.Strategies[1].Strategy != "hpa" {
			t.Fatalf("level %+v: want target-value and hpa", l)
		}
		rs += l.Strategies[1].ReplicaSeconds
	}
	if seconds != 7200 || rs != report.Results[1].ReplicaSeconds {
		t.Errorf("levels hold %d seconds and %d of hpa's %d replica-seconds: want all 7200 and all of them", seconds, rs, report.Results[1].ReplicaSeconds)
	}
	table, err := runBacktestCLI(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table, "by level") || !strings.Contains(table, "30-40") {
		t.Errorf("table without the level bands:\n%s", table)
	}
}

func TestBacktestReplaysASyntheticTrace(t *testing.T) {
	out, err := runBacktestCLI(t, "--trace", "synthetic:flash-crowd:0.25", "--duration", "2h", "--strategies", "hpa", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var report struct {
		Trace   string `json:"trace"`
		Seconds int    `json:"seconds"`
		Results []struct {
			Strategy       string `json:"strategy"`
			ReplicaSeconds int64  `json:"replica_seconds"`
		} `json:"results"`
	}
	if err := json.Unmarshal([]byte(out), &report); err != nil {
		t.Fatalf("output is not the JSON report: %v\n%s", err, out)
	}
	// Two hours at 30 requests/s or more need 3 replicas or more at 10/s.
	if report.Trace != "synthetic:flash-crowd:0.25" || report.Seconds != 7200 || len(report.Results) != 1 || report.Results[0].ReplicaSeconds < 3*7200 {
		t.Errorf("report %+v", report)
	}
	if _, err := runBacktestCLI(t, "--trace", "synthetic:sawtooth"); err == nil {
		t.Error("synthetic:sawtooth accepted")
	}
}

func TestBacktestReportsPredictiveAgainstTheGoalsOfTheStrategiesThatRan(t *testing.T) {
	out, err := runBacktestCLI(t, "--trace", "synthetic:daily:0.25", "--start", "2h", "--duration", "30m", "--history", "2h",
		"--strategies", "predictive,hpa", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var report struct {
		Results []struct {
			Strategy       string `json:"strategy"`
			ReplicaSeconds int64  `json:"replica_seconds"`
		} `json:"results"`
		Goals []struct {
			Measure string   `json:"measure"`
			Against string   `json:"against"`
			Ratio   *float64 `json:"ratio"`
			Met     bool     `json:"met"`
		} `json:"goals"`
	}
	if err := json.Unmarshal([]byte(out), &report); err != nil {
		t.Fatalf("output is not the JSON report: %v\n%s", err, out)
	}
	var measures []string
	for _, g := range report.Goals {
		if g.Against != "hpa" {
			t.Errorf("goal %+v against a strategy that did not run", g)
		}
		measures = append(measures, g.Measure)
	}
	if strings.Join(measures, ",") != "cost,unmet_requests,replica_seconds" || len(report.Results) != 2 {
		t.Fatalf("goals of %s, want cost, unmet requests and replica-seconds against hpa", out)
	}
	rs := report.Goals[2]
	if want := float64(report.Results[0].ReplicaSeconds) / float64(report.Results[1].ReplicaSeconds); rs.Ratio == nil || *rs.Ratio != want || rs.Met != (want <= 0.9) {
		t.Errorf("replica-seconds goal %+v, want ratio %v", rs, want)
	}
}

func TestBacktestSaysHowCloseAnyStrategyCouldComeToTheGoalsOnATraceDrawnFromAKnownRate(t *testing.T) {
	args := []string{"--trace", "synthetic:daily:0.25", "--start", "2h", "--duration", "30m", "--history", "2h", "--strategies", "predictive,hpa"}
	out, err := runBacktestCLI(t, append(args, "--json")...)
	if err != nil {
		t.Fatal(err)
	}
	var report struct {
		Goals []struct {
			Measure string   `json:"measure"`
			Reach   *float64 `json:"reach"`
		} `json:"goals"`
	}
	if err := json.Unmarshal([]byte(out), &report); err != nil {
		t.Fatalf("output is not the JSON report: %v\n%s", err, out)
	}
	if len(report.Goals) != 3 {
		t.Fatalf("goals of %s: want 3", out)
	}
	for _, g := range report.Goals {
		// Half an hour of 20-60 requests/s needs at least 2 replicas a
		// second, and HPA ran no fewer: no reach is 0 or far above 1.
		if g.Reach == nil || !(*g.Reach > 0.3 && *g.Reach < 3) {
			t.Errorf("%s goal's reach %v, want one between 0.3 and 3", g.Measure, g.Reach)
		}
	}
	text, err := runBacktestCLI(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text, "reach: the least ratio any strategy could expect") || !strings.Contains(text, "replica-seconds over the least any strategy could expect with as many unmet requests: predictive ") {
		t.Errorf("table without the reach's legend or the frontier:\n%s", text)
	}
	// A demand that is a window's mean of draws is not one draw of its
	// rate: no bound, no reach.
	windowed, err := runBacktestCLI(t, append(args, "--rate-window", "10")...)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(windowed, "reach") {
		t.Errorf("a reach for a windowed demand:\n%s", windowed)
	}
}

func TestBacktestRejectsUnknownStrategiesAndBadDurations(t *testing.T) {
	trace := writeTrace(t, t.TempDir(), 100)
	for _, args := range [][]string{
		{"--trace", trace, "--strategies", "magic"},
		{"--trace", trace, "--duration", "7x"},
		{"--trace", trace, "--start", "1000"},
		{"--trace", trace, "--solver", "simplex"},
		{"--trace", trace, "--tv-target", "0"},
		{"--trace", trace, "--tv-window", "0"},
		{"--trace", trace, "--tv-cooldown", "soon"},
	} {
		if _, err := runBacktestCLI(t, args...); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}

func TestTheDemoReplayLeavesUnderHalfTheUnmetRequestsOfTheTargetValueTheLivePeerRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("a 1-hour replay with an hour of history")
	}
	out, err := runBacktestCLI(t, "--trace", "synthetic:demo:0.0834", "--start", "1h", "--history", "1h", "--rate-window", "10",
		"--startup-delay", "3", "--min", "1", "--max", "12", "--tv-target", "1", "--tv-window", "10s",
		"--policy", "../../backtest/testdata/policies/demo.hcl", "--strategies", "predictive,target-value", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var report struct {
		Results []struct {
			Strategy      string  `json:"strategy"`
			UnmetRequests float64 `json:"unmet_requests"`
		} `json:"results"`
	}
	if err := json.Unmarshal([]byte(out), &report); err != nil || len(report.Results) != 2 {
		t.Fatalf("report %s: %v", out, err)
	}
	p, tv := report.Results[0], report.Results[1]
	if tv.UnmetRequests < 100 || p.UnmetRequests > 0.5*tv.UnmetRequests {
		t.Fatalf("unmet requests: predictive %.0f, target-value at 10 req/s per replica %.0f; want at most half", p.UnmetRequests, tv.UnmetRequests)
	}
}
