// Package nomad owns every call nomadscalerd makes to Nomad: a client wrapper
// whose methods satisfy the small interfaces the reconciler and the node-pool
// controller declare, and the event-stream watcher that feeds them.
package nomad

import (
	"context"
	"fmt"

	nomadapi "github.com/hashicorp/nomad/api"
)

// Client wraps the Nomad API client.
type Client struct {
	api         *nomadapi.Client
	addr, token string
}

// NewClient connects to addr with token; empty values fall back to Nomad's
// own environment variables (NOMAD_ADDR, NOMAD_TOKEN, NOMAD_CACERT, ...)
// through the api package's defaults.
func NewClient(addr, token string) (*Client, error) {
	cfg := nomadapi.DefaultConfig()
	if addr != "" {
		cfg.Address = addr
	}
	if token != "" {
		cfg.SecretID = token
	}
	c, err := nomadapi.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("nomad client: %w", err)
	}
	return &Client{api: c, addr: addr, token: token}, nil
}

// Clone returns a client of its own to the same Nomad: the api package's
// lock helpers write to the client they are given, so each elector needs
// one that nothing else shares.
func (c *Client) Clone() (*Client, error) { return NewClient(c.addr, c.token) }

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
