package deploy_test

import (
	"encoding/json"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/nomadscalerd/nomadscalerd/clock"
	"github.com/nomadscalerd/nomadscalerd/history"
	"github.com/nomadscalerd/nomadscalerd/nodepool"
	"github.com/nomadscalerd/nomadscalerd/optimize"
	"github.com/nomadscalerd/nomadscalerd/reconciler"
)

// recordingRegistry remembers every collector registered on it, so the
// test can describe them all: a vector with no child yet is absent from
// Gather but present in Describe.
type recordingRegistry struct {
	*prometheus.Registry
	collectors []prometheus.Collector
}

func (r *recordingRegistry) Register(c prometheus.Collector) error {
	r.collectors = append(r.collectors, c)
	return r.Registry.Register(c)
}

func (r *recordingRegistry) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

// exportedMetrics registers every metric the daemon registers in
// runDaemon (cmd/nomadscalerd/run.go) and returns their names with their
// types (dto.MetricType's names) where Gather knows them: histograms and
// summaries have suffixed series.
func exportedMetrics(t *testing.T) map[string]string {
	t.Helper()
	reg := &recordingRegistry{Registry: prometheus.NewRegistry()}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if _, err := reconciler.NewMetrics(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := optimize.NewMetrics(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := nodepool.NewMetrics(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := history.NewRecorder(nil, nil, nil, clock.Real{}, history.Config{Registerer: reg}); err != nil {
		t.Fatal(err)
	}
	names := map[string]string{}
	for _, c := range reg.collectors {
		ch := make(chan *prometheus.Desc, 64)
		go func() { c.Describe(ch); close(ch) }()
		for d := range ch {
			m := fqName.FindStringSubmatch(d.String())
			if m == nil {
				t.Fatalf("cannot read the name of %s", d)
			}
			names[m[1]] = "UNTYPED"
		}
	}
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		names[f.GetName()] = f.GetType().String()
	}
	return names
}

var (
	promString   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'`)
	promMatchers = regexp.MustCompile(`\{[^}]*\}`)
	promRange    = regexp.MustCompile(`\[[^\]]*\]`)
	promGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promIdent    = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	labelValues  = regexp.MustCompile(`^label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,`)
	promKeywords = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true,
		"group_right": true, "bool": true, "and": true, "or": true, "unless": true, "offset": true, "inf": true, "nan": true}
)

// metricNames extracts the metric names a PromQL expression selects:
// identifiers that are not functions, keywords, label names, strings or
// Grafana variables.
func metricNames(expr string) []string {
	if m := labelValues.FindStringSubmatch(expr); m != nil {
		return []string{m[1]}
	}
	s := promString.ReplaceAllString(expr, " ")
	s = promMatchers.ReplaceAllString(s, " ")
	s = promRange.ReplaceAllString(s, " ")
	s = promGrouping.ReplaceAllString(s, " ")
	var out []string
	for _, loc := range promIdent.FindAllStringIndex(s, -1) {
		name := s[loc[0]:loc[1]]
		if loc[0] > 0 && s[loc[0]-1] == '$' { // $variable
			continue
		}
		if loc[0] > 0 && (s[loc[0]-1] >= '0' && s[loc[0]-1] <= '9' || s[loc[0]-1] == '.') { // 1e3, 0.5
			continue
		}
		rest := strings.TrimLeft(s[loc[1]:], " \t\n")
		if strings.HasPrefix(rest, "(") || promKeywords[strings.ToLower(name)] {
			continue
		}
		out = append(out, name)
	}
	return out
}

func TestMetricNamesAreReadFromPromQL(t *testing.T) {
	cases := []struct {
		expr string
		want []string
	}{
		{`up`, []string{"up"}},
		{`sum by (policy, outcome) (rate(a_total{policy=~"$policy", x="by (y)"}[$__rate_interval]))`, []string{"a_total"}},
		{`histogram_quantile(0.99, sum by (le) (rate(b_seconds_bucket[5m])))`, []string{"b_seconds_bucket"}},
		{`sum(rate(c_sum[1m])) / sum(rate(c_count[1m])) * 1e3`, []string{"c_sum", "c_count"}},
		{`max(d) or on (instance) e > bool 0`, []string{"d", "e"}},
		{`label_values(f_total, policy)`, []string{"f_total"}},
		{`rate(g[5m] offset 1h)`, []string{"g"}},
	}
	for _, c := range cases {
		got := metricNames(c.expr)
		if strings.Join(got, ",") != strings.Join(c.want, ",") {
			t.Errorf("metricNames(%q) = %v, want %v", c.expr, got, c.want)
		}
	}
}

// unknownMetrics returns the names no exported metric accounts for.
func unknownMetrics(names []string, exported map[string]string) []string {
	var bad []string
	for _, n := range names {
		if _, ok := exported[n]; ok {
			continue
		}
		known := false
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			base, found := strings.CutSuffix(n, suffix)
			if !found {
				continue
			}
			typ, ok := exported[base]
			known = ok && (typ == "HISTOGRAM" || typ == "GAUGE_HISTOGRAM" || (suffix != "_bucket" && typ == "SUMMARY"))
		}
		if !known {
			bad = append(bad, n)
		}
	}
	return bad
}

