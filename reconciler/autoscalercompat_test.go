package reconciler

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// These tests read policies the way nomad-autoscaler v0.4.7 accepts them
// (its own test fixtures, policy/file/test-fixtures, and its Nomad policy
// source's validation, policy/nomad/validate.go): a policy it runs must not
// be refused here for how it is written.

// fileWith is a policy file of one scaling block for default/shop/web whose
// policy body is body.
func fileWith(body string) string {
	return `scaling "web" {
  enabled = true
  min     = 1
  max     = 10
  policy {
` + body + `
    target "nomadscaler" {
      job   = "shop"
      group = "web"
    }
  }
}
`
}

// onlyPolicy parses src as a policy file holding one scaling block and
// checks it as the daemon does.
func onlyPolicy(t *testing.T, src string) Policy {
	t.Helper()
	fps := ParseScalingFile([]byte(src), "web.hcl")
	if len(fps) != 1 {
		t.Fatalf("got %d entries, want 1", len(fps))
	}
	if fps[0].Err != nil {
		t.Fatalf("file entry: %v", fps[0].Err)
	}
	p, err := ParsePolicy(fps[0].Policy, Defaults{CacheSize: 10, ForecastHorizon: 60})
	if err != nil {
		t.Fatalf("policy refused: %v", err)
	}
	return p
}

func TestATargetValueStrategyWrittenWithQuotedNumbersIsReadAsNomadAutoscalerReadsIt(t *testing.T) {
	// nomad-autoscaler's strategy config is a map of strings: its own
	// fixtures write target = "80", and its target-value plugin parses it.
	p := onlyPolicy(t, fileWith(`
    check "cpu" {
      source = "nomad-apm"
      query  = "avg_cpu"
      strategy "target-value" {
        target    = "80"
        threshold = "0.05"
      }
    }`))
	if p.Target.CapacityPerReplica != 80 || p.Checks[0].TargetValue != 80 || p.Checks[0].Threshold != 0.05 {
		t.Errorf("capacity %v target %v threshold %v, want 80, 80 and 0.05", p.Target.CapacityPerReplica, p.Checks[0].TargetValue, p.Checks[0].Threshold)
	}
	// Quoted or not, what is no positive number stays refused.
	for _, bad := range []string{`"eighty"`, `"NaN"`, `"-5"`, `"+Inf"`} {
		fps := ParseScalingFile([]byte(fileWith(`
    check "cpu" {
      source = "nomad-apm"
      query  = "avg_cpu"
      strategy "target-value" {
        target = `+bad+`
      }
    }`)), "web.hcl")
		if len(fps) != 1 || fps[0].Err != nil {
			t.Fatalf("target %s: entries %+v", bad, fps)
		}
		if _, err := ParsePolicy(fps[0].Policy, Defaults{CacheSize: 10, ForecastHorizon: 60}); err == nil {
			t.Errorf("target %s was accepted", bad)
		}
	}
}

func TestCooldownOnScaleUpIsAcceptedAsNomadAutoscalerAcceptsIt(t *testing.T) {
	p := onlyPolicy(t, fileWith(`
    cooldown             = "1m"
    cooldown_on_scale_up = "10s"
    check "requests" {
      source = "nomad-apm"
      query  = "avg_cpu"
    }`))
	if p.Cooldown != time.Minute {
		t.Errorf("cooldown %s, want 1m", p.Cooldown)
	}
	// nomad-autoscaler refuses one that is no duration; so do we.
	fps := ParseScalingFile([]byte(fileWith(`
    cooldown_on_scale_up = "soon"
    check "requests" {
      source = "nomad-apm"
      query  = "avg_cpu"
    }`)), "web.hcl")
	if len(fps) != 1 || fps[0].Err != nil {
		t.Fatalf("entries %+v", fps)
	}
	if _, err := ParsePolicy(fps[0].Policy, Defaults{CacheSize: 10, ForecastHorizon: 60}); err == nil {
		t.Error(`cooldown_on_scale_up = "soon" was accepted`)
	}
}

func TestACheckWithoutASourceReadsNomadAPMAsNomadAutoscalerDoes(t *testing.T) {
	p := onlyPolicy(t, fileWith(`
    check "cpu" {
      query = "avg_cpu-allocated"
      strategy "target-value" {
        target = 70
      }
    }`))
	if p.Checks[0].Source != "nomad-apm" {
		t.Errorf("source %q, want nomad-apm", p.Checks[0].Source)
	}
}

// fileScaling is a policy file of one scaling block for default/shop/web
// whose scaling block (before its policy) holds head and whose policy
// body holds body.
func fileScaling(head, body string) string {
	return `scaling "web" {
` + head + `
  policy {
` + body + `
    check "cpu" {
      source = "nomad-apm"
      query  = "avg_cpu"
      strategy "target-value" {
        target = 70
      }
    }
    target "nomadscaler" {
      job   = "shop"
      group = "web"
    }
  }
}
`
}

