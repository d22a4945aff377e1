// Package api owns nomadscalerd's HTTP surface: health, Prometheus metrics,
// the seed-compatible optimizer endpoint and the status endpoint. It holds
// no logic of its own beyond authentication, validation and encoding; the
// work is done by the dependencies it is constructed with.
package api

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// MaxBodyBytes bounds every request body.
const MaxBodyBytes = 1 << 20

// Pinger reports whether a dependency is usable.
type Pinger interface {
	Ping(ctx context.Context) error
}

// PingFunc adapts a function to Pinger.
type PingFunc func(ctx context.Context) error

// Ping calls f.
func (f PingFunc) Ping(ctx context.Context) error { return f(ctx) }

// Roles reports whether this replica leads.
type Roles interface {
	IsLeader() bool
}

// Config is what the server needs besides its dependencies.
type Config struct {
	Addr    string
	Token   string
	Version string
}

// Deps are the server's dependencies.
type Deps struct {
	DB       Pinger
	Nomad    Pinger
	Roles    Roles
	Registry *prometheus.Registry
	Logger   *slog.Logger
}

// Server is the HTTP API.
type Server struct {
	cfg  Config
	deps Deps
	mux  *http.ServeMux
	srv  *http.Server
}

// ErrTokenRequired is returned for a non-loopback address without a token.
var ErrTokenRequired = errors.New("refusing to serve on a non-loopback address without --token")

// New builds the server. It refuses a non-loopback listen address without a
// token: the API can change what runs in the cluster.
func New(cfg Config, deps Deps) (*Server, error) {
	if cfg.Token == "" && !isLoopback(cfg.Addr) {
		return nil, fmt.Errorf("%w: %s", ErrTokenRequired, cfg.Addr)
	}
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	if deps.Registry == nil {
		deps.Registry = prometheus.NewRegistry()
	}
	s := &Server{cfg: cfg, deps: deps, mux: http.NewServeMux()}
	s.mux.HandleFunc("GET /health", s.health)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(deps.Registry, promhttp.HandlerOpts{Registry: deps.Registry}))
	s.mux.HandleFunc("GET /{$}", s.describe)
	s.srv = &http.Server{
		Addr:              cfg.Addr,
		Handler:           logRequests(http.MaxBytesHandler(s.mux, MaxBodyBytes), deps.Logger),
		ReadTimeout:       10 * time.Second,
		ReadHeaderTimeout: 5 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
	}
	return s, nil
}

// Handler is the server's whole handler, for tests.
func (s *Server) Handler() http.Handler { return s.srv.Handler }

// Handle registers h behind the bearer token.
func (s *Server) Handle(pattern string, h http.Handler) {
	s.mux.Handle(pattern, s.RequireToken(h))
}

// HandleOpen registers h without the bearer check; h must authenticate
// itself (the seed's /optimize carries its token in the body).
func (s *Server) HandleOpen(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// TokenOK compares a presented token with the configured one in constant
// time. With no configured token (loopback only) everything passes.
func (s *Server) TokenOK(presented string) bool {
	if s.cfg.Token == "" {
		return true
	}
	return subtle.ConstantTimeCompare([]byte(presented), []byte(s.cfg.Token)) == 1
}

// BearerToken extracts the token of an Authorization: Bearer header. The
// scheme's name is case-insensitive (RFC 9110, section 11.1): clients that
// send "bearer" are not refused.
func BearerToken(r *http.Request) string {
	scheme, t, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(t)
}

// RequireToken answers 401 before h runs unless the request carries the token.
func (s *Server) RequireToken(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.TokenOK(BearerToken(r)) {
			Error(w, http.StatusUnauthorized, "missing or wrong bearer token")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Serve listens on the configured address until ctx ends, then shuts down
// gracefully.
func (s *Server) Serve(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", s.cfg.Addr, err)
	}
	return s.ServeListener(ctx, ln)
}

// ServeListener serves on ln until ctx ends.
func (s *Server) ServeListener(ctx context.Context, ln net.Listener) error {
	s.deps.Logger.Info("http api listening", "addr", ln.Addr().String())
	return serveUntil(ctx, s.srv, ln)
}

// serveUntil serves srv on ln until ctx ends, then shuts it down
// gracefully, giving requests in flight 5 seconds.
func serveUntil(ctx context.Context, srv *http.Server, ln net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	}
}

// statusRecorder remembers the status code a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}

// logRequests logs every request at debug level: the seed's api_loglevel
// (the daemon's --api-log-level) decides whether they show.
func logRequests(h http.Handler, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		h.ServeHTTP(rec, r)
		log.Debug("http request", "method", r.Method, "path", r.URL.Path, "status", rec.code, "took", time.Since(start))
	})
}

// MetricsServer serves only GET /metrics, on a port of its own (the seed's
// optimizer exposed its metrics on 9090). Metrics are read-only, so it
// needs no token.
type MetricsServer struct {
	srv *http.Server
	log *slog.Logger
}

// NewMetricsServer serves reg's metrics at addr.
func NewMetricsServer(addr string, reg *prometheus.Registry, log *slog.Logger) *MetricsServer {
	if log == nil {
		log = slog.Default()
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	return &MetricsServer{log: log, srv: &http.Server{Addr: addr, Handler: logRequests(mux, log),
		ReadTimeout: 10 * time.Second, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 60 * time.Second}}
}

// Serve listens until ctx ends, then shuts down gracefully.
func (m *MetricsServer) Serve(ctx context.Context) error {
	ln, err := net.Listen("tcp", m.srv.Addr)
	if err != nil {
		return fmt.Errorf("metrics listen %s: %w", m.srv.Addr, err)
	}
	return m.ServeListener(ctx, ln)
}

// ServeListener serves on ln until ctx ends.
func (m *MetricsServer) ServeListener(ctx context.Context, ln net.Listener) error {
	m.log.Info("metrics listening", "addr", ln.Addr().String())
	return serveUntil(ctx, m.srv, ln)
}

type healthReport struct {
	Status   string `json:"status"`
	Database string `json:"database"`
	Nomad    string `json:"nomad"`
	Role     string `json:"role"`
	Version  string `json:"version"`
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	rep := healthReport{Status: "ok", Database: "ok", Nomad: "reachable", Role: "leader", Version: s.cfg.Version}
	code := http.StatusOK
	if s.deps.DB != nil {
		if err := s.deps.DB.Ping(ctx); err != nil {
			rep.Database, rep.Status, code = "error: "+err.Error(), "unavailable", http.StatusServiceUnavailable
		}
	}
	if s.deps.Nomad != nil {
		if err := s.deps.Nomad.Ping(ctx); err != nil {
			rep.Nomad, rep.Status, code = "unreachable: "+err.Error(), "unavailable", http.StatusServiceUnavailable
		}
	}
	if s.deps.Roles != nil && !s.deps.Roles.IsLeader() {
		rep.Role = "follower"
	}
	JSON(w, code, rep)
}

func (s *Server) describe(w http.ResponseWriter, r *http.Request) {
	JSON(w, http.StatusOK, map[string]any{
		"service":   "nomadscalerd",
		"version":   s.cfg.Version,
		"about":     "predictive autoscaler for HashiCorp Nomad",
		"endpoints": []string{"GET /health", "GET /metrics", "POST /optimize", "GET /v1/status", "GET /v1/db/snapshot"},
	})
}

// JSON writes v with the status code.
func JSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// Error writes {"error": reason} with the status code; reason is one line.
func Error(w http.ResponseWriter, code int, reason string) {
	JSON(w, code, map[string]string{"error": strings.ReplaceAll(reason, "\n", " ")})
}

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
