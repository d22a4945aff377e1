package reconciler

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/cronexpr"
	nomadapi "github.com/hashicorp/nomad/api"
	"gonum.org/v1/gonum/stat/distuv"

	"github.com/nomadscalerd/nomadscalerd/history"
	"github.com/nomadscalerd/nomadscalerd/model"
	"github.com/nomadscalerd/nomadscalerd/optimize"
	"github.com/nomadscalerd/nomadscalerd/predict"
)

// TargetName is the scaling-policy target that marks a group as ours.
const TargetName = "nomadscaler"

// Policy is a parsed, validated scaling policy of one task group.
type Policy struct {
	ID        string `json:"id"`
	Key       string `json:"key"` // namespace/job/group
	Namespace string `json:"namespace"`
	Job       string `json:"job"`
	Group     string `json:"group"`
	Min       int    `json:"min"`
	Max       int    `json:"max"`
	Enabled   bool   `json:"enabled"`

	EvaluationInterval time.Duration `json:"evaluation_interval"`
	// Cooldown holds scale-downs after an action. Unless the policy writes
	// it (CooldownSet), the hold is as long as a replica taken away takes
	// to serve again, at most Cooldown: see ScaleDownCooldown.
	Cooldown    time.Duration `json:"cooldown"`
	CooldownSet bool          `json:"-"`

	Checks []Check `json:"checks"`
	Target Target  `json:"target"`
}

// Check names one metric of the policy and where to read it.
type Check struct {
	Name   string `json:"name"`
	Source string `json:"source"` // "nomad-apm" or "prometheus"
	Query  string `json:"query"`
	// TargetValue is T of `strategy "target-value" { target = T }`: the
	// check is a per-replica metric whose group total (value x current
	// count) is the demand, planned at T per replica. 0 is no strategy.
	TargetValue float64 `json:"target_value,omitempty"`
	// Threshold is target-value's dead band, kept to be shown: a plan has
	// no dead band (see the README).
	Threshold float64 `json:"threshold,omitempty"`
	// Strategy names the check's strategy block, if any.
	Strategy string `json:"strategy,omitempty"`
}

// TargetValueStrategy is the one nomad-autoscaler strategy nomadscalerd
// plans with.
const TargetValueStrategy = "target-value"

// Target is the `target "nomadscaler"` block: how to forecast and plan.
type Target struct {
	CacheSize          int     `json:"cache_size"`
	ForecastHorizon    int     `json:"forecast_horizon"`
	CapacityPerReplica float64 `json:"capacity_per_replica"`
	ReplicaCost        float64 `json:"replica_cost"`
	CPUPrice           float64 `json:"cpu_price"`    // per MHz-second of the group's allocated CPU
	MemoryPrice        float64 `json:"memory_price"` // per MiB-second of the group's allocated memory
	Penalty            float64 `json:"penalty"`
	StartupCost        float64 `json:"startup_cost"`
	ShutdownCost       float64 `json:"shutdown_cost"`
	ExtraPenalty       float64 `json:"extra_penalty"`
	MaxScaleUp         int     `json:"max_scale_up"`
	MaxScaleDown       int     `json:"max_scale_down"`
	// StartupDelay is how long a new replica takes to serve. Unless the
	// policy sets it (StartupDelaySet), it is measured from the group's own
	// scale-ups, starting from this value.
	StartupDelay    time.Duration `json:"startup_delay"`
	StartupDelaySet bool          `json:"-"`
	// ReplanInterval is the longest a plan is served before a new one is
	// made; demand leaving the forecast band re-plans sooner.
	ReplanInterval time.Duration `json:"replan_interval"`
	// FloorWindow and FloorMargin are the reactive floor: never fewer
	// replicas than FloorMargin times the mean demand of the last
	// FloorWindow needs at CapacityPerReplica (0 turns it off).
	FloorWindow time.Duration `json:"floor_window"`
	FloorMargin float64       `json:"floor_margin"`
	// FloorTrend lets the floor follow a rising trend a startup delay
	// ahead (see predict.Settings.FloorTrend).
	FloorTrend bool `json:"floor_trend"`
	// ScaleDownWindow holds a scale-down at the highest count decided
	// within it, so re-plans that jitter by a replica do not flap (0 off).
	ScaleDownWindow time.Duration `json:"scale_down_window"`
	// FlapWindow: no scale-down that the plan undoes within it (see
	// predict.Settings.FlapWindow; 0 off).
	FlapWindow time.Duration `json:"flap_window"`
	// ScaleDownHysteresis is how far below a count's capacity, in
	// replicas, the plan's demand must fall before it is scaled down to.
	ScaleDownHysteresis float64 `json:"scale_down_hysteresis"`
	// SelfTune replays the policy's own recorded history every
	// TuneInterval (TuneWindow of it) with candidate forecast margins
	// within [TuneMarginMin, TuneMarginMax] and model steps, and adopts
	// the cheapest for the settings the policy does not set itself.
	SelfTune      bool          `json:"self_tune"`
	TuneInterval  time.Duration `json:"tune_interval"`
	TuneWindow    time.Duration `json:"tune_window"`
	TuneMarginMin float64       `json:"tune_margin_min"`
	TuneMarginMax float64       `json:"tune_margin_max"`
	// OptimizerURL is the seed plugin's optimizer address: a policy that
	// has it is the plugin's to scale (see PluginOwned).
	OptimizerURL string `json:"optimizer_url,omitempty"`
	// TargetValue is the target of the check that is the demand when that
	// check has a target-value strategy (0 otherwise); the capacity per
	// replica is then this target. Not a key of its own: the check shows it.
	TargetValue float64 `json:"-"`
	// set holds the keys the policy wrote itself.
	set           map[string]bool
	DryRun        bool          `json:"dry_run"`
	Orders        string        `json:"orders"`
	RequestsCheck string        `json:"requests_check"`
	HistoryWindow time.Duration `json:"history_window"`
	RefitInterval time.Duration `json:"refit_interval"`
	StaleAfter    time.Duration `json:"stale_after"`
	// ModelStep is the resolution the model fits: seconds are averaged
	// into steps of this length (a SARIMAX over an hour of seconds is slow
	// and noisy); the plan is still per second.
	ModelStep time.Duration `json:"model_step"`
	// ForecastMargin is how many forecast standard deviations are added
	// to the mean before planning (0: plan for the mean).
	ForecastMargin float64 `json:"forecast_margin"`
	// NoiseMargin is how many standard deviations of single seconds around
	// the model step's mean are planned for (see model.ForecastConfig).
	NoiseMargin float64 `json:"noise_margin"`
	// NoiseCap bounds, in replicas, what NoiseMargin adds above the
	// quantile of single seconds the cost model asks for (see
	// noiseQuantile); 0 turns the bound off.
	NoiseCap float64 `json:"noise_cap"`
	// NoiseCapShare keeps the capped headroom at least this share of the
	// forecast demand (noise_cap_share); 0 keeps noise_cap alone.
	NoiseCapShare float64 `json:"noise_cap_share"`
	// BurstQuantile, when positive, plans for that quantile of how far the
	// last hour's bursts rose above their preceding minute instead of
	// forecast_margin standard deviations (see model.ForecastConfig and
	// burstQuantile); 0 turns it off.
	BurstQuantile float64 `json:"burst_quantile"`
	// SqrtTransform models the square root of the step means, which
	// steadies count-like traffic whose noise grows with its level.
	SqrtTransform bool `json:"sqrt_transform"`
	// Seasonality lists cycle lengths (e.g. 24h, 168h, or 3m for a test)
	// entered as FourierTerms sine/cosine pairs each: known future
	// regressors, so a daily peak is forecast before it starts.
	Seasonality  []time.Duration `json:"seasonality,omitempty"`
	FourierTerms int             `json:"fourier_terms"`
	Events       []Event         `json:"events,omitempty"`
	// Demand coefficients of the seed's formula, used when the policy has
	// the avg_response_time check: demand = requests*avg_response_time*
	// DemandResponseTime + queue_waiting*DemandQueue +
	// authentication_awaiting_users*DemandAuthWaiting.
	DemandResponseTime float64 `json:"demand_response_time"`
	DemandQueue        float64 `json:"demand_queue"`
	DemandAuthWaiting  float64 `json:"demand_auth_waiting"`
}