// parsedFile parses src as a policy file of one scaling block and checks
// it as the daemon does, returning the daemon's verdict.
func parsedFile(t *testing.T, src string) (Policy, error) {
	t.Helper()
	fps := ParseScalingFile([]byte(src), "web.hcl")
	if len(fps) != 1 {
		t.Fatalf("got %d entries, want 1", len(fps))
	}
	if fps[0].Err != nil {
		return Policy{}, fps[0].Err
	}
	return ParsePolicy(fps[0].Policy, Defaults{CacheSize: 10, ForecastHorizon: 60})
}

func TestAFilePolicyWithoutEnabledIsDisabledAsNomadAutoscalerReadsIt(t *testing.T) {
	// nomad-autoscaler decodes a file's enabled as an optional bool
	// (false when unwritten) and skips a disabled file policy.
	p, err := parsedFile(t, fileScaling(`  min = 1
  max = 10`, ""))
	if err != nil {
		t.Fatal(err)
	}
	if p.Enabled {
		t.Error("a file policy without enabled runs; nomad-autoscaler leaves it disabled")
	}
	// The target's enabled still decides for nomadscalerd.
	p, err = parsedFile(t, strings.Replace(fileScaling(`  min = 1
  max = 10`, ""), `group = "web"`, `group = "web"
      enabled = true`, 1))
	if err != nil {
		t.Fatal(err)
	}
	if !p.Enabled {
		t.Error("target enabled = true did not enable a file policy without a scaling enabled")
	}
}

func TestAFilePolicyOfTypeClusterOrOfNoTypeScalesTheGroupItsTargetNames(t *testing.T) {
	// In a file nomad-autoscaler takes a missing type as "cluster"; the
	// type picks only its evaluation queue, the target what is scaled.
	for _, typ := range []string{"", `type = "cluster"`, `type = "horizontal"`} {
		p, err := parsedFile(t, fileScaling(`  enabled = true
  min = 1
  max = 10
  `+typ, ""))
		if err != nil {
			t.Errorf("%q: %v", typ, err)
			continue
		}
		if p.Key != "default/shop/web" || !p.Enabled {
			t.Errorf("%q: key %s enabled %v, want default/shop/web enabled", typ, p.Key, p.Enabled)
		}
	}
	// A type no queue of nomad-autoscaler reads is refused, naming it.
	_, err := parsedFile(t, fileScaling(`  enabled = true
  min = 1
  max = 10
  type = "horizonal"`, ""))
	if err == nil || !strings.Contains(err.Error(), `type "horizonal"`) {
		t.Errorf("type horizonal: %v, want a reason naming the type", err)
	}
}

func TestAnEvaluationIntervalOfZeroIsNomadAutoscalersDefaultOfTenSeconds(t *testing.T) {
	for _, v := range []string{`"0s"`, `"0"`, `0`} {
		p, err := parsedFile(t, fileWith(`    evaluation_interval = `+v+`
    check "requests" {
      query = "avg_cpu"
    }`))
		if err != nil {
			t.Errorf("evaluation_interval = %s refused: %v", v, err)
			continue
		}
		if p.EvaluationInterval != 10*time.Second {
			t.Errorf("evaluation_interval = %s: %s, want 10s", v, p.EvaluationInterval)
		}
	}
	// nomad-autoscaler's ticker panics on a negative one: refused, named.
	_, err := parsedFile(t, fileWith(`    evaluation_interval = "-5s"
    check "requests" {
      query = "avg_cpu"
    }`))
	if err == nil || !strings.Contains(err.Error(), "evaluation_interval") {
		t.Errorf("evaluation_interval -5s: %v, want a reason naming evaluation_interval", err)
	}
}

func TestACooldownOfZeroIsTheUnwrittenDefaultAsInNomadAutoscaler(t *testing.T) {
	// nomad-autoscaler replaces a cooldown of 0 by its default: 0 is no
	// "no hold", it is "unwritten".
	p, err := parsedFile(t, fileWith(`    cooldown = "0s"
    check "requests" {
      query = "avg_cpu"
    }`))
	if err != nil {
		t.Fatal(err)
	}
	if p.CooldownSet || p.Cooldown != DefaultCooldown {
		t.Errorf("cooldown %s written %v, want the unwritten default %s", p.Cooldown, p.CooldownSet, DefaultCooldown)
	}
	if got := p.ScaleDownCooldown(8 * time.Second); got != 8*time.Second {
		t.Errorf("scale-down hold %s with replicas back in 8s, want 8s", got)
	}
}

func TestAStrategyKeyTargetValueDoesNotReadIsIgnoredAsNomadAutoscalerIgnoresIt(t *testing.T) {
	p, err := parsedFile(t, fileWith(`
    check "cpu" {
      query = "avg_cpu"
      strategy "target-value" {
        target = 70
        note   = "kept for the dashboard"
      }
    }`))
	if err != nil {
		t.Fatalf("a strategy with a key target-value does not read was refused: %v", err)
	}
	if p.Target.CapacityPerReplica != 70 {
		t.Errorf("capacity %v, want 70", p.Target.CapacityPerReplica)
	}
	// The step limits target-value does read still cannot be planned.
	_, err = parsedFile(t, fileWith(`
    check "cpu" {
      query = "avg_cpu"
      strategy "target-value" {
        target       = 70
        max_scale_up = 3
      }
    }`))
	if err == nil || !strings.Contains(err.Error(), "max_scale_up") {
		t.Errorf("max_scale_up in the strategy: %v, want a reason naming it", err)
	}
}

