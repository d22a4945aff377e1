package nodepool

import (
	"maps"
	"os"
	"strings"
	"testing"
	"time"
)

const fullPool = `
log_level = "info" # other settings of the daemon are ignored

pool "web" {
  node_pool  = "web"
  datacenter = "dc1"
  min = 2
  max = 20
  headroom {
    cpu_mhz    = 1000
    memory_mib = 512
    units      = 10
  }
  idle {
    cpu_below    = 0.3
    memory_below = 0.5
    periods      = 3
    period       = "2m"
  }
  scale_down_max_fraction = 0.2
  drain {
    deadline           = "5m"
    ignore_system_jobs = true
  }
  instance_type "m5.large" {
    cpu_mhz    = 4000
    memory_mib = 7680
    price      = 0.096
    spot_price = 0.035
    max        = 8
  }
  instance_type "m5.xlarge" {
    cpu_mhz    = 8000
    memory_mib = 15360
    price      = 0.192
  }
  spot_max_share = 0.5
  provider "command" {
    scale_out = "/usr/local/bin/scale-out"
    terminate = "/usr/local/bin/terminate"
    timeout   = "90s"
  }
}

pool "batch" {
  node_class = "batch"
  max = 5
  instance_type "c5" {
    cpu_mhz    = 4000
    memory_mib = 4096
    price      = 0.08
  }
  provider "noop" {}
}
`

func TestParsePoolsDecodesEverySettingAndFillsDefaults(t *testing.T) {
	pools, err := ParsePools([]byte(fullPool), "pools.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if len(pools) != 2 {
		t.Fatalf("got %d pools, want 2", len(pools))
	}
	web, batch := pools[0], pools[1]
	checks := []struct {
		name      string
		got, want any
	}{
		{"web selector", web.Selector, Selector{NodePool: "web", Datacenter: "dc1"}},
		{"web min", web.Min, 2},
		{"web max", web.Max, 20},
		{"web headroom", web.Headroom, Headroom{Unit: Resources{CPUMHz: 1000, MemoryMiB: 512}, Units: 10}},
		{"web idle", web.Idle, IdlePolicy{CPUBelow: 0.3, MemoryBelow: 0.5, Periods: 3, Period: 2 * time.Minute}},
		{"web fraction", web.ScaleDownMaxFraction, 0.2},
		{"web drain", web.Drain, DrainSpec{Deadline: 5 * time.Minute, IgnoreSystemJobs: true}},
		{"web types", len(web.InstanceTypes), 2},
		{"web large", web.InstanceTypes[0], InstanceType{Name: "m5.large", Resources: Resources{CPUMHz: 4000, MemoryMiB: 7680}, Price: 0.096, SpotPrice: 0.035, Max: 8}},
		{"web spot share", web.SpotMaxShare, 0.5},
		{"web provider", web.Provider, ProviderSpec{Kind: "command", ScaleOut: "/usr/local/bin/scale-out", Terminate: "/usr/local/bin/terminate", Timeout: 90 * time.Second}},
		{"batch selector", batch.Selector, Selector{NodeClass: "batch"}},
		{"batch min default", batch.Min, 0},
		{"batch headroom off", batch.Headroom.Enabled(), false},
		{"batch idle defaults", batch.Idle, IdlePolicy{CPUBelow: 0.4, MemoryBelow: 0.4, Periods: 5, Period: time.Minute}},
		{"batch fraction default", batch.ScaleDownMaxFraction, 0.10},
		{"batch drain default", batch.Drain, DrainSpec{Deadline: 15 * time.Minute}},
		{"batch spot off", batch.SpotMaxShare, 0.0},
		{"batch grace default", batch.ScaleOutGrace, 10 * time.Minute},
		{"batch provider", batch.Provider, ProviderSpec{Kind: "noop", Timeout: 2 * time.Minute}},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %+v, want %+v", c.name, c.got, c.want)
		}
	}
}

