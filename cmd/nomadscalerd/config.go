package main

import (
	"cmp"
	"errors"
	"fmt"
	"math/big"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/urfave/cli/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/nomadscalerd/nomadscalerd/nodepool"
)

// configFile is an HCL file whose top-level attributes are the flags of the
// command, named with underscores (`--http-addr` is `http_addr`), and whose
// blocks hold what a flag cannot express (node pools).
type configFile struct {
	path   string
	body   *hclsyntax.Body
	blocks hclsyntax.Blocks
}

// loadConfigFile parses path. Syntax errors name the file and line.
func loadConfigFile(path string) (*configFile, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	f, diags := hclsyntax.ParseConfig(src, path, hcl.Pos{Line: 1, Column: 1})
	if diags.HasErrors() {
		return nil, errors.New(firstDiag(diags))
	}
	body := f.Body.(*hclsyntax.Body)
	return &configFile{path: path, body: body, blocks: body.Blocks}, nil
}

func firstDiag(diags hcl.Diagnostics) string {
	for _, d := range diags {
		if d.Severity != hcl.DiagError {
			continue
		}
		where := ""
		if d.Subject != nil {
			where = fmt.Sprintf("%s:%d: ", d.Subject.Filename, d.Subject.Start.Line)
		}
		msg := d.Summary
		if d.Detail != "" {
			msg += ": " + d.Detail
		}
		return where + msg
	}
	return diags.Error()
}

// configKey maps a flag name to its key in the file.
func configKey(flagName string) string { return strings.ReplaceAll(flagName, "-", "_") }

// knownBlocks are the block types the file may hold besides attributes.
var knownBlocks = map[string]bool{"pool": true}

// apply sets every flag of c's lineage that neither the command line nor
// the environment set from the file, so precedence is flag > env > file >
// default. Unknown keys and values of the wrong type are errors naming the
// key and its line.
func (f *configFile) apply(c *cli.Context) error {
	flags := map[string]cli.Flag{}
	for _, fl := range append(append([]cli.Flag{}, c.App.Flags...), c.Command.Flags...) {
		flags[configKey(fl.Names()[0])] = fl
	}
	delete(flags, "config")
	for _, b := range f.blocks {
		if !knownBlocks[b.Type] {
			return fmt.Errorf("%s:%d: unknown block %q", f.path, b.TypeRange.Start.Line, b.Type)
		}
	}
	// In file order: with two bad keys, the first is the one reported,
	// every time.
	attrs := make([]*hclsyntax.Attribute, 0, len(f.body.Attributes))
	for _, a := range f.body.Attributes {
		attrs = append(attrs, a)
	}
	slices.SortFunc(attrs, func(a, b *hclsyntax.Attribute) int { return cmp.Compare(a.SrcRange.Start.Byte, b.SrcRange.Start.Byte) })
	for _, attr := range attrs {
		key := attr.Name
		line := attr.SrcRange.Start.Line
		fl, ok := flags[key]
		if !ok {
			return fmt.Errorf("%s:%d: unknown key %q", f.path, line, key)
		}
		val, diags := attr.Expr.Value(nil)
		if diags.HasErrors() {
			return fmt.Errorf("%s:%d: key %q: %s", f.path, line, key, firstDiag(diags))
		}
		s, err := flagString(fl, val)
		if err != nil {
			return fmt.Errorf("%s:%d: key %q: %w", f.path, line, key, err)
		}
		name := fl.Names()[0]
		if given(c, name) {
			continue // flag or environment wins
		}
		if err := c.Set(name, s); err != nil {
			return fmt.Errorf("%s:%d: key %q: %w", f.path, line, key, err)
		}
	}
	return nil
}

// given reports whether the command line or the environment set the flag
// name. An empty string is not given: urfave/cli counts an exported but
// empty environment variable (NOMAD_ADDR= in a unit file or a job's env
// block) as set, and a config file's value must not be dropped for it.
func given(c *cli.Context, name string) bool {
	if !c.IsSet(name) {
		return false
	}
	for _, fl := range append(append([]cli.Flag{}, c.App.Flags...), c.Command.Flags...) {
		if !slices.Contains(fl.Names(), name) {
			continue
		}
		switch fl.(type) {
		case *cli.StringFlag, *cli.PathFlag:
			return c.String(name) != ""
		}
	}
	return true
}

// flagString checks that v has the type the flag wants and renders it as
// the flag would parse it.
func flagString(fl cli.Flag, v cty.Value) (string, error) {
	if v.IsNull() || !v.IsKnown() {
		return "", errors.New("value is null")
	}
	switch fl.(type) {
	case *cli.StringFlag, *cli.PathFlag:
		if v.Type() != cty.String {
			return "", fmt.Errorf("want a string, got %s", v.Type().FriendlyName())
		}
		return v.AsString(), nil
	case *cli.BoolFlag:
		if v.Type() != cty.Bool {
			return "", fmt.Errorf("want true or false, got %s", v.Type().FriendlyName())
		}
		if v.True() {
			return "true", nil
		}
		return "false", nil
	case *cli.IntFlag, *cli.Int64Flag, *cli.UintFlag:
		if v.Type() != cty.Number {
			return "", fmt.Errorf("want a whole number, got %s", v.Type().FriendlyName())
		}
		bf := v.AsBigFloat()
		if !bf.IsInt() {
			return "", fmt.Errorf("want a whole number, got %s", bf.Text('g', -1))
		}
		i, _ := bf.Int(new(big.Int))
		return i.String(), nil
	case *cli.Float64Flag:
		if v.Type() != cty.Number {
			return "", fmt.Errorf("want a number, got %s", v.Type().FriendlyName())
		}
		return v.AsBigFloat().Text('g', -1), nil
	case *cli.DurationFlag:
		if v.Type() != cty.String {
			return "", fmt.Errorf("want a duration string such as \"30s\", got %s", v.Type().FriendlyName())
		}
		if _, err := time.ParseDuration(v.AsString()); err != nil {
			return "", fmt.Errorf("bad duration %q", v.AsString())
		}
		return v.AsString(), nil
	}
	return "", fmt.Errorf("flag type %T cannot come from the file", fl)
}

// pools decodes the file's pool blocks.
func (f *configFile) pools() ([]nodepool.Pool, error) {
	ps, err := nodepool.DecodePools(&hclsyntax.Body{Blocks: f.blocks, SrcRange: f.body.SrcRange, EndRange: f.body.EndRange})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.path, err)
	}
	return ps, nil
}
