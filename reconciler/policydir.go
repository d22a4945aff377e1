package reconciler

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	hcljson "github.com/hashicorp/hcl/v2/json"
	nomadapi "github.com/hashicorp/nomad/api"
)

// FilePolicy is one `scaling "name" {}` block of a policy directory, in the
// form Nomad's API returns a job's policy, or the reason it could not be
// read.
type FilePolicy struct {
	// File and Line locate the block (Line 0: the file as a whole); a
	// malformed policy is reported under Where().
	File   string
	Line   int
	Name   string
	Policy *nomadapi.ScalingPolicy
	Err    error
}

// Where is "file:line", or the file when the file as a whole is at fault.
func (fp FilePolicy) Where() string {
	if fp.Line == 0 {
		return fp.File
	}
	return fmt.Sprintf("%s:%d", fp.File, fp.Line)
}

// PolicyDir reads scaling policies from the .hcl files of a directory, as
// nomad-autoscaler's policy_dir is laid out: each file holds any number of
// `scaling "name" { enabled, min, max, policy { ... } }` blocks, and the
// target "nomadscaler" block names the group with namespace, job and group.
type PolicyDir struct {
	dir string
}

// NewPolicyDir reads dir; it must be a directory.
func NewPolicyDir(dir string) (*PolicyDir, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("policy dir: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("policy dir %s is not a directory", dir)
	}
	return &PolicyDir{dir: dir}, nil
}

// Dir is the directory read.
func (d *PolicyDir) Dir() string { return d.dir }

// files are the directory's policy files, sorted, so every listing and
// every report comes in one order.
func (d *PolicyDir) files() ([]os.DirEntry, error) {
	entries, err := os.ReadDir(d.dir)
	if err != nil {
		return nil, fmt.Errorf("policy dir: %w", err)
	}
	var out []os.DirEntry
	for _, e := range entries {
		ext := filepath.Ext(e.Name())
		regular := e.Type().IsRegular()
		if e.Type()&os.ModeSymlink != 0 { // followed, as nomad-autoscaler does
			fi, err := os.Stat(filepath.Join(d.dir, e.Name()))
			regular = err == nil && fi.Mode().IsRegular()
		}
		if regular && (ext == ".hcl" || ext == ".json") {
			out = append(out, e)
		}
	}
	return out, nil // os.ReadDir sorts by name
}

// Fingerprint changes when a policy file is added, removed or rewritten:
// polling it is how edits are noticed without another dependency.
func (d *PolicyDir) Fingerprint() (string, error) {
	files, err := d.files()
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, e := range files {
		fi, err := os.Stat(filepath.Join(d.dir, e.Name())) // a link's target
		if err != nil {
			// Removed between the listing and now: the next poll sees it.
			continue
		}
		fmt.Fprintf(&b, "%s\x00%d\x00%d\n", e.Name(), fi.Size(), fi.ModTime().UnixNano())
	}
	return b.String(), nil
}

// List reads every policy of the directory. A file that does not parse is
// one entry with Err; so is each scaling block that cannot be read. Only a
// directory that cannot be listed is an error.
func (d *PolicyDir) List() ([]FilePolicy, error) {
	files, err := d.files()
	if err != nil {
		return nil, err
	}
	var out []FilePolicy
	for _, e := range files {
		path := filepath.Join(d.dir, e.Name())
		src, err := os.ReadFile(path)
		if err != nil {
			out = append(out, FilePolicy{File: path, Err: err})
			continue
		}
		if filepath.Ext(path) == ".json" {
			out = append(out, ParseScalingFileJSON(src, path)...)
			continue
		}
		out = append(out, ParseScalingFile(src, path)...)
	}
	return out, nil
}

