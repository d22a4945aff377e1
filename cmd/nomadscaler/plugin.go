package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	"github.com/hashicorp/nomad-autoscaler/plugins/base"
	nomadtarget "github.com/hashicorp/nomad-autoscaler/plugins/builtin/target/nomad/plugin"
	"github.com/hashicorp/nomad-autoscaler/plugins/target"
	"github.com/hashicorp/nomad-autoscaler/sdk"
	nomadhelper "github.com/hashicorp/nomad-autoscaler/sdk/helper/nomad"
	"github.com/hashicorp/nomad/api"
)

// PluginName is the target name policies use: target "nomadscaler".
const PluginName = "nomadscaler"

const (
	defaultCacheSize = 10
	defaultMaxAge    = 5 * time.Minute
	requestTimeout   = 5 * time.Second
)

var _ target.Target = (*Plugin)(nil)

// groupScaler is what the plugin needs of nomad-autoscaler's own Nomad
// target: the group's status, and scaling it.
type groupScaler interface {
	SetConfig(map[string]string) error
	Status(map[string]string) (*sdk.TargetStatus, error)
	Scale(sdk.ScalingAction, map[string]string) error
}

// boundsReader reads a scaling policy's min and max from Nomad.
type boundsReader interface {
	Bounds(policyID string) (lo, hi int, err error)
}

// Plugin is the seed's Nomadscaler target: on each scaling action it
// serves a count from a second-level cache of the optimizer's plan (POST
// /optimize at the policy's optimizer_url), within the policy's min and
// max, and scales the group through Nomad as nomad-autoscaler's own
// Nomad target does.
type Plugin struct {
	log    hclog.Logger
	nomad  groupScaler
	bounds boundsReader
	http   *http.Client
	now    func() time.Time

	mu     sync.Mutex
	token  string
	maxAge time.Duration
	caches map[string]*cache
}

// NewPlugin is the plugin before SetConfig.
func NewPlugin(log hclog.Logger) *Plugin {
	return &Plugin{log: log, nomad: nomadtarget.NewNomadPlugin(log), http: &http.Client{Timeout: requestTimeout},
		now: time.Now, maxAge: defaultMaxAge, caches: map[string]*cache{}}
}

// PluginInfo implements base.Base.
func (p *Plugin) PluginInfo() (*base.PluginInfo, error) {
	return &base.PluginInfo{Name: PluginName, PluginType: sdk.PluginTypeTarget}, nil
}

