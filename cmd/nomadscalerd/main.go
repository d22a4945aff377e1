// Command nomadscalerd is a predictive autoscaler for HashiCorp Nomad: it
// watches Nomad, records metric history in bbolt, forecasts demand, plans
// replica counts and converges Nomad toward the plan.
package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func newApp() *cli.App {
	return &cli.App{
		Name:     "nomadscalerd",
		Usage:    "predictive autoscaler for HashiCorp Nomad",
		Version:  version,
		Flags:    globalFlags(),
		Commands: commands(),
	}
}

// commands lists every subcommand; each lives in its own file.
func commands() []*cli.Command {
	return []*cli.Command{
		versionCommand(),
		backtestCommand(),
		optimizeCommand(),
		modelCommand(),
	}
}

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print the version",
		Action: func(c *cli.Context) error {
			fmt.Fprintf(c.App.Writer, "nomadscalerd %s\n", version)
			return nil
		},
	}
}

func main() {
	if err := newApp().Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "nomadscalerd:", err)
		os.Exit(1)
	}
}