// ParseScalingFile reads the top-level scaling blocks of one policy file.
func ParseScalingFile(src []byte, filename string) []FilePolicy {
	f, diags := hclsyntax.ParseConfig(src, filename, hcl.Pos{Line: 1, Column: 1})
	if diags.HasErrors() {
		return []FilePolicy{{File: filename, Err: errors.New(firstError(diags))}}
	}
	body := f.Body.(*hclsyntax.Body)
	var out []FilePolicy
	for _, name := range sortedAttrNames(body) {
		out = append(out, FilePolicy{File: filename, Line: body.Attributes[name].SrcRange.Start.Line, Err: fmt.Errorf("unexpected attribute %q: a policy file holds scaling blocks", name)})
	}
	for _, blk := range body.Blocks {
		line := blk.TypeRange.Start.Line
		if blk.Type != "scaling" {
			out = append(out, FilePolicy{File: filename, Line: line, Err: fmt.Errorf("unexpected block %q: a policy file holds scaling blocks", blk.Type)})
			continue
		}
		fp := FilePolicy{File: filename, Line: line, Name: label(blk)}
		fp.Policy, fp.Err = fileScalingPolicy(blk.Body, fp.Name)
		out = append(out, fp)
	}
	refuseRepeatedNames(out)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Line < out[j].Line })
	return out
}

// refuseRepeatedNames refuses every scaling block of a file whose name
// another block of the file has: nomad-autoscaler keys a file's policies
// by name and keeps the last (policy/file/parse.go:27), dropping the
// others without a word, so no one reading would know which was meant.
func refuseRepeatedNames(fps []FilePolicy) {
	lines := map[string][]string{}
	for _, fp := range fps {
		if fp.Name != "" { // only scaling blocks are named
			lines[fp.Name] = append(lines[fp.Name], strconv.Itoa(fp.Line))
		}
	}
	for i, fp := range fps {
		if at := lines[fp.Name]; fp.Name != "" && len(at) > 1 {
			fps[i].Policy = nil
			fps[i].Err = fmt.Errorf("scaling %q is declared %d times in this file (lines %s); nomad-autoscaler would run only the last: name each once", fp.Name, len(at), strings.Join(at, ", "))
		}
	}
}

// ParseScalingFileJSON is ParseScalingFile for a file in HCL's JSON
// syntax: nomad-autoscaler reads a policy_dir's .json files so
// (policy/file/source.go:127, hclsimple picks the syntax by extension).
func ParseScalingFileJSON(src []byte, filename string) []FilePolicy {
	f, diags := hcljson.Parse(src, filename)
	if diags.HasErrors() {
		return []FilePolicy{{File: filename, Err: errors.New(firstError(diags))}}
	}
	content, rest, diags := f.Body.PartialContent(&hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{{Type: "scaling", LabelNames: []string{"name"}}}})
	if diags.HasErrors() {
		return []FilePolicy{{File: filename, Err: errors.New(firstError(diags))}}
	}
	var out []FilePolicy
	attrs, diags := rest.JustAttributes()
	if diags.HasErrors() {
		out = append(out, FilePolicy{File: filename, Err: errors.New(firstError(diags))})
	}
	for _, a := range attrs {
		out = append(out, FilePolicy{File: filename, Line: a.Range.Start.Line, Err: fmt.Errorf("unexpected attribute %q: a policy file holds scaling blocks", a.Name)})
	}
	for _, blk := range content.Blocks {
		fp := FilePolicy{File: filename, Line: blk.DefRange.Start.Line, Name: blk.Labels[0]}
		m, err := schemaBodyMap(blk.Body, scalingBlocks)
		if err == nil {
			fp.Policy, err = fileScalingPolicyMap(m, fp.Name)
		}
		fp.Err = err
		out = append(out, fp)
	}
	refuseRepeatedNames(out)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Line < out[j].Line })
	return out
}

// blockKind is what a block type holds, for syntaxes (JSON) that cannot
// tell a block from an attribute without being told.
type blockKind struct {
	labelled bool
	inner    map[string]blockKind
}

// scalingBlocks are the blocks a scaling block of a policy file may hold,
// and theirs.
var scalingBlocks = map[string]blockKind{
	"policy": {inner: map[string]blockKind{
		"check":  {labelled: true, inner: map[string]blockKind{"strategy": {labelled: true}}},
		"target": {labelled: true, inner: map[string]blockKind{"event": {labelled: true}}},
	}},
}

