package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

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
		}, {
			Name: "status",
			Usage: "show the pools' nodes, free headroom units, idle counters, drains in flight and the last decision " +
				"(reads --db read-only: stop the daemon first, or point --db at a `db backup` copy)",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "config", Usage: "HCL config file holding the pool blocks; with it the pools' nodes are listed from Nomad"},
				&cli.StringFlag{Name: "nomad-addr", EnvVars: []string{"NOMAD_ADDR"}, Usage: "Nomad HTTP address"},
				&cli.StringFlag{Name: "nomad-token", EnvVars: []string{"NOMAD_TOKEN"}, Usage: "Nomad ACL token"},
				&cli.StringSliceFlag{Name: "pool", Usage: "only these pools (default: all)"},
				&cli.BoolFlag{Name: "json", Usage: "print the status as JSON"},
			},
			Action: nodesStatusAction,
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
	client, err := nomadClientFrom(c)
	if err != nil {
		return err
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

func nomadClientFrom(c *cli.Context) (*nomadapi.Client, error) {
	cfg := nomadapi.DefaultConfig()
	if a := c.String("nomad-addr"); a != "" {
		cfg.Address = a
	}
	if t := c.String("nomad-token"); t != "" {
		cfg.SecretID = t
	}
	client, err := nomadapi.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("nomad client: %w", err)
	}
	return client, nil
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

// poolStatus is what `nodes status` shows of one pool. Nodes and Headroom
// are live from Nomad and only present with --config; the rest comes from
// the database.
type poolStatus struct {
	Pool         string                       `json:"pool"`
	Nodes        []nodeStatus                 `json:"nodes,omitempty"`
	Headroom     *nodepool.HeadroomReport     `json:"headroom,omitempty"`
	Idle         map[string]nodepool.NodeIdle `json:"idle"`
	InFlight     []nodepool.Entry             `json:"in_flight"`
	LastDecision *nodepool.Decision           `json:"last_decision,omitempty"`
}

type nodeStatus struct {
	ID           string             `json:"id"`
	Name         string             `json:"name"`
	Status       string             `json:"status"`
	Eligible     bool               `json:"eligible"`
	Draining     bool               `json:"draining"`
	InstanceType string             `json:"instance_type,omitempty"`
	Free         nodepool.Resources `json:"free"`
	FreeUnits    int                `json:"free_units"`
	Idle         *nodepool.NodeIdle `json:"idle,omitempty"`
	// InFlight is the phase of a journalled drain of the node.
	InFlight nodepool.Phase `json:"in_flight,omitempty"`
}

func nodesStatusAction(c *cli.Context) error {
	var configured []nodepool.Pool
	if path := c.String("config"); path != "" {
		src, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("read config: %w", err)
		}
		if configured, err = nodepool.ParsePools(src, path); err != nil {
			return err
		}
	}
	db, done, err := openForInspection(c.String("db"), c.App.ErrWriter)
	if err != nil {
		return err
	}
	statuses, err := readPoolStatuses(c.Context, nodepool.StoreState{DB: db}, configured, c.StringSlice("pool"))
	done()
	if err != nil {
		return err
	}
	if len(configured) > 0 {
		client, err := nomadClientFrom(c)
		if err != nil {
			return err
		}
		adapter := nodepool.NewNomadAdapter(client, "")
		for i := range statuses {
			for _, p := range configured {
				if p.Name == statuses[i].Pool {
					if err := addLiveNodes(c.Context, adapter, p, &statuses[i]); err != nil {
						return err
					}
				}
			}
		}
	}
	if c.Bool("json") {
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		return enc.Encode(statuses)
	}
	for _, s := range statuses {
		printPoolStatus(c.App.Writer, s)
	}
	return nil
}

// readPoolStatuses gathers the database's view of the configured pools and
// of every pool the database knows, or only of the pools in only.
func readPoolStatuses(ctx context.Context, st nodepool.StoreState, configured []nodepool.Pool, only []string) ([]poolStatus, error) {
	pending, err := st.Pending(ctx)
	if err != nil {
		return nil, fmt.Errorf("read journal: %w", err)
	}
	names, err := st.KnownPools()
	if err != nil {
		return nil, err
	}
	for _, p := range configured {
		names = append(names, p.Name)
	}
	for _, e := range pending {
		names = append(names, e.Pool)
	}
	slices.Sort(names)
	names = slices.Compact(names)
	if len(only) > 0 {
		for _, o := range only {
			if !slices.Contains(names, o) {
				return nil, fmt.Errorf("unknown pool %q: neither configured nor in the database", o)
			}
		}
		names = slices.DeleteFunc(names, func(n string) bool { return !slices.Contains(only, n) })
	}
	var out []poolStatus
	for _, name := range names {
		s := poolStatus{Pool: name, InFlight: []nodepool.Entry{}}
		idle, err := st.LoadIdle(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("read idle counters of pool %s: %w", name, err)
		}
		s.Idle = idle.Nodes
		if s.Idle == nil {
			s.Idle = map[string]nodepool.NodeIdle{}
		}
		for _, e := range pending {
			if e.Pool == name {
				s.InFlight = append(s.InFlight, e)
			}
		}
		d, ok, err := st.LastDecision(name)
		if err != nil {
			return nil, err
		}
		if ok {
			s.LastDecision = &d
		}
		out = append(out, s)
	}
	return out, nil
}

