package deploy_test

import (
	"errors"
	"os"
	"os/exec"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/nomadscalerd/nomadscalerd/nodepool"
	"github.com/nomadscalerd/nomadscalerd/reconciler"
)

// readme is the README the docs tests check.
func readme(t *testing.T) (string, string) {
	t.Helper()
	const p = "../README.md"
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return p, string(b)
}

// tableRows maps every backticked word opening a code span in the first
// cell of a table row (`--db`; `node_pool`, `node_class`; `headroom { ... }`)
// to the row's cells. Escaped pipes (\|) stay inside their cell.
func tableRows(doc string) map[string][]string {
	rows := map[string][]string{}
	code := regexp.MustCompile("`([^`]+)`")
	for _, line := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		line = strings.ReplaceAll(line, `\|`, "\x00")
		parts := strings.Split(strings.TrimSpace(line), "|")
		cells := make([]string, 0, len(parts))
		for _, c := range parts[1 : len(parts)-1] {
			cells = append(cells, strings.ReplaceAll(strings.TrimSpace(c), "\x00", "|"))
		}
		for _, m := range code.FindAllStringSubmatch(cells[0], -1) {
			key := strings.Fields(m[1])[0]
			if _, dup := rows[key]; !dup {
				rows[key] = cells
			}
		}
	}
	return rows
}

// helpFlag is one option of a --help listing.
type helpFlag struct {
	name, env, def string
}

var (
	helpLine    = regexp.MustCompile(`^\s+--([a-z0-9-]+)`)
	helpEnv     = regexp.MustCompile(`\[\$([A-Z0-9_]+)\]`)
	helpDefault = regexp.MustCompile(`\(default: ("[^"]*"|[^)]*)\)`)
)

func parseHelp(out string) []helpFlag {
	var fs []helpFlag
	for _, line := range strings.Split(out, "\n") {
		m := helpLine.FindStringSubmatch(line)
		if m == nil || m[1] == "help" || m[1] == "version" {
			continue
		}
		f := helpFlag{name: m[1]}
		if e := helpEnv.FindStringSubmatch(line); e != nil {
			f.env = e[1]
		}
		if d := helpDefault.FindStringSubmatch(line); d != nil && !strings.Contains(d[1], " ") { // not usage prose
			f.def = strings.Trim(d[1], `"`)
		}
		fs = append(fs, f)
	}
	return fs
}

// firstCode is the first backticked word of a cell.
func firstCode(cell string) string {
	m := regexp.MustCompile("`([^`]*)`").FindStringSubmatch(cell)
	if m == nil {
		return ""
	}
	return m[1]
}

// sameValue compares a documented default with the real one: durations
// and numbers by value, anything else as text.
func sameValue(doc, real string) bool {
	if doc == real {
		return true
	}
	if a, err := time.ParseDuration(doc); err == nil {
		if b, err := time.ParseDuration(real); err == nil {
			return a == b
		}
	}
	a, err1 := strconv.ParseFloat(doc, 64)
	if num, den, ok := strings.Cut(doc, "/"); ok {
		// A fraction such as 1/3, whose decimal no table should spell out.
		n, errN := strconv.ParseFloat(num, 64)
		d, errD := strconv.ParseFloat(den, 64)
		a, err1 = n/d, errors.Join(errN, errD)
	}
	b, err2 := strconv.ParseFloat(real, 64)
	return err1 == nil && err2 == nil && a == b
}

func TestSameValueComparesDurationsAndNumbersByValue(t *testing.T) {
	cases := []struct {
		doc, real string
		want      bool
	}{
		{"24h", "24h0m0s", true},
		{"720h", "720h0m0s", true},
		{"1.0", "1", true},
		{"0.40", "0.4", true},
		{"1/3", "0.3333333333333333", true},
		{"1/3", "0.33", false},
		{"15s", "10s", false},
		{"text", "text", true},
		{"text", "json", false},
		{"", "10", false},
	}
	for _, c := range cases {
		if got := sameValue(c.doc, c.real); got != c.want {
			t.Errorf("sameValue(%q, %q) = %v, want %v", c.doc, c.real, got, c.want)
		}
	}
}

func TestReadmeDocumentsEveryFlagWithItsEnvironmentVariableKeyAndDefault(t *testing.T) {
	bin := nomadscalerdBinary(t)
	path, doc := readme(t)
	rows := tableRows(doc)
	var flags []helpFlag
	for _, args := range [][]string{{"--help"}, {"run", "--help"}} {
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		flags = append(flags, parseHelp(string(out))...)
	}
	if len(flags) < 15 {
		t.Fatalf("read %d flags from --help, want the global and run flags", len(flags))
	}
	seen := map[string]bool{}
	for _, f := range flags {
		seen["--"+f.name] = true
		row, ok := rows["--"+f.name]
		if !ok {
			t.Errorf("%s has no table row for --%s", path, f.name)
			continue
		}
		if len(row) < 5 {
			t.Errorf("row of --%s has %d cells, want flag | environment | config key | default | meaning", f.name, len(row))
			continue
		}
		if f.env != "" && firstCode(row[1]) != f.env {
			t.Errorf("--%s: environment %q documented, the CLI reads %s", f.name, firstCode(row[1]), f.env)
		}
		if key := strings.ReplaceAll(f.name, "-", "_"); f.name != "config" && firstCode(row[2]) != key {
			t.Errorf("--%s: config key %q documented, want %s", f.name, firstCode(row[2]), key)
		}
		if f.def != "" && !sameValue(firstCode(row[3]), f.def) {
			t.Errorf("--%s: default %q documented, the CLI's is %q", f.name, firstCode(row[3]), f.def)
		}
	}
	for key := range rows {
		if strings.HasPrefix(key, "--") && !seen[key] {
			t.Errorf("%s documents %s, which the CLI does not have", path, key)
		}
	}
}