// dashboardExprs walks the dashboard JSON for every panel target's expr and
// every templating query.
func dashboardExprs(t *testing.T, path string) []string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("%s is not JSON: %v", path, err)
	}
	var exprs []string
	var walk func(v any, key string)
	walk = func(v any, key string) {
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				walk(c, k)
			}
		case []any:
			for _, c := range x {
				walk(c, key)
			}
		case string:
			if key == "expr" || (key == "query" && strings.HasPrefix(x, "label_values(")) {
				exprs = append(exprs, x)
			}
		}
	}
	walk(doc, "")
	sort.Strings(exprs)
	return exprs
}

func TestDashboardQueriesOnlyMetricsTheDaemonExports(t *testing.T) {
	exported := exportedMetrics(t)
	for _, must := range []string{"nomadscaler_scaling_actions_total", "optimizer_fallbacks_total", "nomadscaler_pool_headroom_units", "nomadscaler_history_samples_total", "process_resident_memory_bytes"} {
		if _, ok := exported[must]; !ok {
			t.Fatalf("the registry misses %s: the test no longer registers what the daemon does", must)
		}
	}
	exprs := dashboardExprs(t, "grafana/nomadscalerd.json")
	if len(exprs) < 20 {
		t.Fatalf("found %d queries in the dashboard, want at least 20", len(exprs))
	}
	used := map[string]bool{}
	for _, e := range exprs {
		names := metricNames(e)
		if len(names) == 0 {
			t.Errorf("query selects no metric: %s", e)
		}
		for _, n := range names {
			used[n] = true
		}
		if bad := unknownMetrics(names, exported); len(bad) > 0 {
			t.Errorf("query uses %v, which the daemon does not export: %s", bad, e)
		}
	}
	// Every metric of the daemon's own packages is on the dashboard.
	for name := range exported {
		if !strings.HasPrefix(name, "nomadscaler_") && !strings.HasPrefix(name, "optimizer_") {
			continue
		}
		if used[name] || used[name+"_bucket"] || used[name+"_sum"] {
			continue
		}
		t.Errorf("the dashboard shows nothing of %s", name)
	}
}

func TestUnknownMetricsAreReported(t *testing.T) {
	exported := map[string]string{"h_seconds": "HISTOGRAM", "c_total": "COUNTER"}
	got := unknownMetrics([]string{"h_seconds_bucket", "h_seconds_sum", "c_total", "c_total_bucket", "nope"}, exported)
	if strings.Join(got, ",") != "c_total_bucket,nope" {
		t.Errorf("unknownMetrics = %v, want [c_total_bucket nope]", got)
	}
}