// addLiveNodes lists the pool's nodes from Nomad with their free headroom
// units, idle counters and journalled drains; like the controller, nodes
// being drained do not count towards the pool's free headroom.
func addLiveNodes(ctx context.Context, view nodepool.NomadView, p nodepool.Pool, s *poolStatus) error {
	all, err := view.PoolNodes(ctx, p.Selector)
	if err != nil {
		return fmt.Errorf("pool %s: %w", p.Name, err)
	}
	phase := map[string]nodepool.Phase{}
	for _, e := range s.InFlight {
		if e.Kind == nodepool.KindDrain {
			phase[e.NodeID] = e.Phase
		}
	}
	var staying []nodepool.Node
	for _, n := range all {
		if !p.Selector.Matches(n) {
			continue
		}
		ns := nodeStatus{ID: n.ID, Name: n.Name, Status: n.Status, Eligible: n.Eligible, Draining: n.Draining,
			InstanceType: n.InstanceType, Free: n.Free(), InFlight: phase[n.ID]}
		if n.Schedulable() {
			ns.FreeUnits = nodepool.UnitsIn(n.Free(), p.Headroom.Unit)
		}
		if ni, ok := s.Idle[n.ID]; ok {
			ns.Idle = &ni
		}
		if ns.InFlight == "" {
			staying = append(staying, n)
		}
		s.Nodes = append(s.Nodes, ns)
	}
	slices.SortFunc(s.Nodes, func(a, b nodeStatus) int { return strings.Compare(a.Name, b.Name) })
	if p.Headroom.Enabled() {
		s.Headroom = &nodepool.HeadroomReport{Free: nodepool.FreeUnits(staying, p.Headroom.Unit), Required: p.Headroom.Units}
	}
	return nil
}

func printPoolStatus(w io.Writer, s poolStatus) {
	fmt.Fprintf(w, "pool %s\n", s.Pool)
	if s.Headroom != nil {
		fmt.Fprintf(w, "  headroom: %d of %d units free\n", s.Headroom.Free, s.Headroom.Required)
	}
	if len(s.Nodes) > 0 {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  NAME\tID\tSTATUS\tSCHEDULING\tTYPE\tFREE CPU\tFREE MEM\tUNITS\tIDLE\tDRAIN")
		for _, n := range s.Nodes {
			sched := "eligible"
			switch {
			case n.Draining:
				sched = "draining"
			case !n.Eligible:
				sched = "ineligible"
			}
			idle := "-"
			if n.Idle != nil {
				idle = fmt.Sprintf("%d periods", n.Idle.Periods)
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%d MHz\t%d MiB\t%d\t%s\t%s\n", n.Name, shortID(n.ID), n.Status, sched,
				cmp.Or(n.InstanceType, "-"), n.Free.CPUMHz, n.Free.MemoryMiB, n.FreeUnits, idle, cmp.Or(string(n.InFlight), "-"))
		}
		tw.Flush()
	} else {
		ids := make([]string, 0, len(s.Idle))
		for id := range s.Idle {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for _, id := range ids {
			ni := s.Idle[id]
			fmt.Fprintf(w, "  idle: node %s for %d periods since %s\n", shortID(id), ni.Periods, ni.IdleSince.Format(time.RFC3339))
		}
	}
	for _, e := range s.InFlight {
		switch e.Kind {
		case nodepool.KindDrain:
			fmt.Fprintf(w, "  in flight: drain of %s (%s) %s since %s: %s\n", cmp.Or(e.NodeName, e.NodeID), shortID(e.NodeID), e.Phase, e.At.Format(time.RFC3339), e.Reason)
		default:
			fmt.Fprintf(w, "  in flight: launch of %d × %s %s since %s: %s\n", e.Count, e.InstanceType, e.Phase, e.At.Format(time.RFC3339), e.Reason)
		}
	}
	if len(s.InFlight) == 0 {
		fmt.Fprintln(w, "  in flight: nothing")
	}
	if d := s.LastDecision; d != nil {
		fmt.Fprintf(w, "  last decision at %s: %s\n", d.At.Format(time.RFC3339), strings.TrimSpace(d.Reason))
		for _, e := range d.Errors {
			fmt.Fprintf(w, "    error: %s\n", e)
		}
	} else {
		fmt.Fprintln(w, "  last decision: none recorded")
	}
}

func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}
