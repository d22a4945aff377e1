package nodepool

import (
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclparse"
)

// PoolConfig is one `pool "name" { ... }` block of the nomadscalerd config
// file, as written. Resolve turns it into a Pool with defaults filled in.
type PoolConfig struct {
	Name                 string               `hcl:"name,label"`
	NodePool             string               `hcl:"node_pool,optional"`
	NodeClass            string               `hcl:"node_class,optional"`
	Datacenter           string               `hcl:"datacenter,optional"`
	Min                  *int                 `hcl:"min,optional"`
	Max                  *int                 `hcl:"max,optional"`
	Headroom             *HeadroomConfig      `hcl:"headroom,block"`
	Idle                 *IdleConfig          `hcl:"idle,block"`
	ScaleDownMaxFraction *float64             `hcl:"scale_down_max_fraction,optional"`
	Drain                *DrainConfig         `hcl:"drain,block"`
	InstanceTypes        []InstanceTypeConfig `hcl:"instance_type,block"`
	SpotMaxShare         *float64             `hcl:"spot_max_share,optional"`
	ScaleOutGrace        string               `hcl:"scale_out_grace,optional"`
	Predictive           *PredictiveConfig    `hcl:"predictive,block"`
	Provider             ProviderConfig       `hcl:"provider,block"`
}

// HeadroomConfig is the `headroom { cpu_mhz, memory_mib, units }` block.
type HeadroomConfig struct {
	CPUMHz    int64 `hcl:"cpu_mhz,optional"`
	MemoryMiB int64 `hcl:"memory_mib,optional"`
	Units     int   `hcl:"units"`
}

// IdleConfig is the `idle { ... }` block; unset attributes take defaults.
type IdleConfig struct {
	CPUBelow    *float64 `hcl:"cpu_below,optional"`
	MemoryBelow *float64 `hcl:"memory_below,optional"`
	Periods     *int     `hcl:"periods,optional"`
	Period      string   `hcl:"period,optional"`
}

// DrainConfig is the `drain { deadline, ignore_system_jobs }` block.
type DrainConfig struct {
	Deadline         string `hcl:"deadline,optional"`
	IgnoreSystemJobs bool   `hcl:"ignore_system_jobs,optional"`
}

// InstanceTypeConfig is one `instance_type "name" { ... }` block.
type InstanceTypeConfig struct {
	Name      string  `hcl:"name,label"`
	CPUMHz    int64   `hcl:"cpu_mhz"`
	MemoryMiB int64   `hcl:"memory_mib"`
	Price     float64 `hcl:"price"`
	SpotPrice float64 `hcl:"spot_price,optional"`
	Max       int     `hcl:"max,optional"`
}

// ProviderConfig is the `provider "command" { ... }`, `provider "aws" { ... }`
// or `provider "noop" {}` block.
type ProviderConfig struct {
	Kind      string `hcl:"kind,label"`
	ScaleOut  string `hcl:"scale_out,optional"`
	Terminate string `hcl:"terminate,optional"`
	Timeout   string `hcl:"timeout,optional"`
	// aws only.
	Region            string                   `hcl:"region,optional"`
	Endpoint          string                   `hcl:"endpoint,optional"`
	AutoScalingGroups []AutoScalingGroupConfig `hcl:"auto_scaling_group,block"`
}

// AutoScalingGroupConfig is one `auto_scaling_group "instance type" { ... }`
// block of an aws provider: the groups that launch that instance type.
type AutoScalingGroupConfig struct {
	InstanceType string `hcl:"instance_type,label"`
	OnDemand     string `hcl:"on_demand"`
	Spot         string `hcl:"spot,optional"`
}

// Defaults for unset pool settings.
const (
	DefaultIdleBelow            = 0.40
	DefaultIdlePeriods          = 5
	DefaultIdlePeriod           = time.Minute
	DefaultScaleDownMaxFraction = 0.10
	DefaultDrainDeadline        = 15 * time.Minute
	DefaultProviderTimeout      = 2 * time.Minute
	DefaultScaleOutGrace        = 10 * time.Minute
)

// Provider kinds.
const (
	ProviderCommand = "command"
	ProviderAWS     = "aws"
	ProviderNoop    = "noop"
)

// Pool is a validated pool configuration with every default filled in.
type Pool struct {
	Name                 string
	Selector             Selector
	Min, Max             int
	Headroom             Headroom
	Idle                 IdlePolicy
	ScaleDownMaxFraction float64
	Drain                DrainSpec
	InstanceTypes        []InstanceType
	SpotMaxShare         float64
	// ScaleOutGrace is how long launched nodes that have not yet joined
	// count as pending capacity, so level-triggered reconciles do not launch
	// them again.
	ScaleOutGrace time.Duration
	// LeadTime makes the pool predictive: nodes are launched for the
	// allocations the job groups' plans will ask for within it (0: only
	// for allocations already queued).
	LeadTime time.Duration
	Provider ProviderSpec
}

// DrainSpec is how a node is drained.
type DrainSpec struct {
	Deadline         time.Duration
	IgnoreSystemJobs bool
}

