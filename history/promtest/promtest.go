// Package promtest starts a real Prometheus server for integration tests,
// scraping given targets every second, with its own storage directory and
// loopback port. The binary is $NOMADSCALERD_PROMETHEUS_BIN, else
// /usr/bin/prometheus (Debian's 2.42), else prometheus on $PATH.
package promtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/nomadscalerd/nomadscalerd/nomadtest"
)

// Binary finds the Prometheus binary.
func Binary() (string, error) {
	if p := os.Getenv("NOMADSCALERD_PROMETHEUS_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("prometheus binary %s: %w", p, err)
		}
		return p, nil
	}
	if _, err := os.Stat("/usr/bin/prometheus"); err == nil {
		return "/usr/bin/prometheus", nil
	}
	p, err := exec.LookPath("prometheus")
	if err != nil {
		return "", fmt.Errorf("prometheus binary not found (apt-get install prometheus or set NOMADSCALERD_PROMETHEUS_BIN): %w", err)
	}
	return p, nil
}

// Require returns the binary or ends the test: under -short it skips; a
// missing binary fails, because integration tests must run in CI.
func Require(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs a Prometheus server")
	}
	p, err := Binary()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Config is the scrape configuration StartPrometheus writes: one job,
// "test", scraping targets (host:port, path /metrics) every second.
func Config(targets []string) string {
	var b strings.Builder
	b.WriteString("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n")
	b.WriteString("scrape_configs:\n  - job_name: test\n    static_configs:\n      - targets: [")
	for i, tg := range targets {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q", tg)
	}
	b.WriteString("]\n")
	return b.String()
}

// ScrapeRegistry serves reg's metrics over HTTP until the test ends and
// starts Prometheus scraping them (see StartPrometheus); it returns
// Prometheus' base URL.
func ScrapeRegistry(t testing.TB, reg *prometheus.Registry) string {
	t.Helper()
	exporter := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(exporter.Close)
	return StartPrometheus(t, []string{strings.TrimPrefix(exporter.URL, "http://")})
}

// StartPrometheus starts Prometheus scraping scrapeTargets (host:port) every
// second, waits until it is ready and returns its base URL
// (http://127.0.0.1:port). It stops when the test ends; its log is printed
// if the test failed.
func StartPrometheus(t testing.TB, scrapeTargets []string) string {
	t.Helper()
	bin := Require(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte(Config(scrapeTargets)), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", nomadtest.FreePort(t))
	log := &nomadtest.LockedBuffer{}
	cmd := exec.Command(bin,
		"--config.file="+cfg,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--log.level=warn",
	)
	cmd.Stdout, cmd.Stderr = log, log
	// Own process group, killed with the test binary: a crashed test must
	// not leave a server holding its port.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start prometheus: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- prometheus log ---\n%s", log.String())
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	})
	base := "http://" + addr
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-done:
			t.Fatalf("prometheus exited during startup:\n%s", log.String())
		default:
		}
		resp, err := http.Get(base + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus not ready after 60 s (last error %v):\n%s", err, log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// WaitQuery polls the instant query at base until its result is non-empty
// and returns the raw JSON result, or fails the test after timeout. Use it
// to wait for enough scrapes that a rate() has data.
func WaitQuery(t testing.TB, base, query string, timeout time.Duration) json.RawMessage {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for {
		resp, err := http.Get(base + "/api/v1/query?query=" + url.QueryEscape(query))
		if err == nil {
			var body struct {
				Status string `json:"status"`
				Data   struct {
					ResultType string          `json:"resultType"`
					Result     json.RawMessage `json:"result"`
				} `json:"data"`
			}
			err = json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			if err == nil {
				r := strings.TrimSpace(string(body.Data.Result))
				if body.Status == "success" && r != "" && r != "[]" && r != "null" {
					return body.Data.Result
				}
				last = body.Status + " " + r
			}
		}
		if err != nil {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			t.Fatalf("query %q returned no data within %s (last: %s)", query, timeout, last)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