// Event is a known recurring event: the model sees an indicator that is 1
// while it runs, so the forecast anticipates it.
type Event struct {
	Name     string        `json:"name"`
	Cron     string        `json:"cron"`
	Duration time.Duration `json:"duration"`
	expr     *cronexpr.Expression
}

// Active reports whether an occurrence of the event covers t.
func (e Event) Active(t time.Time) bool {
	expr := e.expr
	if expr == nil {
		var err error
		if expr, err = cronexpr.Parse(e.Cron); err != nil {
			return false
		}
	}
	// The latest start at or before t is within one duration before t.
	start := expr.Next(t.Add(-e.Duration).Add(-time.Second))
	return !start.IsZero() && !start.After(t)
}

// Defaults are the daemon-wide values a policy may leave out, and what
// the daemon can sample.
type Defaults struct {
	CacheSize       int
	ForecastHorizon int
	DryRun          bool
	// WithoutPrometheus says the daemon has no Prometheus address: a
	// policy with a prometheus check could never be sampled, so it is
	// invalid.
	WithoutPrometheus bool
}

// DefaultEvaluationInterval is the longest a worker waits between two
// reconciles of a policy; DefaultCooldown holds scale-downs after an action.
const (
	DefaultEvaluationInterval = 10 * time.Second
	DefaultCooldown           = 30 * time.Second
)

// ScaleDownCooldown is how long scale-downs wait after an action, given
// comeBack, how long a replica taken away now would take to serve again
// (predict.Decision.HoldDown: the startup delay plus a deployment's
// disruption; 0 when not known). A cooldown the policy writes is kept as
// written. Otherwise the hold is comeBack, at most Cooldown: a scale-down
// that proves wrong leaves demand short for about comeBack, so holding
// longer only keeps replicas nobody needs. With replicas that serve 3 s
// after they are asked for, the 30 s default kept a burst's replicas half
// a minute after it ended (the simulated live comparison: 1,691 of its
// 6,813 replica-seconds above demand); with replicas that take 25 s or
// more the hold is the 30 s it was.
func (p Policy) ScaleDownCooldown(comeBack time.Duration) time.Duration {
	if p.CooldownSet || comeBack <= 0 {
		return p.Cooldown
	}
	return min(p.Cooldown, comeBack)
}

// DefaultPolicy is a policy with one check, "requests", that sets only its
// bounds: every other setting is the daemon's default. The backtest runs it
// when it is given no policy.
func DefaultPolicy(minReplicas, maxReplicas int) Policy {
	t, err := parseTarget(map[string]any{}, Defaults{})
	if err != nil {
		// The defaults are valid (a test says so); nothing a caller does
		// can change that.
		panic(fmt.Sprintf("default target: %v", err))
	}
	t.RequestsCheck = "requests"
	return Policy{Key: PolicyKey("default", "backtest", "backtest"), Namespace: "default", Job: "backtest", Group: "backtest",
		Min: minReplicas, Max: maxReplicas, Enabled: true, EvaluationInterval: DefaultEvaluationInterval, Cooldown: DefaultCooldown,
		Checks: []Check{{Name: "requests", Source: "prometheus", Query: "requests"}}, Target: t}
}

// ErrNotOurs marks a policy without a nomadscaler target: it belongs to
// another autoscaler and is ignored, not reported.
var ErrNotOurs = errors.New("policy has no nomadscaler target")

// PolicyKey is how a group is named across nomadscalerd.
func PolicyKey(namespace, job, group string) string {
	if namespace == "" {
		namespace = "default"
	}
	return namespace + "/" + job + "/" + group
}