// ProviderSpec is a resolved provider block. Timeout bounds one action,
// retries included.
type ProviderSpec struct {
	Kind      string
	ScaleOut  string
	Terminate string
	Timeout   time.Duration
	// AWS is set for the aws kind only (a pointer keeps the spec
	// comparable).
	AWS *AWSSpec
}

// AWSSpec is the aws provider's part of a ProviderSpec. Region and Endpoint
// empty mean the SDK's own resolution (environment, shared config, instance
// metadata for the region is not consulted).
type AWSSpec struct {
	Region   string
	Endpoint string
	// Groups maps each instance type to its Auto Scaling groups.
	Groups map[string]AWSGroups
}

// AWSGroups names the Auto Scaling groups of one instance type; Spot is
// empty when the type is never bought on spot.
type AWSGroups struct {
	OnDemand string
	Spot     string
}

// typeResources is what one node of the instance type named name
// provides; zero for a name the pool does not list.
func (p Pool) typeResources(name string) Resources {
	for _, it := range p.InstanceTypes {
		if it.Name == name {
			return it.Resources
		}
	}
	return Resources{}
}

// DrainPolicy extracts the drain limits of the pool.
func (p Pool) DrainPolicy() DrainPolicy {
	return DrainPolicy{Min: p.Min, MaxFraction: p.ScaleDownMaxFraction, Idle: p.Idle, Headroom: p.Headroom}
}

// Resolve validates c and fills defaults. Errors name the pool and key.
func (c PoolConfig) Resolve() (Pool, error) {
	p := Pool{
		Name:     c.Name,
		Selector: Selector{NodePool: c.NodePool, NodeClass: c.NodeClass, Datacenter: c.Datacenter},
		Idle: IdlePolicy{CPUBelow: DefaultIdleBelow, MemoryBelow: DefaultIdleBelow,
			Periods: DefaultIdlePeriods, Period: DefaultIdlePeriod},
		ScaleDownMaxFraction: DefaultScaleDownMaxFraction,
		Drain:                DrainSpec{Deadline: DefaultDrainDeadline},
		ScaleOutGrace:        DefaultScaleOutGrace,
	}
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("pool %q: %s: %s", c.Name, key, fmt.Sprintf(format, args...)))
	}
	dur := func(key, s string, into *time.Duration) {
		if s == "" {
			return
		}
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			bad(key, "invalid duration %q", s)
			return
		}
		*into = d
	}
	fraction := func(key string, v *float64, into *float64) {
		if v == nil {
			return
		}
		if *v < 0 || *v > 1 {
			bad(key, "must be between 0 and 1, got %v", *v)
			return
		}
		*into = *v
	}

	if c.Name == "" {
		bad("name", "pool needs a name")
	}
	if c.Min != nil {
		p.Min = *c.Min
	}
	if p.Min < 0 {
		bad("min", "must not be negative")
	}
	if c.Max == nil {
		bad("max", "is required")
	} else {
		p.Max = *c.Max
		if p.Max < 1 || p.Max < p.Min {
			bad("max", "must be at least 1 and at least min (%d), got %d", p.Min, p.Max)
		}
	}
	if h := c.Headroom; h != nil {
		p.Headroom = Headroom{Unit: Resources{CPUMHz: h.CPUMHz, MemoryMiB: h.MemoryMiB}, Units: h.Units}
		switch {
		case h.CPUMHz < 0 || h.MemoryMiB < 0:
			bad("headroom", "cpu_mhz and memory_mib must not be negative")
		case h.Units < 0:
			bad("headroom.units", "must not be negative")
		case h.Units > 0 && h.CPUMHz == 0 && h.MemoryMiB == 0:
			bad("headroom", "units need a size: set cpu_mhz and/or memory_mib")
		}
	}
	if i := c.Idle; i != nil {
		fraction("idle.cpu_below", i.CPUBelow, &p.Idle.CPUBelow)
		fraction("idle.memory_below", i.MemoryBelow, &p.Idle.MemoryBelow)
		if i.Periods != nil {
			if *i.Periods < 1 {
				bad("idle.periods", "must be at least 1")
			}
			p.Idle.Periods = *i.Periods
		}
		dur("idle.period", i.Period, &p.Idle.Period)
	}
	fraction("scale_down_max_fraction", c.ScaleDownMaxFraction, &p.ScaleDownMaxFraction)
	if d := c.Drain; d != nil {
		dur("drain.deadline", d.Deadline, &p.Drain.Deadline)
		p.Drain.IgnoreSystemJobs = d.IgnoreSystemJobs
	}
	fraction("spot_max_share", c.SpotMaxShare, &p.SpotMaxShare)
	dur("scale_out_grace", c.ScaleOutGrace, &p.ScaleOutGrace)
	if c.Predictive != nil {
		lead := c.Predictive.LeadTime
		if lead == "" {
			lead = DefaultLeadTime
		}
		dur("predictive.lead_time", lead, &p.LeadTime)
	}

	if len(c.InstanceTypes) == 0 {
		bad("instance_type", "at least one instance_type block is required")
	}
	seen := map[string]bool{}
	for _, it := range c.InstanceTypes {
		key := fmt.Sprintf("instance_type %q", it.Name)
		switch {
		case it.Name == "":
			bad("instance_type", "needs a name label")
		case seen[it.Name]:
			bad(key, "defined twice")
		case it.CPUMHz <= 0 || it.MemoryMiB <= 0:
			bad(key, "cpu_mhz and memory_mib must be positive")
		case it.Price < 0 || it.SpotPrice < 0:
			bad(key, "price and spot_price must not be negative")
		case it.Max < 0:
			bad(key+".max", "must not be negative")
		}
		seen[it.Name] = true
		p.InstanceTypes = append(p.InstanceTypes, InstanceType{Name: it.Name,
			Resources: Resources{CPUMHz: it.CPUMHz, MemoryMiB: it.MemoryMiB},
			Price:     it.Price, SpotPrice: it.SpotPrice, Max: it.Max})
	}

	p.Provider = ProviderSpec{Kind: c.Provider.Kind, ScaleOut: c.Provider.ScaleOut,
		Terminate: c.Provider.Terminate, Timeout: DefaultProviderTimeout}
	dur("provider.timeout", c.Provider.Timeout, &p.Provider.Timeout)
	switch c.Provider.Kind {
	case ProviderCommand:
		if c.Provider.ScaleOut == "" || c.Provider.Terminate == "" {
			bad(`provider "command"`, "scale_out and terminate are required")
		}
	case ProviderAWS:
		aws := c.resolveAWS(p, bad)
		p.Provider.AWS = &aws
	case ProviderNoop:
	default:
		bad("provider", "unknown kind %q, want %q, %q or %q", c.Provider.Kind, ProviderCommand, ProviderAWS, ProviderNoop)
	}
	if err := errors.Join(errs...); err != nil {
		return Pool{}, err
	}
	return p, nil
}

