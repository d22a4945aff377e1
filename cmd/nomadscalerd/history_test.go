package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nomadscalerd/nomadscalerd/store"
)

func TestExportColumnsPickRequestsThenTheFirstMetricAsY(t *testing.T) {
	tests := []struct {
		name       string
		metrics    []string
		y          string
		wantY      string
		wantOthers []string
		wantErr    bool
	}{
		{name: "requests wins by default", metrics: []string{"cpu", "requests", "zeta"}, wantY: "requests", wantOthers: []string{"cpu", "zeta"}},
		{name: "else the first metric", metrics: []string{"cpu", "mem"}, wantY: "cpu", wantOthers: []string{"mem"}},
		{name: "an explicit y wins", metrics: []string{"cpu", "requests"}, y: "cpu", wantY: "cpu", wantOthers: []string{"requests"}},
		{name: "a lone metric has no exogenous columns", metrics: []string{"requests"}, wantY: "requests"},
		{name: "an unrecorded y is an error", metrics: []string{"cpu"}, y: "requests", wantErr: true},
		{name: "no metrics is an error", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			y, others, err := exportColumns(tt.metrics, tt.y)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if y != tt.wantY || !reflect.DeepEqual(others, tt.wantOthers) {
				t.Fatalf("exportColumns = %q, %q; want %q, %q", y, others, tt.wantY, tt.wantOthers)
			}
		})
	}
}

func TestPolicyMetricsAreTheSeriesDirectlyUnderThePolicyKey(t *testing.T) {
	series := []store.SeriesInfo{
		{Name: "default/web/frontend/requests"}, {Name: "default/web/frontend/cpu"},
		{Name: "default/web/frontend-canary/cpu"}, {Name: "default/web/api/cpu"}, {Name: "default/web/frontend/x/y"},
	}
	got := policyMetrics(series, "default/web/frontend")
	if want := []string{"cpu", "requests"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("policyMetrics = %q, want %q", got, want)
	}
}

// seedHistory writes two metrics of one policy, with one gap, and closes the
// database so the read-only CLI can open it.
func seedHistory(t *testing.T) (path string, start time.Time) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "h.db")
	db, err := store.Open(path, store.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	start = time.Now().Add(-10 * time.Second).Truncate(time.Second).UTC()
	for i := 0; i < 5; i++ {
		ts := start.Add(time.Duration(i) * time.Second)
		pts := []store.Point{{Series: "default/web/frontend/requests", T: ts, V: float64(100 + i)}}
		if i != 2 {
			pts = append(pts, store.Point{Series: "default/web/frontend/cpu", T: ts.Add(150 * time.Millisecond), V: float64(10 * i)})
		}
		if err := db.WritePoints(pts); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.WriteRollups("default/web/frontend/requests", []store.Rollup{{T: start.Truncate(time.Minute), Mean: 102, Min: 100, Max: 104, Count: 5}}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return path, start
}

func runCLI(t *testing.T, args ...string) string {
	t.Helper()
	app := newApp()
	var out, errOut bytes.Buffer
	app.Writer, app.ErrWriter = &out, &errOut
	if err := app.Run(append([]string{"nomadscalerd"}, args...)); err != nil {
		t.Fatalf("%v: %v\n%s", args, err, errOut.String())
	}
	return out.String()
}

func TestHistoryExportWritesYAndOneColumnPerOtherMetricAlignedPerSecond(t *testing.T) {
	path, _ := seedHistory(t)
	out := runCLI(t, "--db", path, "history", "export", "--policy", "default/web/frontend", "--format", "csv")
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"y", "cpu"}, {"100", "0"}, {"101", "10"}, {"102", "10"}, {"103", "30"}, {"104", "40"}}
	if !reflect.DeepEqual(rows, want) {
		t.Fatalf("csv = %q, want %q", rows, want)
	}
	file := filepath.Join(t.TempDir(), "fit.csv")
	runCLI(t, "--db", path, "history", "export", "--policy", "default/web/frontend", "--y", "cpu", "--out", file)
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if first := strings.SplitN(string(data), "\n", 2)[0]; first != "y,requests" {
		t.Fatalf("--y cpu header = %q, want y,requests", first)
	}
}

func TestHistoryLsAndShowReportWhatWasRecorded(t *testing.T) {
	path, start := seedHistory(t)
	var l struct {
		Raw     []store.SeriesInfo `json:"raw"`
		Rollups []store.SeriesInfo `json:"rollups"`
	}
	if err := json.Unmarshal([]byte(runCLI(t, "--db", path, "history", "ls", "--json")), &l); err != nil {
		t.Fatal(err)
	}
	if len(l.Raw) != 2 || len(l.Rollups) != 1 {
		t.Fatalf("ls = %+v, want 2 raw series and 1 rollup series", l)
	}
	for _, s := range l.Raw {
		if s.Name == "default/web/frontend/requests" && (s.Count != 5 || !s.First.Equal(start) || !s.Last.Equal(start.Add(4*time.Second))) {
			t.Fatalf("requests = %+v, want 5 points from %v", s, start)
		}
	}
	if text := runCLI(t, "--db", path, "history", "ls"); !strings.Contains(text, "default/web/frontend/cpu") || !strings.Contains(text, "rollup") {
		t.Fatalf("ls text:\n%s", text)
	}
	var samples []store.Sample
	if err := json.Unmarshal([]byte(runCLI(t, "--db", path, "history", "show", "--policy", "default/web/frontend", "--metric", "cpu", "--json")), &samples); err != nil {
		t.Fatal(err)
	}
	if len(samples) != 4 || samples[3].V != 40 {
		t.Fatalf("show cpu = %+v, want 4 samples ending at 40", samples)
	}
	if text := runCLI(t, "--db", path, "history", "show", "--policy", "default/web/frontend", "--metric", "requests", "--since", "3s"); strings.Count(text, "\n") > 3 {
		t.Fatalf("--since 3s printed more than the last seconds:\n%s", text)
	}
	if text := runCLI(t, "--db", path, "history", "show", "--policy", "default/web/frontend", "--metric", "requests", "--rollups", "--since", "24h"); !strings.Contains(text, "102") {
		t.Fatalf("rollups:\n%s", text)
	}
}