func TestATargetNamingItsGroupWithTheNomadTargetsKeysIsRead(t *testing.T) {
	// nomad-autoscaler's Nomad target names a group with Namespace, Job and
	// Group; the seed's plugin reads them before namespace, job and group.
	src := strings.Replace(fileWith(`
    check "cpu" {
      query = "avg_cpu"
    }`), `job   = "shop"
      group = "web"`, `Namespace = "prod"
      Job       = "shop"
      Group     = "web"`, 1)
	p, err := parsedFile(t, src)
	if err != nil {
		t.Fatalf("Namespace, Job and Group refused: %v", err)
	}
	if p.Key != "prod/shop/web" {
		t.Errorf("key %s, want prod/shop/web", p.Key)
	}
	// Two spellings naming two groups cannot both be meant.
	src = strings.Replace(fileWith(`
    check "cpu" {
      query = "avg_cpu"
    }`), `group = "web"`, `group = "web"
      Group = "api"`, 1)
	if _, err := parsedFile(t, src); err == nil || !strings.Contains(err.Error(), "Group") {
		t.Errorf("group web and Group api: %v, want a reason naming Group", err)
	}
	// In a job's policy they must name the job's own group, as the
	// lower-case keys must.
	sp := seedPolicy()
	delete(targetBody(sp), "job")
	targetBody(sp)["Job"] = "api"
	if _, err := ParsePolicy(sp, Defaults{CacheSize: 10, ForecastHorizon: 60}); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Errorf("a job's policy with Job naming another job: %v, want a mismatch", err)
	}
}

func TestAMinOrMaxThatIsNoWholeNumberIsRefusedNotTruncated(t *testing.T) {
	for _, head := range []string{"  enabled = true\n  min = 1.5\n  max = 10", "  enabled = true\n  min = 1\n  max = 9.9"} {
		_, err := parsedFile(t, fileScaling(head, ""))
		if err == nil || !strings.Contains(err.Error(), "whole number") {
			t.Errorf("%q: %v, want a refusal asking for a whole number", head, err)
		}
	}
}

func TestTwoScalingBlocksOfOneNameInAFileAreBothRefused(t *testing.T) {
	// nomad-autoscaler keys a file's policies by name: of two blocks of one
	// name it runs the last and drops the first without a word.
	src := fileScaling("  enabled = true\n  min = 1\n  max = 10", "") +
		strings.Replace(fileScaling("  enabled = true\n  min = 1\n  max = 10", ""), `group = "web"`, `group = "api"`, 1)
	fps := ParseScalingFile([]byte(src), "web.hcl")
	if len(fps) != 2 {
		t.Fatalf("got %d entries, want 2", len(fps))
	}
	for _, fp := range fps {
		if fp.Err == nil || !strings.Contains(fp.Err.Error(), `scaling "web"`) {
			t.Errorf("%s: %v, want a refusal naming scaling \"web\"", fp.Where(), fp.Err)
		}
	}
}

func TestAJSONPolicyFileIsReadAsNomadAutoscalerReadsIt(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "web.json"), `{
  "scaling": {
    "web": {
      "enabled": true,
      "min": 1,
      "max": 10,
      "policy": {
        "evaluation_interval": "5s",
        "check": {
          "cpu": {
            "source": "nomad-apm",
            "query": "avg_cpu-allocated",
            "strategy": {"target-value": {"target": "70"}}
          }
        },
        "target": {
          "nomadscaler": {"job": "shop", "group": "web", "seasonality": ["24h"]}
        }
      }
    }
  }
}`)
	writeFile(t, filepath.Join(dir, "z-broken.json"), `{"scaling": `)
	d, err := NewPolicyDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	fps, err := d.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(fps) != 2 {
		t.Fatalf("entries %+v, want two", fps)
	}
	if fps[0].Err != nil || fps[0].Where() != filepath.Join(dir, "web.json")+":3" {
		t.Fatalf("web.json: %s %v", fps[0].Where(), fps[0].Err)
	}
	p, err := ParsePolicy(fps[0].Policy, Defaults{CacheSize: 10, ForecastHorizon: 60})
	if err != nil {
		t.Fatal(err)
	}
	if p.Key != "default/shop/web" || !p.Enabled || p.Max != 10 || p.EvaluationInterval != 5*time.Second || p.Target.CapacityPerReplica != 70 || len(p.Target.Seasonality) != 1 {
		t.Errorf("read %+v", p)
	}
	if fps[1].Err == nil || fps[1].File != filepath.Join(dir, "z-broken.json") {
		t.Errorf("a JSON file that does not parse: %s %v, want it reported", fps[1].Where(), fps[1].Err)
	}
}