func TestParsePoolsRejectsBadSettingsNamingTheKey(t *testing.T) {
	base := func(body string) string {
		return `pool "p" {
  max = 3
  instance_type "t" {
    cpu_mhz = 1000
    memory_mib = 1024
    price = 1
  }
  provider "noop" {}
` + body + "\n}\n"
	}
	cases := []struct {
		name, src, want string
	}{
		{"bad idle period", base(`idle { period = "soon" }`), `idle.period: invalid duration "soon"`},
		{"bad drain deadline", base(`drain { deadline = "-1m" }`), `drain.deadline: invalid duration "-1m"`},
		{"fraction above one", base(`scale_down_max_fraction = 1.5`), "scale_down_max_fraction: must be between 0 and 1"},
		{"spot share negative", base(`spot_max_share = -0.1`), "spot_max_share: must be between 0 and 1"},
		{"idle threshold above one", base(`idle { cpu_below = 2 }`), "idle.cpu_below: must be between 0 and 1"},
		{"min above max", base(`min = 4`), "max: must be at least 1 and at least min (4)"},
		{"headroom without size", base(`headroom { units = 3 }`), "headroom: units need a size"},
		{"missing max", `pool "p" {
  instance_type "t" {
    cpu_mhz = 1000
    memory_mib = 1024
    price = 1
  }
  provider "noop" {}
}`, "max: is required"},
		{"no instance types", `pool "p" {
  max = 1
  provider "noop" {}
}`, "at least one instance_type block is required"},
		{"command provider without scripts", `pool "p" {
  max = 1
  instance_type "t" {
    cpu_mhz = 1000
    memory_mib = 1024
    price = 1
  }
  provider "command" { scale_out = "/x" }
}`, "scale_out and terminate are required"},
		{"unknown provider", `pool "p" {
  max = 1
  instance_type "t" {
    cpu_mhz = 1000
    memory_mib = 1024
    price = 1
  }
  provider "ssh" {}
}`, `unknown kind "ssh"`},
		{"aws provider without a group for a type", `pool "p" {
  max = 1
  instance_type "t" {
    cpu_mhz = 1000
    memory_mib = 1024
    price = 1
  }
  provider "aws" {}
}`, `instance_type "t" has no auto_scaling_group block`},
		{"aws group for an unknown type", `pool "p" {
  max = 1
  instance_type "t" {
    cpu_mhz = 1000
    memory_mib = 1024
    price = 1
  }
  provider "aws" {
    auto_scaling_group "t" { on_demand = "g" }
    auto_scaling_group "u" { on_demand = "h" }
  }
}`, `auto_scaling_group "u": no instance_type block of that name`},
		{"aws type offered on spot without a spot group", `pool "p" {
  max = 1
  spot_max_share = 0.5
  instance_type "t" {
    cpu_mhz = 1000
    memory_mib = 1024
    price = 1
    spot_price = 0.3
  }
  provider "aws" {
    auto_scaling_group "t" { on_demand = "g" }
  }
}`, `auto_scaling_group "t".spot: is required`},
		{"missing provider", `pool "p" {
  max = 1
  instance_type "t" {
    cpu_mhz = 1000
    memory_mib = 1024
    price = 1
  }
}`, "provider"},
		{"unknown attribute", base(`colour = "blue"`), "colour"},
		{"duplicate pools", base("") + base(""), `pool "p": defined twice`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParsePools([]byte(c.src), "bad.hcl")
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to mention %q", err, c.want)
			}
		})
	}
}

func TestParsePoolsMapsEachInstanceTypeOfAnAWSPoolToItsGroups(t *testing.T) {
	pools, err := ParsePools([]byte(`pool "web" {
  max = 4
  spot_max_share = 0.5
  instance_type "m5.large" {
    cpu_mhz = 4000
    memory_mib = 7680
    price = 0.096
    spot_price = 0.035
  }
  instance_type "m5.xlarge" {
    cpu_mhz = 8000
    memory_mib = 15360
    price = 0.192
  }
  provider "aws" {
    region   = "eu-west-1"
    endpoint = "http://127.0.0.1:5000"
    timeout  = "1m"
    auto_scaling_group "m5.large" {
      on_demand = "nomad-web-m5-large"
      spot      = "nomad-web-m5-large-spot"
    }
    auto_scaling_group "m5.xlarge" { on_demand = "nomad-web-m5-xlarge" }
  }
}`), "aws.hcl")
	if err != nil {
		t.Fatal(err)
	}
	got := pools[0].Provider
	want := AWSSpec{Region: "eu-west-1", Endpoint: "http://127.0.0.1:5000", Groups: map[string]AWSGroups{
		"m5.large":  {OnDemand: "nomad-web-m5-large", Spot: "nomad-web-m5-large-spot"},
		"m5.xlarge": {OnDemand: "nomad-web-m5-xlarge"},
	}}
	if got.Kind != ProviderAWS || got.Timeout != time.Minute || got.AWS == nil || got.AWS.Region != want.Region ||
		got.AWS.Endpoint != want.Endpoint || !maps.Equal(got.AWS.Groups, want.Groups) {
		t.Fatalf("provider = %+v, want kind aws, timeout 1m and %+v", got, want)
	}
}

func TestTheConfigExampleInThePackageDocParses(t *testing.T) {
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	var example []string
	for _, line := range strings.Split(string(src), "\n") {
		if rest, ok := strings.CutPrefix(line, "//\t"); ok {
			example = append(example, rest)
		}
	}
	pools, err := ParsePools([]byte(strings.Join(example, "\n")), "doc.go")
	if err != nil {
		t.Fatalf("doc example does not parse: %v", err)
	}
	if len(pools) != 1 || pools[0].Headroom.Units != 10 || pools[0].Provider.Kind != ProviderCommand {
		t.Fatalf("doc example decoded to %+v", pools)
	}
}

func TestTheAWSPoolExampleInTheREADMEParses(t *testing.T) {
	src, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(src), "### A pool on AWS")
	if !ok {
		t.Fatal(`README has no "### A pool on AWS" section`)
	}
	_, block, ok := strings.Cut(section, "```hcl\n")
	block, _, _ = strings.Cut(block, "```")
	if !ok {
		t.Fatal("the AWS section has no hcl example")
	}
	pools, err := ParsePools([]byte(block), "README.md")
	if err != nil {
		t.Fatalf("README's AWS example does not parse: %v", err)
	}
	if len(pools) != 1 || pools[0].Provider.Kind != ProviderAWS || pools[0].Provider.AWS == nil ||
		pools[0].Provider.AWS.Groups["m5.large"].Spot == "" {
		t.Fatalf("README's AWS example decoded to %+v", pools)
	}
}
