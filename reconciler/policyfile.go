package reconciler

import (
	"errors"
	"fmt"
	"math"
	"os"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	nomadapi "github.com/hashicorp/nomad/api"
	"github.com/zclconf/go-cty/cty"
)

// ReadPolicyFile reads the first `target "nomadscaler"` scaling policy of
// an HCL file: a Nomad job file (its groups' `scaling` blocks), a file of
// `scaling` blocks, or a bare `policy` block. The policy is checked exactly
// as the daemon checks a job's policy.
func ReadPolicyFile(path string, d Defaults) (Policy, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return Policy{}, err
	}
	return ParsePolicyHCL(src, path, d)
}

// ParsePolicyHCL is ReadPolicyFile on src.
func ParsePolicyHCL(src []byte, filename string, d Defaults) (Policy, error) {
	f, diags := hclsyntax.ParseConfig(src, filename, hcl.Pos{Line: 1, Column: 1})
	if diags.HasErrors() {
		return Policy{}, fmt.Errorf("%s: %s", filename, diags.Error())
	}
	body := f.Body.(*hclsyntax.Body)
	var firstErr error
	var found bool
	var pol Policy
	// walk visits scaling blocks with the job and group they belong to.
	var walk func(b *hclsyntax.Body, ns, job, group string) bool
	try := func(sb *hclsyntax.Body, ns, job, group string, bare bool) bool {
		sp, err := hclScalingPolicy(sb, ns, job, group, bare)
		if err == nil {
			pol, err = ParsePolicy(sp, d)
		}
		switch {
		case errors.Is(err, ErrNotOurs):
			return false
		case err != nil:
			if firstErr == nil {
				firstErr = fmt.Errorf("%s:%d: %w", filename, sb.SrcRange.Start.Line, err)
			}
			return false
		}
		found = true
		return true
	}
	walk = func(b *hclsyntax.Body, ns, job, group string) bool {
		for _, blk := range b.Blocks {
			switch blk.Type {
			case "job":
				if walk(blk.Body, jobNamespace(blk.Body), label(blk), group) {
					return true
				}
			case "group":
				if walk(blk.Body, ns, job, label(blk)) {
					return true
				}
			case "scaling":
				if try(blk.Body, ns, job, group, false) {
					return true
				}
			case "policy":
				if try(b, ns, job, group, true) {
					return true
				}
			}
		}
		return false
	}
	walk(body, "", "", "")
	if !found {
		if firstErr != nil {
			return Policy{}, firstErr
		}
		return Policy{}, fmt.Errorf("%s: no scaling policy with a target %q", filename, TargetName)
	}
	return pol, nil
}

func label(b *hclsyntax.Block) string {
	if len(b.Labels) > 0 {
		return b.Labels[0]
	}
	return ""
}

// jobNamespace is a job's namespace attribute when it is a literal, else
// Nomad's default.
func jobNamespace(b *hclsyntax.Body) string {
	if attr, ok := b.Attributes["namespace"]; ok {
		if v, diags := attr.Expr.Value(nil); !diags.HasErrors() && v.Type() == cty.String && !v.IsNull() {
			return v.AsString()
		}
	}
	return "default"
}

// hclScalingPolicy turns a scaling block (or, bare, a body holding a policy
// block) into the form Nomad's API returns. Inside a job the group is the
// block's own; outside one (a policy file, as nomad-autoscaler reads them)
// it is what the nomadscaler target's namespace, job and group name.
func hclScalingPolicy(b *hclsyntax.Body, ns, job, group string, bare bool) (*nomadapi.ScalingPolicy, error) {
	if ns == "" {
		ns = "default"
	}
	sp := &nomadapi.ScalingPolicy{Type: "horizontal", Target: map[string]string{"Namespace": ns, "Job": job, "Group": group}}
	m, err := bodyMap(b)
	if err != nil {
		return nil, err
	}
	if job == "" {
		sp.ID = "file"
		sp.Target["Namespace"], sp.Target["Job"], sp.Target["Group"] = fileTarget(m, bare)
	}
	if err := fillScalingPolicy(sp, m, bare); err != nil {
		return nil, err
	}
	return sp, nil
}

// fileTarget is the group a policy outside a job is about: its target's
// namespace, job and group, or placeholders ("file") for a bare policy the
// backtest runs without a cluster.
func fileTarget(m map[string]any, bare bool) (ns, job, group string) {
	ns, job, group = "default", "file", "file"
	pol := m
	if !bare {
		list, _ := m["policy"].([]any)
		if len(list) != 1 {
			return
		}
		pol, _ = list[0].(map[string]any)
	}
	targets, err := namedBlocks(pol, "target")
	if err != nil {
		return
	}
	for _, t := range targets {
		if t.name != TargetName {
			continue
		}
		for key, dst := range map[string]*string{"namespace": &ns, "job": &job, "group": &group} {
			if s := targetName(t.body, key); s != "" {
				*dst = s
			}
		}
	}
	return
}