// ParsePolicy validates a Nomad scaling policy. It returns ErrNotOurs when
// the policy targets something else, and otherwise a one-line reason for
// anything malformed.
func ParsePolicy(sp *nomadapi.ScalingPolicy, d Defaults) (Policy, error) {
	p := Policy{
		ID: sp.ID, Namespace: sp.Target["Namespace"], Job: sp.Target["Job"], Group: sp.Target["Group"],
		Enabled: sp.Enabled == nil || *sp.Enabled, EvaluationInterval: DefaultEvaluationInterval, Cooldown: DefaultCooldown,
	}
	p.Key = PolicyKey(p.Namespace, p.Job, p.Group)
	otherType := sp.Type != "" && sp.Type != "horizontal"
	targets, err := namedBlocks(sp.Policy, "target")
	if err != nil {
		if otherType {
			return p, ErrNotOurs // another autoscaler's kind of policy
		}
		return p, err
	}
	var tbody map[string]any
	for _, t := range targets {
		if t.name == TargetName {
			tbody = t.body
		}
	}
	if tbody == nil {
		return p, ErrNotOurs
	}
	if otherType {
		// Ours, but of a kind nomadscalerd does not scale: skipped
		// silently, the operator would wait for scaling that never comes.
		return p, fmt.Errorf("type %q: the nomadscaler target scales task groups (type \"horizontal\"); node pools are scaled from the daemon's pool blocks", sp.Type)
	}
	if sp.Min != nil {
		p.Min = int(*sp.Min)
	}
	if sp.Max == nil {
		return p, errors.New("scaling block has no max")
	}
	p.Max = int(*sp.Max)
	if p.Min < 0 || p.Max < p.Min {
		return p, fmt.Errorf("min %d and max %d are not a valid range", p.Min, p.Max)
	}
	for _, k := range sortedKeys(sp.Policy) {
		v := sp.Policy[k]
		switch k {
		case "target", "check":
		case "evaluation_interval":
			if p.EvaluationInterval, err = durationValue(k, v); err != nil {
				return p, err
			}
		case "cooldown":
			if p.Cooldown, err = durationValue(k, v); err != nil {
				return p, err
			}
			p.CooldownSet = true
			if p.Cooldown == 0 {
				// nomad-autoscaler replaces a cooldown of 0 by its default
				// (policy/policy.go:37-39): 0 means unwritten, not "no
				// hold", so it takes nomadscalerd's unwritten default.
				p.Cooldown, p.CooldownSet = DefaultCooldown, false
			}
		case "cooldown_on_scale_up":
			// nomad-autoscaler's hold after a scale-up: accepted (and
			// checked as it checks it), ignored, since nomadscalerd never
			// holds a scale-up back.
			if _, err := durationValue(k, v); err != nil {
				return p, err
			}
		case "on_check_error":
		default:
			return p, fmt.Errorf("policy: unknown key %q", k)
		}
	}
	switch {
	case p.EvaluationInterval == 0:
		// nomad-autoscaler replaces 0 by its default_evaluation_interval,
		// 10s (policy/policy.go:45, agent/config/config.go:377).
		p.EvaluationInterval = DefaultEvaluationInterval
	case p.EvaluationInterval < 0:
		// nomad-autoscaler's handler would panic on it (time.NewTicker,
		// policy/handler.go:75); here it is refused.
		return p, fmt.Errorf("evaluation_interval %s is negative", p.EvaluationInterval)
	}
	if p.Cooldown < 0 {
		return p, errors.New("cooldown must not be negative")
	}
	checks, err := namedBlocks(sp.Policy, "check")
	if err != nil {
		return p, err
	}
	if len(checks) == 0 {
		return p, errors.New("policy has no check block")
	}
	seen := make(map[string]bool, len(checks))
	for _, c := range checks {
		// A check's name names its history series: two checks of one
		// name would write one series.
		if seen[c.name] {
			return p, fmt.Errorf("check %q is declared twice", c.name)
		}
		seen[c.name] = true
		ch := Check{Name: c.name}
		for _, k := range sortedKeys(c.body) {
			v := c.body[k]
			s, ok := v.(string)
			switch {
			case k == "source" && ok:
				ch.Source = s
			case k == "query" && ok:
				ch.Query = s
			case k == "source" || k == "query":
				return p, fmt.Errorf("check %q: %s must be a string", c.name, k)
			case k == "strategy":
				if err := parseStrategy(c.body, &ch); err != nil {
					return p, fmt.Errorf("check %q: %w", c.name, err)
				}
			case k == "query_window" || k == "query_window_offset" || k == "on_error" || k == "group":
				// nomad-autoscaler keys; meaningless to a planner, tolerated.
			default:
				return p, fmt.Errorf("check %q: unknown key %q", c.name, k)
			}
		}
		if ch.Source == "" {
			// nomad-autoscaler reads a check without a source from its
			// Nomad APM (policy.Processor.CanonicalizeCheck).
			ch.Source = "nomad-apm"
		}
		switch ch.Source {
		case "nomad-apm":
			if ch.Query != "" {
				if err := history.ValidateAPMQuery(ch.Query); err != nil {
					return p, fmt.Errorf("check %q: %w", c.name, err)
				}
			}
		case "prometheus":
			if d.WithoutPrometheus {
				return p, fmt.Errorf("check %q: source prometheus needs the daemon's --prometheus-addr, which is not set", c.name)
			}
		default:
			return p, fmt.Errorf("check %q: unknown source %q (want nomad-apm or prometheus)", c.name, ch.Source)
		}
		if ch.Query == "" {
			return p, fmt.Errorf("check %q: query is required", c.name)
		}
		p.Checks = append(p.Checks, ch)
	}
	sort.Slice(p.Checks, func(i, j int) bool { return p.Checks[i].Name < p.Checks[j].Name })
	tbody, ident, err := splitTargetIdentity(tbody)
	if err != nil {
		return p, fmt.Errorf("target %q: %w", TargetName, err)
	}
	if err := ident.matches(p); err != nil {
		return p, fmt.Errorf("target %q: %w", TargetName, err)
	}
	if ident.enabled != nil {
		p.Enabled = *ident.enabled
	}
	p.Target, err = parseTarget(tbody, d)
	if err != nil {
		return p, fmt.Errorf("target %q: %w", TargetName, err)
	}
	p.Target.OptimizerURL = ident.optimizerURL
	for _, c := range p.Checks {
		if c.Strategy != "" && c.Strategy != TargetValueStrategy && !p.PluginOwned() {
			return p, fmt.Errorf("check %q: strategy %q is not supported: nomadscalerd plans with %q or with no strategy (a policy with optimizer_url may use any: nomad-autoscaler evaluates it)", c.Name, c.Strategy, TargetValueStrategy)
		}
	}
	if err := p.applyTargetValue(); err != nil {
		return p, err
	}
	if p.Target.RequestsCheck == "" {
		p.Target.RequestsCheck = "requests"
		if !p.hasCheck("requests") {
			p.Target.RequestsCheck = p.Checks[0].Name
		}
	}
	if !p.hasCheck(p.Target.RequestsCheck) {
		return p, fmt.Errorf("target %q: requests_check %q names no check", TargetName, p.Target.RequestsCheck)
	}
	return p, nil
}

