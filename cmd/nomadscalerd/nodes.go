package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	nomadapi "github.com/hashicorp/nomad/api"
	"github.com/urfave/cli/v2"

	"github.com/nomadscalerd/nomadscalerd/nodepool"
)

// nodesCommand groups the node pool subcommands.
func nodesCommand() *cli.Command {
	return &cli.Command{
		Name:  "nodes",
		Usage: "inspect node pools",
		Subcommands: []*cli.Command{{
			Name:  "plan",
			Usage: "show what the pool controller would decide now, without acting",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "config", Required: true, Usage: "HCL config file holding the pool blocks"},
				&cli.StringFlag{Name: "nomad-addr", EnvVars: []string{"NOMAD_ADDR"}, Usage: "Nomad HTTP address"},
				&cli.StringFlag{Name: "nomad-token", EnvVars: []string{"NOMAD_TOKEN"}, Usage: "Nomad ACL token"},
				&cli.StringSliceFlag{Name: "pool", Usage: "only these pools (default: all)"},
				&cli.BoolFlag{Name: "json", Usage: "print decisions as JSON"},
			},
			Action: nodesPlanAction,
		}},
	}
}

func nodesPlanAction(c *cli.Context) error {
	src, err := os.ReadFile(c.String("config"))
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	pools, err := nodepool.ParsePools(src, c.String("config"))
	if err != nil {
		return err
	}
	cfg := nomadapi.DefaultConfig()
	if a := c.String("nomad-addr"); a != "" {
		cfg.Address = a
	}
	if t := c.String("nomad-token"); t != "" {
		cfg.SecretID = t
	}
	client, err := nomadapi.NewClient(cfg)
	if err != nil {
		return fmt.Errorf("nomad client: %w", err)
	}
	// Plan never acts, so the drainer refuses and the stores start empty:
	// idle streaks and in-flight actions live in the daemon's database.
	ctl, err := nodepool.NewController(nodepool.Deps{
		Nomad: nodepool.NewNomadAdapter(client, ""), Drainer: refuseDrainer{},
		Idle: nodepool.NewMemIdleStore(), Journal: nodepool.NewMemJournal(),
		Chooser: nodepool.NewMIPChooser(nil),
	})
	if err != nil {
		return err
	}
	only := map[string]bool{}
	for _, p := range c.StringSlice("pool") {
		only[p] = true
	}
	var decisions []nodepool.Decision
	for _, p := range pools {
		if len(only) > 0 && !only[p.Name] {
			continue
		}
		d, err := ctl.Plan(c.Context, p)
		if err != nil {
			return fmt.Errorf("plan pool %s: %w", p.Name, err)
		}
		decisions = append(decisions, d)
	}
	if len(only) > 0 && len(decisions) != len(only) {
		return fmt.Errorf("unknown pool in %v", c.StringSlice("pool"))
	}
	if c.Bool("json") {
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		return enc.Encode(decisions)
	}
	for _, d := range decisions {
		printDecision(c.App.Writer, d)
	}
	fmt.Fprintln(c.App.Writer, "note: idle counters are not loaded here, so no idle drain is planned")
	return nil
}

func printDecision(w io.Writer, d nodepool.Decision) {
	fmt.Fprintf(w, "pool %s: %d nodes, %d schedulable", d.Pool, d.Nodes, d.Schedulable)
	if d.Headroom.Required > 0 {
		fmt.Fprintf(w, ", headroom %d free + %d pending of %d units", d.Headroom.Free, d.Headroom.Pending, d.Headroom.Required)
	}
	fmt.Fprintln(w)
	for _, l := range d.ScaleOut {
		spot := ""
		if l.Spot {
			spot = " spot"
		}
		fmt.Fprintf(w, "  scale out: %d × %s%s at %.4g each (%s, %s)\n", l.Count, l.InstanceType, spot, l.UnitPrice, d.ScaleOutReason, d.Method)
	}
	for _, dr := range d.Drains {
		fmt.Fprintf(w, "  drain: %s (%s): %s\n", dr.NodeName, dr.NodeID, dr.Reason)
	}
	for _, s := range d.Steps {
		fmt.Fprintf(w, "  %s: %s\n", s.Action, s.Reason)
	}
	fmt.Fprintf(w, "  reason: %s\n", strings.TrimSpace(d.Reason))
}

// refuseDrainer guards the plan command: planning must never drain.
type refuseDrainer struct{}

func (refuseDrainer) Drain(context.Context, string, nodepool.DrainOptions) error {
	return errors.New("nodes plan never drains")
}

func (refuseDrainer) SetEligibility(context.Context, string, bool) error {
	return errors.New("nodes plan never changes eligibility")
}
