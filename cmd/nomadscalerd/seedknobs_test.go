package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/nomadscalerd/nomadscalerd/nomadtest"
)

func TestLogLevelsAreReadAsTheSeedWritesThemInAnyCase(t *testing.T) {
	for in, want := range map[string]slog.Level{
		"INFO": slog.LevelInfo, "WARNING": slog.LevelWarn, "warning": slog.LevelWarn, "warn": slog.LevelWarn,
		"Debug": slog.LevelDebug, "ERROR": slog.LevelError, "CRITICAL": slog.LevelError,
	} {
		got, err := parseLevel("--log-level", in)
		if err != nil || got != want {
			t.Errorf("parseLevel(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := parseLevel("--log-level", "verbose"); err == nil || !strings.Contains(err.Error(), `--log-level: "verbose" is not`) {
		t.Errorf("verbose: err = %v, want a clear refusal", err)
	}
}

// resolveLevels runs `run` with args and returns its settings and the two
// log levels as the command saw them.
func resolveLevels(t *testing.T, args ...string) (settings, string, string, error) {
	t.Helper()
	var got settings
	var level, apiLevel string
	app := newApp()
	for _, cmd := range app.Commands {
		if cmd.Name == "run" {
			cmd.Action = func(c *cli.Context) error {
				var err error
				got, err = resolveSettings(c)
				level, apiLevel = c.String("log-level"), c.String("api-log-level")
				return err
			}
		}
	}
	err := app.Run(append([]string{"nomadscalerd"}, args...))
	return got, level, apiLevel, err
}

func writeINI(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.ini")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestTheSeedsConfigIniSetsLevelsTestDataAndTokenBelowFlagsAndEnvironment(t *testing.T) {
	for _, k := range []string{"LOG_LEVEL", "NOMADSCALERD_TOKEN", "ONLY_TEST_DATA", "NOMADSCALERD_API_LOG_LEVEL", "NOMADSCALERD_CONFIG_INI"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	ini := writeINI(t, "; the seed's example\n[main]\nloglevel=debug\napi_loglevel=warning\nonly_test_data=true\ntoken=SUPER_SECRET_TOKEN\n")
	s, level, apiLevel, err := resolveLevels(t, "run", "--config-ini", ini)
	if err != nil {
		t.Fatal(err)
	}
	if level != "debug" || apiLevel != "warning" || !s.OnlyTestData || s.Token != "SUPER_SECRET_TOKEN" {
		t.Errorf("level %q api %q only_test_data %v token %q, want the file's", level, apiLevel, s.OnlyTestData, s.Token)
	}
	t.Setenv("LOG_LEVEL", "WARNING")
	s, level, _, err = resolveLevels(t, "run", "--config-ini", ini, "--token", "from-flag")
	if err != nil {
		t.Fatal(err)
	}
	if level != "WARNING" || s.Token != "from-flag" {
		t.Errorf("level %q token %q, want the environment's WARNING and the flag's token", level, s.Token)
	}
}

func TestAConfigIniWithAnythingUnexpectedIsRefusedNamingFileAndLine(t *testing.T) {
	for name, tc := range map[string]struct{ body, want string }{
		"unknown key":    {"[main]\nloglevel=info\ntokn=x\n", `:3: unknown key "tokn"`},
		"other section":  {"[server]\nport=1\n", ":1: section [server]: only [main] is read"},
		"no section":     {"token=x\n", ":1: key outside a section"},
		"not a boolean":  {"[main]\nonly_test_data=maybe\n", `:2: only_test_data: "maybe" is not a boolean`},
		"bad level":      {"[main]\napi_loglevel=loud\n", `:2: api_loglevel: "loud" is not`},
		"duplicated key": {"[main]\ntoken=a\ntoken=b\n", `:3: key "token" again (first on line 2)`},
		"not key=value":  {"[main]\njust words\n", ":2: want key=value"},
	} {
		t.Run(name, func(t *testing.T) {
			_, _, _, err := resolveLevels(t, "run", "--config-ini", writeINI(t, tc.body))
			if err == nil || !strings.Contains(err.Error(), "config.ini"+tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, "config.ini"+tc.want)
			}
		})
	}
}

func TestMetricsAreServedOnTheirOwnAddress(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the daemon")
	}
	httpPort, metricsPort := nomadtest.FreePort(t), nomadtest.FreePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runDaemon(ctx, settings{DB: filepath.Join(t.TempDir(), "d.db"), NomadAddr: fmt.Sprintf("http://127.0.0.1:%d", nomadtest.FreePort(t)),
			HTTPAddr: fmt.Sprintf("127.0.0.1:%d", httpPort), MetricsAddr: fmt.Sprintf("127.0.0.1:%d", metricsPort),
			CacheSize: 10, ForecastHorizon: 60, SampleInterval: time.Second, PoolInterval: 10 * time.Second}, slog.New(slog.DiscardHandler))
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("daemon: %v", err)
		}
	})
	var body string
	waitUntil(t, 20*time.Second, "GET /metrics on the metrics address", func() bool {
		res, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort))
		if err != nil {
			return false
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		body = string(b)
		return err == nil && res.StatusCode == http.StatusOK
	})
	if !strings.Contains(body, "nomadscaler_invalid_policies_total") || !strings.Contains(body, "go_goroutines") {
		t.Errorf("metrics port serves:\n%s\nwant the daemon's registry", body)
	}
}
