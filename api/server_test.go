package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

type leader bool

func (l leader) IsLeader() bool { return bool(l) }

func newTestServer(t *testing.T, token string, deps Deps) *httptest.Server {
	t.Helper()
	s, err := New(Config{Addr: "127.0.0.1:0", Token: token, Version: "test"}, deps)
	if err != nil {
		t.Fatal(err)
	}
	s.Handle("POST /echo", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			Error(w, http.StatusRequestEntityTooLarge, err.Error())
			return
		}
		_, _ = w.Write(b)
	}))
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return ts
}

func TestHealthIsOKWhenDatabaseAndNomadAnswer(t *testing.T) {
	ok := PingFunc(func(context.Context) error { return nil })
	ts := newTestServer(t, "", Deps{DB: ok, Nomad: ok, Roles: leader(false)})
	res, err := http.Get(ts.URL + "/health")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var rep healthReport
	_ = json.NewDecoder(res.Body).Decode(&rep)
	if res.StatusCode != 200 || rep.Database != "ok" || rep.Nomad != "reachable" || rep.Role != "follower" || rep.Version != "test" {
		t.Fatalf("health = %d %+v", res.StatusCode, rep)
	}
}

func TestHealthIs503WhenNomadIsUnreachable(t *testing.T) {
	ok := PingFunc(func(context.Context) error { return nil })
	down := PingFunc(func(context.Context) error { return errors.New("connection refused") })
	ts := newTestServer(t, "", Deps{DB: ok, Nomad: down})
	res, err := http.Get(ts.URL + "/health")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", res.StatusCode)
	}
}

func TestHealthIs503WhenTheDatabaseFails(t *testing.T) {
	down := PingFunc(func(context.Context) error { return errors.New("closed") })
	ts := newTestServer(t, "", Deps{DB: down})
	res, _ := http.Get(ts.URL + "/health")
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", res.StatusCode)
	}
}

func TestProtectedEndpointsAnswer401WithoutTheTokenAndNothingRuns(t *testing.T) {
	ts := newTestServer(t, "s3cret", Deps{})
	for _, auth := range []string{"", "Bearer wrong", "Basic s3cret"} {
		req, _ := http.NewRequest("POST", ts.URL+"/echo", strings.NewReader("hi"))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 401 || strings.Contains(string(b), "hi") {
			t.Fatalf("auth %q: %d %s", auth, res.StatusCode, b)
		}
	}
	req, _ := http.NewRequest("POST", ts.URL+"/echo", strings.NewReader("hi"))
	req.Header.Set("Authorization", "Bearer s3cret")
	res, _ := http.DefaultClient.Do(req)
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || string(b) != "hi" {
		t.Fatalf("with token: %d %s", res.StatusCode, b)
	}
}

func TestBodiesOverOneMebibyteAreRejected(t *testing.T) {
	ts := newTestServer(t, "", Deps{})
	res, err := http.Post(ts.URL+"/echo", "text/plain", strings.NewReader(strings.Repeat("x", MaxBodyBytes+1)))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413", res.StatusCode)
	}
}

func TestMetricsServesTheRegistryInPrometheusTextFormat(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "nomadscaler_test_total", Help: "x"})
	reg.MustRegister(c)
	c.Add(3)
	ts := newTestServer(t, "tok", Deps{Registry: reg})
	res, err := http.Get(ts.URL + "/metrics") // open, no token
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(b), "nomadscaler_test_total 3") {
		t.Fatalf("metrics: %d %s", res.StatusCode, b)
	}
}

func TestStartupRefusesANonLoopbackAddressWithoutAToken(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:8000", ":8000", "10.1.2.3:8000"} {
		if _, err := New(Config{Addr: addr}, Deps{}); !errors.Is(err, ErrTokenRequired) {
			t.Errorf("%s: err = %v, want ErrTokenRequired", addr, err)
		}
	}
	for _, addr := range []string{"127.0.0.1:8000", "localhost:8000", "[::1]:8000"} {
		if _, err := New(Config{Addr: addr}, Deps{}); err != nil {
			t.Errorf("%s: %v", addr, err)
		}
	}
	if _, err := New(Config{Addr: "0.0.0.0:8000", Token: "t"}, Deps{}); err != nil {
		t.Errorf("with token: %v", err)
	}
}

func TestTheMetricsServerServesOnlyMetricsOnItsOwnListener(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "seed_metric_total", Help: "x"})
	reg.MustRegister(c)
	c.Add(3)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- NewMetricsServer(ln.Addr().String(), reg, nil).ServeListener(ctx, ln) }()
	base := "http://" + ln.Addr().String()
	get := func(path string) (int, string) {
		res, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		return res.StatusCode, string(b)
	}
	if code, body := get("/metrics"); code != http.StatusOK || !strings.Contains(body, "seed_metric_total 3") {
		t.Errorf("/metrics = %d %q, want the registry", code, body)
	}
	if code, _ := get("/health"); code != http.StatusNotFound {
		t.Errorf("/health on the metrics port = %d, want 404: only metrics are served there", code)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
}

func TestRequestsAreLoggedAtDebugLevelOnly(t *testing.T) {
	for _, tc := range []struct {
		level slog.Level
		want  bool
	}{{slog.LevelDebug, true}, {slog.LevelWarn, false}} {
		var buf bytes.Buffer
		log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: tc.level}))
		ts := newTestServer(t, "", Deps{Logger: log})
		res, err := http.Get(ts.URL + "/nope")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		got := strings.Contains(buf.String(), `msg="http request" method=GET path=/nope status=404`)
		if got != tc.want {
			t.Errorf("level %s: request logged = %v, want %v (log %q)", tc.level, got, tc.want, buf.String())
		}
	}
}

func TestTheBearerSchemeIsReadWhateverItsCase(t *testing.T) {
	for _, tc := range []struct {
		header, want string
	}{
		{"Bearer s3cret", "s3cret"},
		{"bearer s3cret", "s3cret"},
		{"BEARER  s3cret ", "s3cret"},
		{"Basic s3cret", ""},
		{"Bearers3cret", ""},
		{"", ""},
	} {
		req, err := http.NewRequest("GET", "http://x/", nil)
		if err != nil {
			t.Fatal(err)
		}
		if tc.header != "" {
			req.Header.Set("Authorization", tc.header)
		}
		if got := BearerToken(req); got != tc.want {
			t.Errorf("Authorization %q: token %q, want %q", tc.header, got, tc.want)
		}
	}
}
