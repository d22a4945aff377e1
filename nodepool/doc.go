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
package nodepool
