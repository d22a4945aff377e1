package main

import (
	"bytes"
	"encoding/json"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

func runApp(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	app := newApp()
	app.Writer = &out
	app.ErrWriter = &out
	// A cli.Exit error is returned, not turned into os.Exit, which would
	// end the test binary.
	app.ExitErrHandler = func(*cli.Context, error) {}
	err := app.Run(append([]string{"nomadscalerd"}, args...))
	return out.String(), err
}

func keys(m map[string]any) []string {
	var k []string
	for key := range m {
		k = append(k, key)
	}
	sort.Strings(k)
	return k
}

func TestModelFitJSONHasTheReferenceSchemaAndBestOrder(t *testing.T) {
	const dir = "../../model/testdata/golden/"
	out, err := runApp(t, "model", "fit", "--input", dir+"arima211_n200.csv", "--future", dir+"arima211_n200_future.csv", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var got, want map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	b, err := os.ReadFile(dir + "arima211_n200.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(keys(got), keys(want)) {
		t.Errorf("keys %v, reference %v", keys(got), keys(want))
	}
	gc := got["candidates"].([]any)[0].(map[string]any)
	wc := want["candidates"].([]any)[0].(map[string]any)
	if !slices.Equal(keys(gc), keys(wc)) {
		t.Errorf("candidate keys %v, reference %v", keys(gc), keys(wc))
	}
	if !slices.Equal(keys(got["forecast"].(map[string]any)), keys(want["forecast"].(map[string]any))) {
		t.Errorf("forecast keys differ")
	}
	gb, _ := json.Marshal(got["best_order"])
	wb, _ := json.Marshal(want["best_order"])
	if string(gb) != string(wb) {
		t.Errorf("best order %s, reference %s", gb, wb)
	}
	if n := len(got["forecast"].(map[string]any)["mean"].([]any)); n != 20 {
		t.Errorf("horizon %d, want the 20 future rows", n)
	}
}

func TestModelFitReportsBadCSVWithFileAndLine(t *testing.T) {
	dir := t.TempDir()
	cases := []struct{ name, body, want string }{
		{"ragged.csv", "y,a\n1,2\n3\n", "ragged.csv:3:"},
		{"noy.csv", "a,b\n1,2\n", "noy.csv:1: no column named y"},
		{"text.csv", "y\n1\nabc\n", `text.csv:3: column y: "abc"`},
		{"short.csv", "y\n1\n2\n3\n", "short.csv:4: only 3 data rows"},
	}
	for _, c := range cases {
		p := dir + "/" + c.name
		if err := os.WriteFile(p, []byte(c.body), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := runApp(t, "model", "fit", "--input", p)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: got %v, want one line containing %q", c.name, err, c.want)
		}
	}
}

func TestModelFitPrintsATableWithoutJSON(t *testing.T) {
	const dir = "../../model/testdata/golden/"
	out, err := runApp(t, "model", "fit", "--input", dir+"ar1_noexog_n100.csv", "--horizon", "3", "--orders", "1,0,0;1,0,1")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"observations: 100", "1,0,0", "1,0,1", "forecast with", "lower95"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if strings.Count(out, "\n") < 8 {
		t.Errorf("table too short:\n%s", out)
	}
}