// fillScalingPolicy sets sp's bounds, enabled and policy body from m, a
// scaling block's body (or, bare, a body holding only a policy block).
func fillScalingPolicy(sp *nomadapi.ScalingPolicy, m map[string]any, bare bool) error {
	if !bare {
		for _, k := range sortedKeys(m) {
			v := m[k]
			switch k {
			case "min", "max":
				f, ok := v.(float64)
				// nomad-autoscaler decodes min and max as int64s
				// (sdk/policy.go:224-225), refusing 1.5 where int64()
				// would silently make it 1; past 2^31 no count means
				// anything.
				if !ok || f != math.Trunc(f) || math.Abs(f) > math.MaxInt32 {
					return fmt.Errorf("scaling: %s must be a whole number, got %v", k, v)
				}
				n := int64(f)
				if k == "min" {
					sp.Min = &n
				} else {
					sp.Max = &n
				}
			case "enabled":
				e, ok := v.(bool)
				if !ok {
					return errors.New("scaling: enabled must be true or false")
				}
				sp.Enabled = &e
			case "type":
				t, ok := v.(string)
				if !ok {
					return errors.New("scaling: type must be a string")
				}
				sp.Type = t
			case "policy":
			default:
				return fmt.Errorf("scaling: unknown key %q", k)
			}
		}
	} else {
		// A bare policy block: bounds are the backtest's to set.
		zero, most := int64(0), int64(1<<31-1)
		sp.Min, sp.Max = &zero, &most
	}
	list, _ := m["policy"].([]any)
	if len(list) != 1 {
		return errors.New("scaling: want exactly one policy block")
	}
	pol, ok := list[0].(map[string]any)
	if !ok {
		return errors.New("scaling: policy must be a block")
	}
	sp.Policy = pol
	return nil
}

// bodyMap is an HCL body as Nomad stores a scaling policy: attributes as
// JSON-like values, a labelled block `kind "name" {}` as a list entry
// {name: [body]} under kind, an unlabelled block as a list entry body.
func bodyMap(b *hclsyntax.Body) (map[string]any, error) {
	m := map[string]any{}
	for _, name := range sortedAttrNames(b) { // in file order: the same error every time
		attr := b.Attributes[name]
		g, err := literalValue(name, attr.Expr, attr.SrcRange.Start.Line)
		if err != nil {
			return nil, err
		}
		m[name] = g
	}
	for _, blk := range b.Blocks {
		inner, err := bodyMap(blk.Body)
		if err != nil {
			return nil, err
		}
		addBlock(m, blk.Type, blk.Labels, inner)
	}
	return m, nil
}

// literalValue reads an attribute written at line as a literal value
// (see ctyValue): a policy has no variables or functions to evaluate.
func literalValue(name string, expr hcl.Expression, line int) (any, error) {
	v, diags := expr.Value(nil)
	if diags.HasErrors() {
		return nil, fmt.Errorf("line %d: %s: only literal values are read here: %s", line, name, diags.Errs()[0])
	}
	g, err := ctyValue(v)
	if err != nil {
		return nil, fmt.Errorf("line %d: %s: %w", line, name, err)
	}
	return g, nil
}

// addBlock adds a block's body, as read, to m under its type, in the
// shape Nomad's API gives a scaling policy: a list of bodies, each under
// its label when it has one.
func addBlock(m map[string]any, typ string, labels []string, inner map[string]any) {
	list, _ := m[typ].([]any)
	if len(labels) > 0 {
		list = append(list, map[string]any{labels[0]: []any{inner}})
	} else {
		list = append(list, inner)
	}
	m[typ] = list
}

func ctyValue(v cty.Value) (any, error) {
	switch {
	case v.IsNull():
		return nil, nil
	case v.Type() == cty.String:
		return v.AsString(), nil
	case v.Type() == cty.Number:
		f, _ := v.AsBigFloat().Float64()
		return f, nil
	case v.Type() == cty.Bool:
		return v.True(), nil
	case v.Type().IsTupleType() || v.Type().IsListType():
		var out []any
		for it := v.ElementIterator(); it.Next(); {
			_, e := it.Element()
			g, err := ctyValue(e)
			if err != nil {
				return nil, err
			}
			out = append(out, g)
		}
		return out, nil
	}
	return nil, fmt.Errorf("unsupported value of type %s", v.Type().FriendlyName())
}