// schemaBodyMap is bodyMap for any HCL syntax, told which names are
// blocks: a JSON object under any other name is an unsupported value.
func schemaBodyMap(b hcl.Body, kinds map[string]blockKind) (map[string]any, error) {
	schema := &hcl.BodySchema{}
	for _, name := range slices.Sorted(maps.Keys(kinds)) {
		h := hcl.BlockHeaderSchema{Type: name}
		if kinds[name].labelled {
			h.LabelNames = []string{"name"}
		}
		schema.Blocks = append(schema.Blocks, h)
	}
	content, rest, diags := b.PartialContent(schema)
	if diags.HasErrors() {
		return nil, errors.New(firstError(diags))
	}
	attrs, diags := rest.JustAttributes()
	if diags.HasErrors() {
		return nil, errors.New(firstError(diags))
	}
	m := map[string]any{}
	names := slices.Sorted(maps.Keys(attrs))
	sort.SliceStable(names, func(i, j int) bool { // in file order: the same error every time
		return attrs[names[i]].Range.Start.Line < attrs[names[j]].Range.Start.Line
	})
	for _, name := range names {
		attr := attrs[name]
		g, err := literalValue(name, attr.Expr, attr.Range.Start.Line)
		if err != nil {
			return nil, err
		}
		m[name] = g
	}
	for _, blk := range content.Blocks {
		inner, err := schemaBodyMap(blk.Body, kinds[blk.Type].inner)
		if err != nil {
			return nil, err
		}
		addBlock(m, blk.Type, blk.Labels, inner)
	}
	return m, nil
}

// fileScalingPolicy is one scaling block of a policy file in Nomad's API
// form.
func fileScalingPolicy(b *hclsyntax.Body, name string) (*nomadapi.ScalingPolicy, error) {
	m, err := bodyMap(b)
	if err != nil {
		return nil, err
	}
	return fileScalingPolicyMap(m, name)
}

// fileScalingPolicyMap is fileScalingPolicy on the block's body as read.
// The target block must name the group: outside a job nothing else does.
func fileScalingPolicyMap(m map[string]any, name string) (*nomadapi.ScalingPolicy, error) {
	sp := &nomadapi.ScalingPolicy{ID: "file:" + name, Type: "horizontal", Target: map[string]string{}}
	if err := fillScalingPolicy(sp, m, false); err != nil {
		return nil, err
	}
	if sp.Enabled == nil {
		// nomad-autoscaler decodes a file's enabled as an optional bool and
		// skips a file policy that is not enabled (sdk/policy.go:222,
		// policy/file/source.go:153): unwritten, it is off. A job's
		// scaling block is another matter: Nomad fills in true.
		off := false
		sp.Enabled = &off
	}
	targets, err := namedBlocks(sp.Policy, "target")
	if err != nil {
		return nil, err
	}
	for _, t := range targets {
		if t.name != TargetName {
			continue
		}
		ns := targetName(t.body, "namespace")
		if ns == "" {
			ns = "default"
		}
		job, group := targetName(t.body, "job"), targetName(t.body, "group")
		if job == "" || group == "" {
			return nil, fmt.Errorf("target %q: a policy file must name the group with job and group (and namespace, default \"default\"); node pools are scaled from the daemon's pool blocks", TargetName)
		}
		sp.Target = map[string]string{"Namespace": ns, "Job": job, "Group": group}
		if sp.Type == "cluster" {
			// In a file nomad-autoscaler reads a missing type as "cluster"
			// (policy/file/parse.go:40), and the type picks only which of
			// its worker queues evaluates the policy (policyeval/broker.go:136):
			// the target scales what it names, here a task group.
			sp.Type = "horizontal"
		}
	}
	return sp, nil
}

func sortedAttrNames(b *hclsyntax.Body) []string {
	names := make([]string, 0, len(b.Attributes))
	for n := range b.Attributes {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		return b.Attributes[names[i]].SrcRange.Start.Line < b.Attributes[names[j]].SrcRange.Start.Line
	})
	return names
}

// firstError is the first error diagnostic, one line with file and line.
func firstError(diags hcl.Diagnostics) string {
	for _, d := range diags {
		if d.Severity == hcl.DiagError {
			return d.Error()
		}
	}
	return diags.Error()
}
