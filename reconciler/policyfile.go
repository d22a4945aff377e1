package reconciler

import (
	"errors"
	"fmt"
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
	var walk func(b *hclsyntax.Body, job, group string) bool
	try := func(sb *hclsyntax.Body, job, group string, bare bool) bool {
		sp, err := hclScalingPolicy(sb, job, group, bare)
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
	walk = func(b *hclsyntax.Body, job, group string) bool {
		for _, blk := range b.Blocks {
			switch blk.Type {
			case "job":
				if walk(blk.Body, label(blk), group) {
					return true
				}
			case "group":
				if walk(blk.Body, job, label(blk)) {
					return true
				}
			case "scaling":
				if try(blk.Body, job, group, false) {
					return true
				}
			case "policy":
				if try(b, job, group, true) {
					return true
				}
			}
		}
		return false
	}
	walk(body, "", "")
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

// hclScalingPolicy turns a scaling block (or, bare, a body holding a policy
// block) into the form Nomad's API returns.
func hclScalingPolicy(b *hclsyntax.Body, job, group string, bare bool) (*nomadapi.ScalingPolicy, error) {
	sp := &nomadapi.ScalingPolicy{Type: "horizontal", Target: map[string]string{"Namespace": "default", "Job": job, "Group": group}}
	if job == "" {
		sp.Target["Job"] = "file"
	}
	if group == "" {
		sp.Target["Group"] = "file"
	}
	m, err := bodyMap(b)
	if err != nil {
		return nil, err
	}
	if !bare {
		for _, k := range sortedKeys(m) {
			v := m[k]
			switch k {
			case "min", "max":
				f, ok := v.(float64)
				if !ok {
					return nil, fmt.Errorf("scaling: %s must be a number", k)
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
					return nil, errors.New("scaling: enabled must be true or false")
				}
				sp.Enabled = &e
			case "policy", "type":
			default:
				return nil, fmt.Errorf("scaling: unknown key %q", k)
			}
		}
	} else {
		// A bare policy block: bounds are the backtest's to set.
		zero, most := int64(0), int64(1<<31-1)
		sp.Min, sp.Max = &zero, &most
	}
	list, _ := m["policy"].([]any)
	if len(list) != 1 {
		return nil, errors.New("scaling: want exactly one policy block")
	}
	pol, ok := list[0].(map[string]any)
	if !ok {
		return nil, errors.New("scaling: policy must be a block")
	}
	sp.Policy = pol
	return sp, nil
}

// bodyMap is an HCL body as Nomad stores a scaling policy: attributes as
// JSON-like values, a labelled block `kind "name" {}` as a list entry
// {name: [body]} under kind, an unlabelled block as a list entry body.
func bodyMap(b *hclsyntax.Body) (map[string]any, error) {
	m := map[string]any{}
	for name, attr := range b.Attributes {
		v, diags := attr.Expr.Value(nil)
		if diags.HasErrors() {
			return nil, fmt.Errorf("line %d: %s: only literal values are read here: %s", attr.SrcRange.Start.Line, name, diags.Errs()[0])
		}
		g, err := ctyValue(v)
		if err != nil {
			return nil, fmt.Errorf("line %d: %s: %w", attr.SrcRange.Start.Line, name, err)
		}
		m[name] = g
	}
	for _, blk := range b.Blocks {
		inner, err := bodyMap(blk.Body)
		if err != nil {
			return nil, err
		}
		list, _ := m[blk.Type].([]any)
		if len(blk.Labels) > 0 {
			list = append(list, map[string]any{blk.Labels[0]: []any{inner}})
		} else {
			list = append(list, inner)
		}
		m[blk.Type] = list
	}
	return m, nil
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
