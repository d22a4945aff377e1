// Package nomad owns every call nomadscalerd makes to Nomad: a client wrapper
// whose methods satisfy the small interfaces the reconciler and the node-pool
// controller declare, the event-stream watcher that feeds them, the
// in-memory cluster state the watcher keeps current, and leader election
// and shard assignment through Nomad variable locks, with the heartbeat
// variables through which shard replicas see each other.
package nomad

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/hashicorp/go-cleanhttp"
	nomadapi "github.com/hashicorp/nomad/api"
)

// DefaultMaxConns caps the connections (and requests in flight) one
// process opens to Nomad: Nomad answers 429 past 100 per client address by
// default, and the event stream and lock holders keep theirs open.
const DefaultMaxConns = 32

// Client wraps the Nomad API client.
type Client struct {
	api         *nomadapi.Client
	addr, token string
	http        *http.Client
	limit       *limitTransport
}

// NewClient connects to addr with token with at most DefaultMaxConns
// connections; empty values fall back to Nomad's own environment variables
// (NOMAD_ADDR, NOMAD_TOKEN, NOMAD_CACERT, ...) through the api package's
// defaults.
func NewClient(addr, token string) (*Client, error) {
	return NewClientLimited(addr, token, DefaultMaxConns)
}

// NewClientLimited is NewClient with at most maxConns connections and
// requests in flight to Nomad (0: DefaultMaxConns).
func NewClientLimited(addr, token string, maxConns int) (*Client, error) {
	if maxConns <= 0 {
		maxConns = DefaultMaxConns
	}
	cfg := nomadapi.DefaultConfig()
	if addr != "" {
		cfg.Address = addr
	}
	if token != "" {
		cfg.SecretID = token
	}
	var hc *http.Client
	var lt *limitTransport
	if u, err := url.Parse(cfg.Address); err == nil && u.Scheme != "unix" {
		hc = cleanhttp.DefaultPooledClient()
		tr := hc.Transport.(*http.Transport)
		// As the api package sets its default transport up: http/1 for the
		// streaming endpoints.
		tr.ForceAttemptHTTP2 = false
		tr.TLSHandshakeTimeout = 10 * time.Second
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		tr.MaxConnsPerHost = maxConns
		tr.MaxIdleConnsPerHost = maxConns
		if err := nomadapi.ConfigureTLS(hc, cfg.TLSConfig); err != nil {
			return nil, fmt.Errorf("nomad client tls: %w", err)
		}
		lt = &limitTransport{base: tr, sem: make(chan struct{}, maxConns)}
		hc.Transport = lt
		cfg.HttpClient = hc
	}
	return newClient(cfg, addr, token, hc, lt)
}

func newClient(cfg *nomadapi.Config, addr, token string, hc *http.Client, lt *limitTransport) (*Client, error) {
	c, err := nomadapi.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("nomad client: %w", err)
	}
	return &Client{api: c, addr: addr, token: token, http: hc, limit: lt}, nil
}

// Clone returns a client of its own to the same Nomad: the api package's
// lock helpers write to the client they are given, so each elector needs
// one that nothing else shares. It shares the connection limit.
func (c *Client) Clone() (*Client, error) {
	if c.http == nil {
		return NewClient(c.addr, c.token)
	}
	cfg := nomadapi.DefaultConfig()
	if c.addr != "" {
		cfg.Address = c.addr
	}
	if c.token != "" {
		cfg.SecretID = c.token
	}
	cfg.HttpClient = c.http
	return newClient(cfg, c.addr, c.token, c.http, c.limit)
}

// InFlight is the number of requests to Nomad holding a connection now.
func (c *Client) InFlight() int {
	if c.limit == nil {
		return 0
	}
	return len(c.limit.sem)
}

// API exposes the underlying client for the few callers that need more.
func (c *Client) API() *nomadapi.Client { return c.api }

// Address is the Nomad HTTP address in use.
func (c *Client) Address() string { return c.api.Address() }

// Ping proves Nomad answers: it asks for the cluster leader.
func (c *Client) Ping(ctx context.Context) error {
	var leader string
	q := (&nomadapi.QueryOptions{}).WithContext(ctx)
	if _, err := c.api.Raw().Query("/v1/status/leader", &leader, q); err != nil {
		return fmt.Errorf("nomad status: %w", err)
	}
	if leader == "" {
		return fmt.Errorf("nomad has no leader")
	}
	return nil
}

// limitTransport holds one slot of sem from a request's start until its
// response body is closed, so requests in flight (streams included) never
// exceed the limit; callers over it wait, or give up with their context.
type limitTransport struct {
	base http.RoundTripper
	sem  chan struct{}
}

var _ http.RoundTripper = (*limitTransport)(nil)

func (t *limitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	select {
	case t.sem <- struct{}{}:
	case <-req.Context().Done():
		return nil, fmt.Errorf("wait for a nomad connection: %w", req.Context().Err())
	}
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		<-t.sem
		return nil, err
	}
	resp.Body = &releaseBody{ReadCloser: resp.Body, release: func() { <-t.sem }}
	return resp, nil
}

// releaseBody frees the slot once, on the first Close.
type releaseBody struct {
	io.ReadCloser
	release func()
	once    sync.Once
}

func (b *releaseBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.release)
	return err
}
