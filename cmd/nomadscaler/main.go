// Command nomadscaler is the seed's Nomadscaler target plugin for
// nomad-autoscaler: it scales a Nomad task group to the counts an
// optimizer (nomadscalerd, or any service with the seed's POST /optimize)
// plans, serving them from a second-level cache. Install the binary in
// nomad-autoscaler's plugin_dir and name it in policies as
// target "nomadscaler".
//
// It is its own Go module so that nomad-autoscaler's dependencies stay out
// of nomadscalerd's.
package main

import (
	hclog "github.com/hashicorp/go-hclog"
	"github.com/hashicorp/nomad-autoscaler/plugins"
)

func main() {
	plugins.Serve(func(log hclog.Logger) interface{} { return NewPlugin(log) })
}