// resolveAWS checks that every instance type the pool may launch has a
// group to launch it in, and a spot group when the chooser may pick spot.
func (c PoolConfig) resolveAWS(p Pool, bad func(key, format string, args ...any)) AWSSpec {
	spec := AWSSpec{Region: c.Provider.Region, Endpoint: c.Provider.Endpoint, Groups: map[string]AWSGroups{}}
	types := map[string]InstanceType{}
	for _, it := range p.InstanceTypes {
		types[it.Name] = it
	}
	for _, g := range c.Provider.AutoScalingGroups {
		key := fmt.Sprintf(`provider "aws": auto_scaling_group %q`, g.InstanceType)
		switch _, known := types[g.InstanceType]; {
		case !known:
			bad(key, "no instance_type block of that name")
		case spec.Groups[g.InstanceType] != AWSGroups{}:
			bad(key, "defined twice")
		case g.OnDemand == "":
			bad(key+".on_demand", "must name a group")
		}
		spec.Groups[g.InstanceType] = AWSGroups{OnDemand: g.OnDemand, Spot: g.Spot}
	}
	for _, it := range p.InstanceTypes {
		g, ok := spec.Groups[it.Name]
		switch {
		case !ok:
			bad(`provider "aws"`, "instance_type %q has no auto_scaling_group block", it.Name)
		case g.Spot == "" && it.SpotPrice > 0 && p.SpotMaxShare > 0:
			bad(fmt.Sprintf(`provider "aws": auto_scaling_group %q.spot`, it.Name), "is required: the instance type has a spot_price and spot_max_share allows spot")
		}
	}
	return spec
}

// ResolvePools resolves every pool and rejects duplicate names.
func ResolvePools(cs []PoolConfig) ([]Pool, error) {
	var pools []Pool
	var errs []error
	seen := map[string]bool{}
	for _, c := range cs {
		if seen[c.Name] {
			errs = append(errs, fmt.Errorf("pool %q: defined twice", c.Name))
			continue
		}
		seen[c.Name] = true
		p, err := c.Resolve()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		pools = append(pools, p)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return pools, nil
}

// ParsePools decodes the pool blocks of an HCL document, ignoring anything
// else in it, and resolves them.
func ParsePools(src []byte, filename string) ([]Pool, error) {
	f, diags := hclparse.NewParser().ParseHCL(src, filename)
	if diags.HasErrors() {
		return nil, fmt.Errorf("parse %s: %w", filename, diags)
	}
	return DecodePools(f.Body)
}

// DecodePools decodes and resolves the pool blocks of an already parsed
// HCL body, ignoring its other attributes and blocks.
func DecodePools(body hcl.Body) ([]Pool, error) {
	var doc struct {
		Pools  []PoolConfig `hcl:"pool,block"`
		Remain hcl.Body     `hcl:",remain"`
	}
	if diags := gohcl.DecodeBody(body, nil, &doc); diags.HasErrors() {
		return nil, fmt.Errorf("decode pools: %w", diags)
	}
	return ResolvePools(doc.Pools)
}