// targetIdentity is what the seed's target block says about the group it
// scales, read before the planning keys.
type targetIdentity struct {
	namespace, job, group string
	optimizerURL          string
	enabled               *bool
}

// splitTargetIdentity takes namespace, job, group (or, as nomad-autoscaler's
// Nomad target writes them, Namespace, Job, Group: sdk/target.go:59-67),
// optimizer_url and enabled out of a target body, returning the rest.
func splitTargetIdentity(body map[string]any) (map[string]any, targetIdentity, error) {
	var id targetIdentity
	rest := make(map[string]any, len(body))
	for _, k := range sortedKeys(body) {
		v := body[k]
		var dst *string
		switch k {
		case "namespace", "Namespace":
			dst = &id.namespace
		case "job", "Job":
			dst = &id.job
		case "group", "Group":
			dst = &id.group
		case "optimizer_url":
			dst = &id.optimizerURL
		case "enabled":
			b, ok := v.(bool)
			if !ok {
				return nil, id, fmt.Errorf("enabled must be true or false, got %v", v)
			}
			id.enabled = &b
			continue
		default:
			rest[k] = v
			continue
		}
		str, ok := v.(string)
		if !ok || str == "" {
			return nil, id, fmt.Errorf("%s must be a non-empty string, got %v", k, v)
		}
		if *dst != "" && *dst != str {
			// Both spellings, naming two groups: the seed's plugin would
			// scale the one the capitalised key names; which was meant
			// cannot be told.
			return nil, id, fmt.Errorf("%s %q and %s %q name different groups; keep one", upperFirst(k), *dst, k, str)
		}
		*dst = str
	}
	return rest, id, nil
}