// minimalPolicy is the smallest policy ParsePolicy accepts, for its defaults.
func minimalPolicy() *nomadapi.ScalingPolicy {
	mx := int64(3)
	return &nomadapi.ScalingPolicy{Max: &mx, Target: map[string]string{"Job": "j", "Group": "g"},
		Policy: map[string]any{
			"check":  []any{map[string]any{"requests": []any{map[string]any{"source": "prometheus", "query": "q"}}}},
			"target": []any{map[string]any{"nomadscaler": []any{map[string]any{}}}},
		}}
}

func TestReadmeDocumentsEveryPolicyKeyWithItsDefault(t *testing.T) {
	path, doc := readme(t)
	rows := tableRows(doc)
	p, err := reconciler.ParsePolicy(minimalPolicy(), reconciler.Defaults{CacheSize: 10, ForecastHorizon: 60})
	if err != nil {
		t.Fatal(err)
	}
	check := func(key string, v reflect.Value) {
		row, ok := rows[key]
		if !ok {
			t.Errorf("%s has no table row for policy key %s", path, key)
			return
		}
		def := firstCode(row[1])
		if strings.HasPrefix(def, "--") || def == "" || len(row) < 3 {
			return // the flag's default, or none
		}
		var real string
		switch x := v.Interface().(type) {
		case time.Duration:
			real = x.String()
		case float64:
			real = strconv.FormatFloat(x, 'g', -1, 64)
		case int:
			real = strconv.Itoa(x)
		case string:
			real = x
		default:
			return
		}
		if !sameValue(def, real) {
			t.Errorf("policy key %s: default %q documented, the parser's is %q", key, def, real)
		}
	}
	check("evaluation_interval", reflect.ValueOf(p.EvaluationInterval))
	check("cooldown", reflect.ValueOf(p.Cooldown))
	tv := reflect.ValueOf(p.Target)
	for i := 0; i < tv.NumField(); i++ {
		key, _, _ := strings.Cut(tv.Type().Field(i).Tag.Get("json"), ",")
		if !tv.Type().Field(i).IsExported() || key == "-" {
			continue // not a key: derived from the others
		}
		if key == "events" {
			key = "event" // a block: event "name" { ... }
		}
		check(key, tv.Field(i))
	}
	// The parser must refuse what the README does not know: an unknown key.
	bad := minimalPolicy()
	bad.Policy["target"] = []any{map[string]any{"nomadscaler": []any{map[string]any{"capacity_per_replicas": 5.0}}}}
	if _, err := reconciler.ParsePolicy(bad, reconciler.Defaults{}); err == nil {
		t.Error("ParsePolicy accepted an unknown target key")
	}
}

func TestReadmeDocumentsEveryPoolKey(t *testing.T) {
	path, doc := readme(t)
	rows := tableRows(doc)
	var walk func(prefix string, typ reflect.Type)
	walk = func(row string, typ reflect.Type) {
		for i := 0; i < typ.NumField(); i++ {
			name, kind, _ := strings.Cut(typ.Field(i).Tag.Get("hcl"), ",")
			if name == "" || kind == "label" || kind == "remain" {
				continue
			}
			if row != "" {
				// A block's attributes are listed in its row.
				if cells, ok := rows[row]; !ok || !strings.Contains(cells[0], name) {
					t.Errorf("%s: the row of %s does not list %s", path, row, name)
				}
				continue
			}
			if _, ok := rows[name]; !ok {
				t.Errorf("%s has no table row for pool key %s", path, name)
				continue
			}
			ft := typ.Field(i).Type
			for ft.Kind() == reflect.Pointer || ft.Kind() == reflect.Slice {
				ft = ft.Elem()
			}
			if kind == "block" && ft.Kind() == reflect.Struct {
				walk(name, ft)
			}
		}
	}
	walk("", reflect.TypeOf(nodepool.PoolConfig{}))
	// node_pool, node_class and datacenter share a row.
	if cells, ok := rows["node_pool"]; !ok || !strings.Contains(cells[0], "node_class") || !strings.Contains(cells[0], "datacenter") {
		t.Errorf("%s: node_pool's row does not list node_class and datacenter", path)
	}
}
