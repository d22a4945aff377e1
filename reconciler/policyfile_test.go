package reconciler

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestTheDemoJobFilesPolicyReadsAsTheDaemonReadsIt(t *testing.T) {
	p, err := ReadPolicyFile(filepath.Join("..", "deploy", "nomad", "demo.nomad.hcl"), Defaults{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Job != "demo" || p.Group != "web" || p.Min != 1 || p.Max != 12 || !p.Enabled {
		t.Errorf("policy %s [%d, %d] enabled %v, want demo/web [1, 12] enabled by its target", p.Key, p.Min, p.Max, p.Enabled)
	}
	if p.EvaluationInterval != 2*time.Second || p.Target.ModelStep != 2*time.Second || p.Target.MaxScaleUp != 3 {
		t.Errorf("settings not read: interval %s, model_step %s, max_scale_up %d", p.EvaluationInterval, p.Target.ModelStep, p.Target.MaxScaleUp)
	}
}

func TestABarePolicyBlockAndAScalingBlockBothRead(t *testing.T) {
	for name, src := range map[string]string{
		"policy block": `policy {
  check "requests" {
    source = "prometheus"
    query  = "q"
  }
  target "nomadscaler" {
    capacity_per_replica = 25
    seasonality          = ["24h"]
  }
}`,
		"scaling block": `scaling {
  min = 2
  max = 9
  policy {
    check "requests" {
      source = "prometheus"
      query  = "q"
    }
    target "nomadscaler" {
      capacity_per_replica = 25
      seasonality          = ["24h"]
    }
  }
}`,
	} {
		p, err := ParsePolicyHCL([]byte(src), name+".hcl", Defaults{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if p.Target.CapacityPerReplica != 25 || len(p.Target.Seasonality) != 1 || p.Target.Seasonality[0] != 24*time.Hour {
			t.Errorf("%s: target %+v", name, p.Target)
		}
	}
}

func TestAPolicyFileWithoutOurTargetOrWithABadKeySaysSo(t *testing.T) {
	dir := t.TempDir()
	for name, c := range map[string]struct{ src, want string }{
		"other target": {`scaling {
  max = 3
  policy {
    check "c" {
      source = "prometheus"
      query = "q"
      strategy "target-value" { target = 1 }
    }
    target "aws-asg" {}
  }
}`, "no scaling policy with a target"},
		"bad key": {`scaling {
  max = 3
  policy {
    check "c" {
      source = "prometheus"
      query = "q"
    }
    target "nomadscaler" { floor_margni = 1 }
  }
}`, `:1: target "nomadscaler": unknown key "floor_margni"`},
		"bad orders": {`policy {
    check "c" {
      source = "prometheus"
      query = "q"
    }
    target "nomadscaler" { orders = "1,1" }
}`, `orders "1,1"`},
	} {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".hcl")
		if err := os.WriteFile(path, []byte(c.src), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := ReadPolicyFile(path, Defaults{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to mention %q", name, err, c.want)
		}
	}
}

func TestTheDefaultPolicyIsValidAndUsesTheDaemonsDefaults(t *testing.T) {
	p := DefaultPolicy(1, 100)
	if p.Target.ReplanInterval != 10*time.Second || p.Target.FloorMargin <= 0 || p.Target.StartupDelaySet {
		t.Errorf("default target %+v", p.Target)
	}
	if err := p.DeciderSettings().Validate(); err != nil {
		t.Errorf("default decider settings: %v", err)
	}
}

func TestTheSeedsPolicyFileReadsAsWrittenForTheGroupItsTargetNames(t *testing.T) {
	p, err := ReadPolicyFile(filepath.Join("testdata", "seed-web-app.hcl"), Defaults{CacheSize: 10, ForecastHorizon: 60})
	if err != nil {
		t.Fatal(err)
	}
	if p.Key != "production/web-app/frontend" || p.Min != 2 || p.Max != 20 || !p.Enabled {
		t.Errorf("policy %s [%d, %d] enabled %v, want production/web-app/frontend [2, 20]", p.Key, p.Min, p.Max, p.Enabled)
	}
	if p.Target.RequestsCheck != "cpu" || p.Target.CapacityPerReplica != 75 || p.Target.OptimizerURL != "http://optimizer:8000" {
		t.Errorf("target %+v, want cpu planned at 75 per replica", p.Target)
	}
}

func TestTheSeedsPolicyInAJobsScalingBlockIsCheckedAgainstThatJobsGroup(t *testing.T) {
	job := func(ns, name string) string {
		return `job "` + name + `" {
  namespace = "` + ns + `"
  group "frontend" {
    scaling {
      min = 2
      max = 20
      policy {
        target "nomadscaler" {
          namespace     = "production"
          job           = "web-app"
          group         = "frontend"
          optimizer_url = "http://optimizer:8000"
          cache_size    = 10
        }
        check "cpu" {
          source = "nomad-apm"
          query  = "avg_cpu_percent"
          strategy "target-value" {
            target = 75
          }
        }
      }
    }
  }
}`
	}
	p, err := ParsePolicyHCL([]byte(job("production", "web-app")), "web-app.nomad.hcl", Defaults{})
	if err != nil || p.Key != "production/web-app/frontend" {
		t.Fatalf("policy %s, %v; want production/web-app/frontend", p.Key, err)
	}
	_, err = ParsePolicyHCL([]byte(job("production", "shop")), "shop.nomad.hcl", Defaults{})
	if err == nil || !strings.Contains(err.Error(), `shop.nomad.hcl:4: target "nomadscaler": job "web-app" does not match the group the policy belongs to (production/shop/frontend)`) {
		t.Fatalf("a copied policy: err = %v, want the mismatch with file and line", err)
	}
	_, err = ParsePolicyHCL([]byte(job("default", "web-app")), "web-app.nomad.hcl", Defaults{})
	if err == nil || !strings.Contains(err.Error(), `namespace "production" does not match`) {
		t.Fatalf("another namespace: err = %v, want the mismatch", err)
	}
}

// Attributes are read in file order: with two bad ones, the first is
// reported, every time.
func TestAPolicyFileWithTwoBadAttributesIsReportedTheSameWayEveryTime(t *testing.T) {
	src := []byte(`scaling "a" {
  min = var.low
  max = var.high
  policy {
    check "requests" {
      source = "prometheus"
      query  = "q"
    }
    target "nomadscaler" {
      job   = "web"
      group = "api"
    }
  }
}
`)
	seen := map[string]bool{}
	for range 200 {
		fps := ParseScalingFile(src, "p.hcl")
		if len(fps) != 1 || fps[0].Err == nil {
			t.Fatalf("got %+v, want one entry with an error", fps)
		}
		seen[fps[0].Err.Error()] = true
	}
	if len(seen) != 1 {
		t.Fatalf("the same file was reported %d different ways: %v", len(seen), seen)
	}
}
