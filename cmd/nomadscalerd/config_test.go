package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// resolve runs the CLI with args against run's flags and returns the
// resolved settings.
func resolve(t *testing.T, env map[string]string, args ...string) (settings, error) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	var got settings
	app := newApp()
	for _, cmd := range app.Commands {
		if cmd.Name == "run" {
			cmd.Action = func(c *cli.Context) error {
				var err error
				got, err = resolveSettings(c)
				return err
			}
		}
	}
	err := app.Run(append([]string{"nomadscalerd"}, args...))
	return got, err
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "nomadscalerd.hcl")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPrecedenceIsFlagThenEnvironmentThenFileThenDefault(t *testing.T) {
	for _, k := range []string{"CACHE_SIZE", "FORECAST_HORIZON", "NOMADSCALERD_HTTP_ADDR", "NOMADSCALERD_DB", "NOMAD_ADDR"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	cfg := writeConfig(t, `
cache_size       = 20
forecast_horizon = 120
http_addr        = "127.0.0.1:9100"
db               = "/tmp/from-file.db"
dry_run          = true
`)
	s, err := resolve(t, map[string]string{"FORECAST_HORIZON": "300", "CACHE_SIZE": "30"},
		"run", "--config", cfg, "--cache-size", "40")
	if err != nil {
		t.Fatal(err)
	}
	if s.CacheSize != 40 {
		t.Errorf("cache-size = %d, want 40 from the flag", s.CacheSize)
	}
	if s.ForecastHorizon != 300 {
		t.Errorf("forecast-horizon = %d, want 300 from the environment", s.ForecastHorizon)
	}
	if s.HTTPAddr != "127.0.0.1:9100" || s.DB != "/tmp/from-file.db" || !s.DryRun {
		t.Errorf("file values not applied: %+v", s)
	}
	os.Unsetenv("FORECAST_HORIZON")
	os.Unsetenv("CACHE_SIZE")
	s, err = resolve(t, nil, "run")
	if err != nil {
		t.Fatal(err)
	}
	if s.CacheSize != 10 || s.ForecastHorizon != 60 || s.HTTPAddr != "127.0.0.1:8000" || s.DB != "./nomadscalerd.db" {
		t.Errorf("defaults = %+v", s)
	}
}

func TestConfigFileErrorsNameTheKeyAndTheLine(t *testing.T) {
	cases := []struct {
		name, body string
		want       []string
	}{
		{"unknown key", "cache_size = 5\ncache_sise = 7\n", []string{":2:", `"cache_sise"`, "unknown key"}},
		{"string for a number", "\n\nforecast_horizon = \"soon\"\n", []string{":3:", `"forecast_horizon"`, "whole number"}},
		{"fraction for a count", "cache_size = 2.5\n", []string{":1:", `"cache_size"`, "whole number"}},
		{"number for a bool", "dry_run = 1\n", []string{":1:", `"dry_run"`, "true or false"}},
		{"unknown block", "x = 1\nfrobnicate {}\n", []string{":2:", "frobnicate"}},
		{"syntax error", "cache_size = = 3\n", []string{":1:"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := resolve(t, nil, "run", "--config", writeConfig(t, tc.body))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestOutOfRangeCacheSizeIsRefused(t *testing.T) {
	if _, err := resolve(t, nil, "run", "--cache-size", "0"); err == nil || !strings.Contains(err.Error(), "cache-size") {
		t.Fatalf("err = %v", err)
	}
}

func TestPolicyDirComesFromTheFlagTheEnvironmentOrTheConfigFile(t *testing.T) {
	t.Setenv("NOMADSCALERD_POLICY_DIR", "")
	os.Unsetenv("NOMADSCALERD_POLICY_DIR")
	cfg := writeConfig(t, `policy_dir = "/etc/nomad-autoscaler/policies"`)
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"config key", nil, []string{"run", "--config", cfg}, "/etc/nomad-autoscaler/policies"},
		{"environment over the file", map[string]string{"NOMADSCALERD_POLICY_DIR": "/env"}, []string{"run", "--config", cfg}, "/env"},
		{"flag over both", map[string]string{"NOMADSCALERD_POLICY_DIR": "/env"}, []string{"run", "--config", cfg, "--policy-dir", "/flag"}, "/flag"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := resolve(t, tc.env, tc.args...)
			if err != nil || s.PolicyDir != tc.want {
				t.Fatalf("PolicyDir = %q, %v; want %q", s.PolicyDir, err, tc.want)
			}
		})
	}
}
