// Package nodepool owns the cluster half of nomadscalerd: it keeps a
// configured pool of Nomad client nodes large enough for its headroom and
// for blocked allocations, drains idle nodes a few at a time, and chooses
// the cheapest instance types to launch.
//
// The package is split into a pure core (headroom, idle counting, drain
// selection, bin-packing, capacity choice, Decide) that is tested with
// tables, and a Controller that observes Nomad, decides with the core and
// acts through small interfaces (NomadView, Drainer, Provider, IdleStore,
// Journal) which the daemon wires to the real Nomad client and bbolt.
// NomadAdapter implements NomadView and Drainer on the Nomad HTTP API;
// MemJournal and MemIdleStore are in-memory stand-ins for tests and dry runs.
// Providers: CommandProvider runs scripts, AWSProvider drives EC2 Auto
// Scaling groups (tested against moto through package awstest),
// NoopProvider only logs.
//
// A pool is one `pool "name" { ... }` block of the config file:
//
//	pool "web" {
//	  node_pool = "web" # node_class, datacenter: all given must match
//	  min       = 2
//	  max       = 20
//	  headroom {
//	    cpu_mhz    = 1000
//	    memory_mib = 512
//	    units      = 10
//	  }
//	  idle {
//	    cpu_below    = 0.40
//	    memory_below = 0.40
//	    periods      = 5
//	    period       = "1m"
//	  }
//	  scale_down_max_fraction = 0.10
//	  drain {
//	    deadline           = "15m"
//	    ignore_system_jobs = false
//	  }
//	  instance_type "m5.large" {
//	    cpu_mhz    = 4000
//	    memory_mib = 7680
//	    price      = 0.096
//	    spot_price = 0.035 # optional
//	    max        = 8     # optional
//	  }
//	  spot_max_share  = 0.5   # optional
//	  scale_out_grace = "10m" # launched nodes count as pending this long
//	  provider "command" {
//	    scale_out = "/opt/bin/scale-out"
//	    terminate = "/opt/bin/terminate"
//	    timeout   = "2m"
//	  }
//	}
package nodepool