// targetName is what a target body says for key (namespace, job or group):
// the Nomad target's spelling (Namespace, Job, Group), which the seed's
// plugin reads first, else the seed's own.
func targetName(body map[string]any, key string) string {
	if s, ok := body[upperFirst(key)].(string); ok && s != "" {
		return s
	}
	s, _ := body[key].(string)
	return s
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// matches checks the target's namespace, job and group against the group
// the policy belongs to: a policy copied from another group would
// otherwise scale this one while naming that one.
func (id targetIdentity) matches(p Policy) error {
	ns := p.Namespace
	if ns == "" {
		ns = "default"
	}
	for _, f := range []struct{ key, said, is string }{{"namespace", id.namespace, ns}, {"job", id.job, p.Job}, {"group", id.group, p.Group}} {
		if f.said != "" && f.said != f.is {
			return fmt.Errorf("%s %q does not match the group the policy belongs to (%s)", f.key, f.said, p.Key)
		}
	}
	return nil
}

// parseStrategy reads a check's strategy blocks into ch. Only target-value
// has a meaning for a planner; any other is refused (by ParsePolicy)
// rather than ignored, unless nomad-autoscaler evaluates the policy.
func parseStrategy(body map[string]any, ch *Check) error {
	blocks, err := namedBlocks(body, "strategy")
	if err != nil {
		return err
	}
	if len(blocks) != 1 {
		return fmt.Errorf("want one strategy block, got %d", len(blocks))
	}
	b := blocks[0]
	ch.Strategy = b.name
	if b.name != TargetValueStrategy {
		// Only a policy the nomadscaler plugin owns may have it (checked
		// once the target is read): nomad-autoscaler evaluates it there.
		return nil
	}
	for _, k := range sortedKeys(b.body) {
		switch k {
		case "target", "threshold":
		case "max_scale_up", "max_scale_down":
			return fmt.Errorf("strategy %q: %s limits the step of one evaluation, which a plan does not take; set max_scale_up and max_scale_down in the target block, per second", b.name, k)
		default:
			// target-value reads no other key (its plugin.go:25-28), so
			// nomad-autoscaler runs a policy that has one: so do we.
			continue
		}
		v := b.body[k]
		f, ok := v.(float64)
		if str, isStr := v.(string); isStr {
			// nomad-autoscaler keeps a strategy's config as strings and
			// its target-value plugin parses them (its own policy files
			// write target = "80"): a quoted number is that number.
			var err error
			f, err = strconv.ParseFloat(strings.TrimSpace(str), 64)
			ok = err == nil
		}
		switch {
		case !ok:
			return fmt.Errorf("strategy %q: %s must be a number, got %v", b.name, k, v)
		case k == "target":
			ch.TargetValue = f
		default:
			ch.Threshold = f
		}
	}
	if _, ok := b.body["target"]; !ok {
		return fmt.Errorf("strategy %q: target is required", b.name)
	}
	if !(ch.TargetValue > 0) || math.IsInf(ch.TargetValue, 0) { // a quoted "NaN" too
		return fmt.Errorf("strategy %q: target must be a positive number, got %v", b.name, ch.TargetValue)
	}
	if !(ch.Threshold >= 0 && ch.Threshold < 1) {
		return fmt.Errorf("strategy %q: threshold must be within [0, 1), got %v", b.name, ch.Threshold)
	}
	return nil
}

// applyTargetValue makes the check with a target-value strategy the
// policy's demand: its group total is what is forecast (requests_check),
// and its target is the capacity of one replica.
func (p *Policy) applyTargetValue() error {
	var tv []string
	for _, c := range p.Checks {
		if c.TargetValue > 0 {
			tv = append(tv, c.Name)
		}
	}
	switch {
	case len(tv) == 0:
		return nil
	case len(tv) > 1:
		return fmt.Errorf("checks %s all have a target-value strategy; nomadscalerd plans one demand, so keep one", strings.Join(tv, ", "))
	}
	name := tv[0]
	t := &p.Target
	if t.RequestsCheck != "" && t.RequestsCheck != name {
		return fmt.Errorf("target %q: requests_check %q and check %q's target-value strategy both name the demand; keep one", TargetName, t.RequestsCheck, name)
	}
	if t.set["capacity_per_replica"] {
		return fmt.Errorf("target %q: capacity_per_replica and check %q's target-value strategy both set the capacity of a replica; keep one", TargetName, name)
	}
	for i := range p.Checks {
		if p.Checks[i].Name == name {
			t.TargetValue = p.Checks[i].TargetValue
		}
	}
	t.RequestsCheck = name
	t.CapacityPerReplica = t.TargetValue
	return nil
}

// PluginOwned reports whether the seed's Nomadscaler target plugin scales
// the group: the policy names the optimizer the plugin asks
// (optimizer_url). Then nomadscalerd records the group's history and
// answers the plugin's POST /optimize, and never scales the group itself:
// one owner per group.
func (p Policy) PluginOwned() bool { return p.Target.OptimizerURL != "" }

// DeciderSettings are the policy's serving settings for its decider.
func (p Policy) DeciderSettings() predict.Settings {
	s := predict.DefaultSettings()
	s.Capacity, s.Min, s.Max = p.Target.CapacityPerReplica, p.Min, p.Max
	s.ReplanInterval, s.FloorWindow, s.FloorMargin = p.Target.ReplanInterval, p.Target.FloorWindow, p.Target.FloorMargin
	s.FloorTrend = p.Target.FloorTrend
	s.DownWindow = p.Target.ScaleDownWindow
	s.FlapWindow = p.Target.FlapWindow
	s.DownHysteresis = p.Target.ScaleDownHysteresis
	s.CacheSize = p.Target.CacheSize
	// Before its first plan a policy keeps the headroom for single
	// seconds' scatter that its plans will keep.
	fc := p.ForecastConfig()
	s.Noise = predict.Noise{Margin: fc.NoiseMargin, Quantile: fc.NoiseQuantile, Cap: fc.NoiseCap, CapShare: fc.NoiseCapShare}
	if s.Noise.Margin == 0 {
		s.Noise.Margin = fc.Margin
	}
	return s
}

// DelayEstimator tells the decider the startup delay: the policy's
// startup_delay when it sets one, else measured from its scale-ups.
func (p Policy) DelayEstimator() *predict.DelayEstimator {
	return predict.NewDelayEstimator(p.Target.StartupDelay, p.Target.StartupDelaySet)
}

// Warnings are the policy's settings that parse but do nothing as set, in
// the order of the policy's fields: the policy runs, and the operator is
// told (logged when it becomes active or changes, shown by status). A
// season longer than history_window is the one that matters: the model
// never sees a whole cycle, so neither its Fourier terms nor its last
// cycle ever enter a fit, and the policy plans as if it had none.
func (p Policy) Warnings() []string {
	t := p.Target
	var out []string
	step := max(t.ModelStep, time.Second)
	for _, d := range t.Seasonality {
		// The history the forecaster needs before the last cycle enters
		// (model.SeasonSteps).
		steps := model.SeasonSteps(d, int(step/time.Second)) + model.MinSteps
		lag := time.Duration(steps) * step
		switch {
		case t.HistoryWindow < d:
			out = append(out, fmt.Sprintf("seasonality %s is never fitted: history_window %s holds less than one cycle (set history_window to at least %s)", d, t.HistoryWindow, lag))
		case steps > model.MaxFitSteps:
			out = append(out, fmt.Sprintf("seasonality %s enters as Fourier terms only: its last cycle would need more than the %d model steps a fit reads (a longer model_step)", d, model.MaxFitSteps))
		case t.HistoryWindow < lag:
			out = append(out, fmt.Sprintf("seasonality %s enters as Fourier terms only: its last cycle needs history_window of at least %s (the cycle plus %d model steps), not %s", d, lag, model.MinSteps, t.HistoryWindow))
		}
	}
	if w := p.ForecastWindow(); w < t.HistoryWindow {
		out = append(out, fmt.Sprintf("history_window %s: a model without seasonality or events is fitted on the latest %s, and a plan reads no more", t.HistoryWindow, w))
	}
	return out
}

// ForecastWindow is the history a plan reads: history_window, or for a
// model without seasons or events (no regressors), only the latest
// model.LocalFitWindow it is fitted on.
func (p Policy) ForecastWindow() time.Duration {
	t := p.Target
	if len(t.Seasonality) > 0 || len(t.Events) > 0 {
		return t.HistoryWindow
	}
	step := max(t.ModelStep.Truncate(time.Second), time.Second)
	return min(t.HistoryWindow, time.Duration(model.LocalFitSteps(int(step/time.Second)))*step)
}

// ForecastConfig is the policy's model settings (orders were validated
// when the policy was parsed).
func (p Policy) ForecastConfig() model.ForecastConfig {
	t := p.Target
	orders, err := model.ParseOrders(t.Orders)
	if err != nil {
		orders = model.DefaultOrders()
	}
	cfg := model.ForecastConfig{
		Step:          max(int(t.ModelStep.Seconds()), 1),
		Orders:        orders,
		RefitEvery:    t.RefitInterval,
		Margin:        t.ForecastMargin,
		NoiseMargin:   t.NoiseMargin,
		Sqrt:          t.SqrtTransform,
		Seasons:       t.Seasonality,
		BurstQuantile: t.burstQuantile(),
	}
	if z, ok := t.noiseQuantile(); ok && t.NoiseCap > 0 && !p.seedDemand() {
		cfg.NoiseCap, cfg.NoiseQuantile, cfg.NoiseCapShare = t.NoiseCap*t.CapacityPerReplica, z, t.NoiseCapShare
	}
	return cfg
}

// burstQuantile is the burst headroom's quantile the forecast plans with:
// burst_quantile, unless the policy wrote forecast_margin or seasonality
// without burst_quantile. A written margin asks for the Gaussian headroom
// it names, which the burst headroom would replace. A declared season is
// change the forecast plans for, which a burst measured against the
// last minute counts again: on the demo's 10-minute day its ramps alone
// make the burst headroom 15 requests/s, and ten replays of the demo
// (scripts/bench-demo-phases.sh) ran 1.31x target-value's
// replica-seconds with it against 1.18x with the Gaussian margin.
func (t Target) burstQuantile() float64 {
	if (t.Wrote("forecast_margin") || len(t.Seasonality) > 0) && !t.Wrote("burst_quantile") {
		return 0
	}
	return t.BurstQuantile
}

// seedDemand reports whether the plan's demand is the seed's formula of the
// requests forecast (the policy has an avg_response_time check; see
// SeedDemand), whose units the cap in replicas' capacity is not in.
func (p Policy) seedDemand() bool {
	for _, c := range p.Checks {
		if c.Name == model.ExogAvgResponseTime {
			return true
		}
	}
	return false
}

// noiseQuantile is how many standard deviations of single seconds the
// cost model itself would cover: one more replica-second costs
// replica_cost and serves up to capacity_per_replica requests that cost
// penalty each when unmet, so capacity pays for itself while demand
// exceeds it in more than replica_cost / (penalty * capacity_per_replica)
// of the seconds (the newsvendor quantile: 1.28 at the defaults, one
// second in ten). noise_margin (3) covers more than that on purpose: on
// steady, noisy traffic a reactive rule's fixed headroom leaves fewer
// requests unmet than the cost model's quantile, and a few replicas of
// insurance are cheap. On traffic whose seconds scatter by many replicas
// they are not, and noise_cap bounds them (see model.ForecastConfig).
// It is unknown (false) when replicas are priced by the group's resources,
// which only the planner reads, and for a target-value policy without a
// penalty, which covers everything it can.
func (t Target) noiseQuantile() (float64, bool) {
	cost := t.ReplicaCost
	if cost == 0 {
		if t.CPUPrice > 0 || t.MemoryPrice > 0 {
			return 0, false
		}
		cost = optimize.DefaultReplicaCost
	}
	if t.TargetValue > 0 && !t.set["penalty"] {
		return 0, false
	}
	if t.Penalty <= 0 {
		return 0, true
	}
	short := cost / (t.Penalty * t.CapacityPerReplica)
	if short >= 0.5 {
		return 0, true
	}
	return distuv.UnitNormal.Quantile(1 - short), true
}

// fingerprint identifies the policy's settings: a decider or forecaster
// built from another fingerprint is stale. It is taken on every reconcile
// and plan, of the policy as tuned (self-tuning edits the target), so it
// is a flat binary encoding rather than JSON (which cost a tenth of the
// daemon's CPU at 1,000 policies); matches compares without allocating.
func (p Policy) fingerprint() string {
	var buf [fingerprintBuf]byte
	return string(p.appendFingerprint(buf[:0]))
}

// matches reports whether fp is p's fingerprint.
func (p Policy) matches(fp string) bool {
	var buf [fingerprintBuf]byte
	return string(p.appendFingerprint(buf[:0])) == fp
}

// fingerprintBuf holds a policy with a few checks without a heap buffer.
const fingerprintBuf = 1024

// appendFingerprint encodes every setting a decider or forecaster is
// built from: Min, Max, every check and every key of the target
// (TestTheFingerprintChangesWithEverySetting fails when a new field is
// left out). Strings and lists are length-prefixed, so no two settings
// encode alike. The target's set is left out: which keys the policy wrote
// itself shows in their values.
func (p Policy) appendFingerprint(b []byte) []byte {
	b = fpInt(b, int64(p.Min))
	b = fpInt(b, int64(p.Max))
	b = fpInt(b, int64(len(p.Checks)))
	for _, c := range p.Checks {
		b = fpString(b, c.Name)
		b = fpString(b, c.Source)
		b = fpString(b, c.Query)
		b = fpFloat(b, c.TargetValue)
		b = fpFloat(b, c.Threshold)
		b = fpString(b, c.Strategy)
	}
	t := &p.Target
	for _, v := range [...]int64{int64(t.CacheSize), int64(t.ForecastHorizon), int64(t.MaxScaleUp), int64(t.MaxScaleDown),
		int64(t.StartupDelay), int64(t.ReplanInterval), int64(t.FloorWindow), int64(t.ScaleDownWindow), int64(t.FlapWindow), int64(t.TuneInterval),
		int64(t.TuneWindow), int64(t.HistoryWindow), int64(t.RefitInterval), int64(t.StaleAfter), int64(t.ModelStep), int64(t.FourierTerms)} {
		b = fpInt(b, v)
	}
	for _, v := range [...]float64{t.CapacityPerReplica, t.ReplicaCost, t.CPUPrice, t.MemoryPrice, t.Penalty, t.StartupCost,
		t.ShutdownCost, t.ExtraPenalty, t.FloorMargin, t.ScaleDownHysteresis, t.TuneMarginMin, t.TuneMarginMax, t.TargetValue,
		t.ForecastMargin, t.NoiseMargin, t.NoiseCap, t.NoiseCapShare, t.BurstQuantile, t.DemandResponseTime, t.DemandQueue, t.DemandAuthWaiting} {
		b = fpFloat(b, v)
	}
	for _, v := range [...]bool{t.StartupDelaySet, t.SelfTune, t.DryRun, t.SqrtTransform, t.FloorTrend} {
		b = fpBool(b, v)
	}
	b = fpString(b, t.OptimizerURL)
	b = fpString(b, t.Orders)
	b = fpString(b, t.RequestsCheck)
	b = fpInt(b, int64(len(t.Seasonality)))
	for _, d := range t.Seasonality {
		b = fpInt(b, int64(d))
	}
	b = fpInt(b, int64(len(t.Events)))
	for _, e := range t.Events {
		b = fpString(b, e.Name)
		b = fpString(b, e.Cron)
		b = fpInt(b, int64(e.Duration))
	}
	return b
}

func fpInt(b []byte, v int64) []byte { return binary.LittleEndian.AppendUint64(b, uint64(v)) }

func fpFloat(b []byte, v float64) []byte {
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
}

func fpString(b []byte, s string) []byte { return append(fpInt(b, int64(len(s))), s...) }

func fpBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

func (p Policy) hasCheck(name string) bool {
	for _, c := range p.Checks {
		if c.Name == name {
			return true
		}
	}
	return false
}

// Wrote reports whether the policy wrote key itself (rather than taking
// its default).
func (t Target) Wrote(key string) bool { return t.set[key] }

func parseTarget(body map[string]any, d Defaults) (Target, error) {
	ds := predict.DefaultSettings()
	t := Target{
		CacheSize: d.CacheSize, ForecastHorizon: d.ForecastHorizon, DryRun: d.DryRun,
		CapacityPerReplica: 10, Penalty: 1.0, StartupCost: 0.5, ShutdownCost: 0.3, ExtraPenalty: 10,
		MaxScaleUp: 2, MaxScaleDown: 2, Orders: "1,1,1;1,0,1;2,1,1;1,1,0",
		HistoryWindow: time.Hour, RefitInterval: time.Hour, StaleAfter: 30 * time.Second,
		ModelStep: 10 * time.Second, ForecastMargin: 1.15, NoiseMargin: 3, NoiseCap: 3, NoiseCapShare: 1.0 / 3, BurstQuantile: 0.935, FourierTerms: 3,
		ReplanInterval: ds.ReplanInterval, FloorWindow: ds.FloorWindow, FloorMargin: ds.FloorMargin, FloorTrend: ds.FloorTrend, ScaleDownWindow: ds.DownWindow, FlapWindow: ds.FlapWindow, ScaleDownHysteresis: ds.DownHysteresis,
		SelfTune: true, TuneInterval: 6 * time.Hour, TuneWindow: 12 * time.Hour, TuneMarginMin: 0.5, TuneMarginMax: 2,
		set:                map[string]bool{},
		DemandResponseTime: 0.05, DemandQueue: 0.1, DemandAuthWaiting: 0.2,
	}
	if t.CacheSize == 0 {
		t.CacheSize = 10
	}
	if t.ForecastHorizon == 0 {
		t.ForecastHorizon = 60
	}
	var err error
	ints := map[string]*int{"fourier_terms": &t.FourierTerms, "cache_size": &t.CacheSize, "forecast_horizon": &t.ForecastHorizon, "max_scale_up": &t.MaxScaleUp, "max_scale_down": &t.MaxScaleDown}
	floats := map[string]*float64{"capacity_per_replica": &t.CapacityPerReplica, "replica_cost": &t.ReplicaCost, "cpu_price": &t.CPUPrice,
		"memory_price": &t.MemoryPrice, "penalty": &t.Penalty, "startup_cost": &t.StartupCost, "shutdown_cost": &t.ShutdownCost, "extra_penalty": &t.ExtraPenalty, "forecast_margin": &t.ForecastMargin, "noise_margin": &t.NoiseMargin, "noise_cap": &t.NoiseCap, "noise_cap_share": &t.NoiseCapShare, "burst_quantile": &t.BurstQuantile, "scale_down_hysteresis": &t.ScaleDownHysteresis,
		"floor_margin": &t.FloorMargin, "tune_margin_min": &t.TuneMarginMin, "tune_margin_max": &t.TuneMarginMax, "demand_response_time": &t.DemandResponseTime, "demand_queue": &t.DemandQueue, "demand_auth_waiting": &t.DemandAuthWaiting}
	durations := map[string]*time.Duration{"startup_delay": &t.StartupDelay, "history_window": &t.HistoryWindow, "refit_interval": &t.RefitInterval, "stale_after": &t.StaleAfter, "model_step": &t.ModelStep,
		"replan_interval": &t.ReplanInterval, "floor_window": &t.FloorWindow, "scale_down_window": &t.ScaleDownWindow, "flap_window": &t.FlapWindow, "tune_interval": &t.TuneInterval, "tune_window": &t.TuneWindow}
	strs := map[string]*string{"orders": &t.Orders, "requests_check": &t.RequestsCheck}
	bools := map[string]*bool{"sqrt_transform": &t.SqrtTransform, "self_tune": &t.SelfTune, "dry_run": &t.DryRun, "floor_trend": &t.FloorTrend}
	for _, k := range sortedKeys(body) {
		v := body[k]
		switch {
		case ints[k] != nil:
			f, ok := v.(float64)
			// Past 2^31 no count, size or horizon means anything, and
			// int() of a larger float is undefined.
			if !ok || f != math.Trunc(f) || math.Abs(f) > math.MaxInt32 {
				return t, fmt.Errorf("%s must be a whole number, got %v", k, v)
			}
			*ints[k] = int(f)
		case floats[k] != nil:
			f, ok := v.(float64)
			// HCL reads 1e400 as infinity: no price, margin or capacity.
			if !ok || math.IsInf(f, 0) || math.IsNaN(f) {
				return t, fmt.Errorf("%s must be a finite number, got %v", k, v)
			}
			*floats[k] = f
		case durations[k] != nil:
			if *durations[k], err = durationValue(k, v); err != nil {
				return t, err
			}
		case strs[k] != nil:
			s, ok := v.(string)
			if !ok {
				return t, fmt.Errorf("%s must be a string, got %v", k, v)
			}
			*strs[k] = s
		case bools[k] != nil:
			b, ok := v.(bool)
			if !ok {
				return t, fmt.Errorf("%s must be true or false, got %v", k, v)
			}
			*bools[k] = b
		case k == "seasonality":
			list, ok := v.([]any)
			if !ok {
				return t, fmt.Errorf("seasonality must be a list of durations such as [\"24h\"]")
			}
			for _, item := range list {
				d, err := durationValue("seasonality", item)
				if err != nil {
					return t, err
				}
				if d < 2*time.Second {
					return t, fmt.Errorf("seasonality %s is shorter than 2s", d)
				}
				t.Seasonality = append(t.Seasonality, d)
			}
		case k == "event":
		default:
			return t, fmt.Errorf("unknown key %q", k)
		}
	}
	_, t.StartupDelaySet = body["startup_delay"]
	for k := range body {
		t.set[k] = true
	}
	events, err := namedBlocks(body, "event")
	if err != nil {
		return t, err
	}
	for _, e := range events {
		ev := Event{Name: e.name}
		for _, k := range sortedKeys(e.body) {
			v := e.body[k]
			switch k {
			case "cron":
				s, _ := v.(string)
				ev.Cron = s
			case "duration":
				if ev.Duration, err = durationValue("event "+e.name+" duration", v); err != nil {
					return t, err
				}
			default:
				return t, fmt.Errorf("event %q: unknown key %q", e.name, k)
			}
		}
		if ev.expr, err = cronexpr.Parse(ev.Cron); err != nil || ev.Cron == "" {
			return t, fmt.Errorf("event %q: bad cron %q", e.name, ev.Cron)
		}
		if ev.Duration <= 0 {
			return t, fmt.Errorf("event %q: duration must be positive", e.name)
		}
		t.Events = append(t.Events, ev)
	}
	switch {
	case t.CacheSize < 1 || t.CacheSize > 3600:
		return t, fmt.Errorf("cache_size %d is outside 1..3600", t.CacheSize)
	case t.ForecastHorizon < t.CacheSize:
		return t, fmt.Errorf("forecast_horizon %d is shorter than cache_size %d", t.ForecastHorizon, t.CacheSize)
	case t.ForecastHorizon > 3600:
		return t, fmt.Errorf("forecast_horizon %d is over 3600", t.ForecastHorizon)
	case t.CapacityPerReplica <= 0:
		return t, fmt.Errorf("capacity_per_replica must be positive")
	case t.MaxScaleUp < 1 || t.MaxScaleDown < 0:
		return t, fmt.Errorf("max_scale_up must be at least 1 and max_scale_down at least 0")
	case t.StartupDelay < 0 || t.StartupDelay >= time.Duration(t.ForecastHorizon)*time.Second:
		return t, fmt.Errorf("startup_delay %s must be within [0, forecast_horizon)", t.StartupDelay)
	case t.Penalty < 0 || t.StartupCost < 0 || t.ShutdownCost < 0 || t.ExtraPenalty < 0 || t.ReplicaCost < 0 || t.CPUPrice < 0 || t.MemoryPrice < 0:
		return t, fmt.Errorf("costs and prices must not be negative")
	case t.HistoryWindow < time.Minute:
		return t, fmt.Errorf("history_window must be at least 1m")
	case t.ModelStep < time.Second || t.ModelStep > time.Hour:
		return t, fmt.Errorf("model_step must be within 1s..1h")
	case t.FourierTerms < 0 || t.FourierTerms > 20:
		return t, fmt.Errorf("fourier_terms must be within 0..20")
	case t.ForecastMargin < 0 || t.NoiseMargin < 0 || t.NoiseCap < 0:
		return t, fmt.Errorf("forecast_margin, noise_margin and noise_cap must not be negative")
	case t.NoiseCapShare < 0 || t.NoiseCapShare > 10 || math.IsNaN(t.NoiseCapShare):
		return t, fmt.Errorf("noise_cap_share must be within 0..10")
	case t.BurstQuantile < 0 || t.BurstQuantile >= 1 || math.IsNaN(t.BurstQuantile):
		return t, fmt.Errorf("burst_quantile must be within 0..1 (0 turns it off)")
	case t.ReplanInterval < time.Second || t.ReplanInterval > time.Hour:
		return t, fmt.Errorf("replan_interval must be within 1s..1h")
	case t.FloorWindow < time.Second || t.FloorWindow > time.Hour:
		return t, fmt.Errorf("floor_window must be within 1s..1h")
	case t.FloorMargin < 0 || t.FloorMargin > 10:
		return t, fmt.Errorf("floor_margin must be within 0..10")
	case t.ScaleDownWindow < 0 || t.ScaleDownWindow > time.Hour:
		return t, fmt.Errorf("scale_down_window must be within 0..1h")
	case t.FlapWindow < 0 || t.FlapWindow > 10*time.Minute:
		return t, fmt.Errorf("flap_window must be within 0..10m")
	case t.ScaleDownHysteresis < 0 || t.ScaleDownHysteresis > 1:
		return t, fmt.Errorf("scale_down_hysteresis must be within 0..1")
	case t.TuneInterval < time.Minute || t.TuneWindow < 2*time.Hour || t.TuneWindow > 7*24*time.Hour:
		return t, fmt.Errorf("tune_interval must be at least 1m and tune_window within 2h..7d")
	case t.TuneMarginMin < 0 || t.TuneMarginMax < t.TuneMarginMin:
		return t, fmt.Errorf("tune_margin_min and tune_margin_max must be a range of non-negative margins")
	}
	if _, err := model.ParseOrders(t.Orders); err != nil {
		return t, fmt.Errorf("orders %q: %w", t.Orders, err)
	}
	return t, nil
}

type namedBlock struct {
	name string
	body map[string]any
}

// namedBlocks reads `kind "name" { ... }` blocks as Nomad stores them in a
// policy: a list of {name: [body]} maps.
func namedBlocks(m map[string]any, kind string) ([]namedBlock, error) {
	raw, ok := m[kind]
	if !ok {
		return nil, nil
	}
	list, ok := raw.([]any)
	if !ok {
		return nil, fmt.Errorf("%s must be a labelled block", kind)
	}
	var out []namedBlock
	for _, item := range list {
		named, ok := item.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s must be a labelled block", kind)
		}
		for _, name := range sortedKeys(named) { // the same error every time
			bodies, ok := named[name].([]any)
			if !ok || len(bodies) != 1 {
				return nil, fmt.Errorf("%s %q must be one block", kind, name)
			}
			body, ok := bodies[0].(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%s %q must be a block", kind, name)
			}
			out = append(out, namedBlock{name: name, body: body})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

// sortedKeys are m's keys in order, so that of two bad keys the same one
// is reported every time.
func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func durationValue(key string, v any) (time.Duration, error) {
	switch x := v.(type) {
	case string:
		d, err := time.ParseDuration(strings.TrimSpace(x))
		if err != nil {
			return 0, fmt.Errorf("%s: bad duration %q", key, x)
		}
		return d, nil
	case float64:
		// A bare number is seconds, as the seed's startup_delay; beyond
		// what a Duration holds (about 292 years) it is no duration.
		if math.IsNaN(x) || math.Abs(x) > math.MaxInt64/float64(time.Second) {
			return 0, fmt.Errorf("%s: %v seconds is not a duration", key, x)
		}
		return time.Duration(x * float64(time.Second)), nil
	}
	return 0, fmt.Errorf("%s: want a duration such as \"30s\", got %v", key, v)
}
