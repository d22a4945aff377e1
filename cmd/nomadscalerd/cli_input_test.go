package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/nomadscalerd/nomadscalerd/nodepool"
)

// Bad numbers on the backtest's command line must be refused with a clear
// error, not replayed into a report of nonsense figures.
func TestBacktestRefusesNonFiniteOrNegativeNumbers(t *testing.T) {
	trace := writeTrace(t, t.TempDir(), 300)
	for _, args := range [][]string{
		{"--capacity-per-replica", "NaN"},
		{"--capacity-per-replica", "+Inf"},
		{"--scale", "-1"},
		{"--scale", "NaN"},
		{"--tv-target", "NaN"},
		{"--by-level", "-1"},
		{"--by-level", "NaN"},
	} {
		out, err := runBacktestCLI(t, append([]string{"--trace", trace, "--strategies", "hpa,target-value"}, args...)...)
		if err == nil {
			t.Errorf("backtest %v: no error, printed a report:\n%s", args, out)
		}
	}
}

// `model plot --future` must read the future file's exogenous columns by
// name, as `model fit` does: the same rows with the columns in another
// order are the same future.
func TestModelPlotReadsFutureColumnsByName(t *testing.T) {
	dir := t.TempDir()
	var h strings.Builder
	h.WriteString("y,a,b\n")
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 200; i++ {
		a, b := 1+9*rng.Float64(), 1+9*rng.Float64()
		fmt.Fprintf(&h, "%f,%f,%f\n", 100*a+rng.NormFloat64(), a, b)
	}
	hist := filepath.Join(dir, "h.csv")
	ab := filepath.Join(dir, "ab.csv")
	ba := filepath.Join(dir, "ba.csv")
	for path, body := range map[string]string{
		hist: h.String(),
		ab:   "a,b\n" + strings.Repeat("10,1\n", 60),
		ba:   "b,a\n" + strings.Repeat("1,10\n", 60),
	} {
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	plot := func(future string) string {
		var out bytes.Buffer
		app := &cli.App{Writer: &out, ErrWriter: io.Discard, Commands: []*cli.Command{modelCommand()}}
		png := filepath.Join(dir, "p.png")
		if err := app.Run([]string{"nomadscalerd", "model", "plot", "--input", hist, "--future", future, "--orders", "0,0,0", "--max", "1000", "--out", png}); err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	if got, want := plot(ba), plot(ab); got != want {
		t.Errorf("future columns b,a:\n%s\nthe same future as a,b:\n%s", got, want)
	}
}

// An environment variable that is exported but empty (NOMAD_ADDR= in a
// unit file or a job's env block) sets nothing: urfave/cli counts it as
// set for a string flag, which dropped the file's key without a word and
// talked to the default address.
func TestAnEmptyEnvironmentVariableDoesNotHideTheFilesKey(t *testing.T) {
	cfg := writeConfig(t, `nomad_addr = "http://nomad.example:4646"`+"\n"+`cache_size = 20`+"\n")
	s, err := resolve(t, map[string]string{"NOMAD_ADDR": "", "CACHE_SIZE": ""}, "run", "--config", cfg)
	if err != nil {
		t.Fatal(err)
	}
	if s.CacheSize != 20 {
		t.Errorf("cache_size %d, want the file's 20 under an empty CACHE_SIZE", s.CacheSize)
	}
	if s.NomadAddr != "http://nomad.example:4646" {
		t.Errorf("nomad_addr %q, want the file's under an empty NOMAD_ADDR", s.NomadAddr)
	}
}

// `optimize` reads --log-level as every other command does: the documented
// "warning" is warnings (slog's own names alone read it as info), and a
// typo is refused.
func TestOptimizeTakesTheDocumentedLogLevels(t *testing.T) {
	var infoOn bool
	app := &cli.App{Flags: globalFlags(), Commands: []*cli.Command{{
		Name: "probe",
		Action: func(c *cli.Context) error {
			l, err := optimizeLogger(c)
			if err != nil {
				return err
			}
			infoOn = l.Enabled(c.Context, slog.LevelInfo)
			return nil
		},
	}}}
	if err := app.Run([]string{"nomadscalerd", "--log-level", "warning", "probe"}); err != nil {
		t.Fatal(err)
	}
	if infoOn {
		t.Error("--log-level warning: optimize logs at info")
	}
}

func TestAConfigFileWithTwoUnknownKeysIsReportedTheSameWayEveryTime(t *testing.T) {
	cfg := writeConfig(t, "zeta_key = 1\nalpha_key = 2\nmid_key = 3\n")
	seen := map[string]bool{}
	for range 50 {
		_, err := resolve(t, nil, "run", "--config", cfg)
		if err == nil {
			t.Fatal("unknown keys accepted")
		}
		seen[err.Error()] = true
	}
	if len(seen) != 1 {
		t.Fatalf("the same file was reported %d different ways: %v", len(seen), seen)
	}
	for e := range seen {
		if !strings.Contains(e, `"zeta_key"`) {
			t.Errorf("reported %q, want the first unknown key in the file, zeta_key", e)
		}
	}
}

func TestDBCheckOfAFileThatIsNoDatabaseSaysWhatIsWrongAndNotToRunItself(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.db")
	if err := os.WriteFile(path, bytes.Repeat([]byte{7}, 5000), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := runApp(t, "--db", path, "db", "check")
	if err == nil || !strings.Contains(out, "PROBLEM") || !strings.Contains(out, "5000 bytes") {
		t.Fatalf("db check of a damaged file: err %v, output %q; want a PROBLEM line saying what is wrong and a failure", err, out)
	}
	if strings.Contains(out+err.Error(), "db check` for details") {
		t.Errorf("db check told the operator to run db check: %q, %v", out, err)
	}
}

func TestDBMigrateOfAPathWithNoDatabaseCreatesNone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "typo.db")
	if _, err := runApp(t, "--db", path, "db", "migrate"); err == nil || !strings.Contains(err.Error(), "no database to migrate") {
		t.Fatalf("db migrate of a missing file: %v, want an error saying there is no database", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("db migrate created %s (stat: %v)", path, err)
	}
}

func TestNodePoolsOnShardedReplicasWithoutHAAreRefusedBeforeAnythingStarts(t *testing.T) {
	db := filepath.Join(t.TempDir(), "n.db")
	s := settings{DB: db, Shards: 2, Pools: []nodepool.Pool{{Name: "web"}}}
	err := runDaemon(context.Background(), s, slog.New(slog.DiscardHandler))
	if !errors.Is(err, ErrPoolsNeedOneLeader) {
		t.Fatalf("err = %v, want ErrPoolsNeedOneLeader", err)
	}
	if _, err := os.Stat(db); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the refused daemon created its database (stat: %v)", err)
	}
}