// SetConfig takes the agent's `target "nomadscaler" { config = {...} }`:
// Nomad's address and token as nomad-autoscaler passes them to every
// target, the optimizer's token (token) and how long a cache is served
// while the optimizer fails (cache_max_age, default 5m; "0" forever).
func (p *Plugin) SetConfig(config map[string]string) error {
	if err := p.nomad.SetConfig(config); err != nil {
		return err
	}
	client, err := api.NewClient(nomadhelper.ConfigFromNamespacedMap(config))
	if err != nil {
		return fmt.Errorf("nomad client: %w", err)
	}
	maxAge := defaultMaxAge
	if s := config["cache_max_age"]; s != "" {
		if maxAge, err = time.ParseDuration(s); err != nil || maxAge < 0 {
			return fmt.Errorf("cache_max_age %q: want a duration such as \"5m\"", s)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.bounds = nomadBounds{client: client}
	p.token, p.maxAge = config["token"], maxAge
	return nil
}

// groupConfig is the policy's target config with the group named the way
// the Nomad target reads it (Job, Group, Namespace): a job's policy has
// those from Nomad, the seed's policy file writes job, group, namespace.
func groupConfig(config map[string]string) map[string]string {
	out := make(map[string]string, len(config)+3)
	for k, v := range config {
		out[k] = v
	}
	for lower, upper := range map[string]string{"job": "Job", "group": "Group", "namespace": "Namespace"} {
		if out[upper] == "" && out[lower] != "" {
			out[upper] = out[lower]
		}
	}
	if out["Namespace"] == "" {
		out["Namespace"] = "default"
	}
	return out
}

// Status implements target.Target through the Nomad target.
func (p *Plugin) Status(config map[string]string) (*sdk.TargetStatus, error) {
	return p.nomad.Status(groupConfig(config))
}

// Scale implements target.Target: the count is the optimizer's, not the
// strategy's; the strategy's action only says that it is time to act.
func (p *Plugin) Scale(action sdk.ScalingAction, config map[string]string) error {
	cfg := groupConfig(config)
	key := cfg["Namespace"] + "/" + cfg["Job"] + "/" + cfg["Group"]
	url := strings.TrimRight(cfg["optimizer_url"], "/")
	if url == "" {
		return fmt.Errorf("policy of %s has no optimizer_url", key)
	}
	cacheSize := defaultCacheSize
	if s := cfg["cache_size"]; s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return fmt.Errorf("cache_size %q of %s: want a positive whole number", s, key)
		}
		cacheSize = n
	}
	policyID, _ := action.Meta["nomad_policy_id"].(string)
	p.mu.Lock()
	bounds, token, maxAge := p.bounds, p.token, p.maxAge
	p.mu.Unlock()
	if bounds == nil {
		return fmt.Errorf("plugin not configured")
	}
	lo, hi, err := bounds.Bounds(policyID)
	if err != nil {
		return fmt.Errorf("bounds of %s: %w", key, err)
	}
	st, err := p.nomad.Status(cfg)
	if err != nil {
		return fmt.Errorf("status of %s: %w", key, err)
	}
	if st == nil {
		return sdk.NewTargetScalingNoOpError("%s does not exist", key)
	}
	current := int(st.Count)

	p.mu.Lock()
	c := p.caches[key]
	p.mu.Unlock()
	if c.due() {
		desired, err := p.fetch(url, token, optimizeRequest{
			Token: token, Check: optimizeCheck{Name: PluginName, Source: "nomad-apm", Group: cfg["Group"], MetricAppName: key},
			CurrentReplicas: current, MinReplicas: lo, MaxReplicas: hi, CacheSize: cacheSize,
		})
		if err != nil {
			p.log.Warn("optimizer failed; serving the cache", "group", key, "error", err)
		} else {
			c = &cache{desired: desired, fetched: p.now()}
			p.mu.Lock()
			p.caches[key] = c
			p.mu.Unlock()
		}
	}
	p.mu.Lock()
	v, err := c.value(p.now(), maxAge)
	p.mu.Unlock()
	if err != nil {
		return sdk.NewTargetScalingNoOpError("holding %s at %d: %v", key, current, err)
	}
	v = min(max(v, lo), hi)
	if v == current {
		return sdk.NewTargetScalingNoOpError("%s is at the optimizer's %d", key, v)
	}
	action.Count = int64(v)
	action.Direction = sdk.ScaleDirectionUp
	if v < current {
		action.Direction = sdk.ScaleDirectionDown
	}
	action.Reason = fmt.Sprintf("nomadscaler: %d -> %d from the optimizer's cached plan", current, v)
	return p.nomad.Scale(action, cfg)
}

// optimizeRequest is the seed's POST /optimize body.
type optimizeRequest struct {
	Token           string        `json:"token,omitempty"`
	Check           optimizeCheck `json:"check"`
	CurrentReplicas int           `json:"current_replicas"`
	MinReplicas     int           `json:"min_replicas"`
	MaxReplicas     int           `json:"max_replicas"`
	CacheSize       int           `json:"cache_size"`
}

type optimizeCheck struct {
	Name          string `json:"name"`
	Source        string `json:"source"`
	Group         string `json:"group"`
	MetricAppName string `json:"metric_app_name"`
}

// fetch asks the optimizer for the counts of the next cache_size seconds.
func (p *Plugin) fetch(url, token string, req optimizeRequest) ([]int, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/optimize", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	hr.Header.Set("Content-Type", "application/json")
	if token != "" {
		hr.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := p.http.Do(hr)
	if err != nil {
		return nil, fmt.Errorf("POST %s/optimize: %w", url, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("read answer: %w", err)
	}
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("POST %s/optimize: %s: %s", url, res.Status, strings.TrimSpace(string(b)))
	}
	var out struct {
		Desired []int `json:"desired"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("answer of %s/optimize: %w", url, err)
	}
	if len(out.Desired) == 0 {
		return nil, fmt.Errorf("answer of %s/optimize has no desired counts", url)
	}
	return out.Desired, nil
}

// nomadBounds reads min and max from the scaling policy in Nomad.
type nomadBounds struct{ client *api.Client }

func (n nomadBounds) Bounds(policyID string) (int, int, error) {
	if policyID == "" {
		return 0, 0, fmt.Errorf("the action names no policy (nomad_policy_id)")
	}
	pol, _, err := n.client.Scaling().GetPolicy(policyID, nil)
	if err != nil {
		return 0, 0, fmt.Errorf("scaling policy %s: %w", policyID, err)
	}
	lo := 0
	if pol.Min != nil {
		lo = int(*pol.Min)
	}
	if pol.Max == nil {
		return 0, 0, fmt.Errorf("scaling policy %s has no max", policyID)
	}
	return lo, int(*pol.Max), nil
}
