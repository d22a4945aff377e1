package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/nomadscalerd/nomadscalerd/reconciler"
)

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "show policies, current plans and the last action of a running daemon (GET /v1/status)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "addr", EnvVars: []string{"NOMADSCALERD_ADDR"}, Value: "http://127.0.0.1:8000", Usage: "the daemon's HTTP address"},
			&cli.StringFlag{Name: "token", EnvVars: []string{"NOMADSCALERD_TOKEN"}, Usage: "the daemon's bearer token"},
			&cli.BoolFlag{Name: "json", Usage: "print the raw JSON"},
		},
		Action: func(c *cli.Context) error {
			req, err := http.NewRequestWithContext(c.Context, "GET", strings.TrimRight(c.String("addr"), "/")+"/v1/status", nil)
			if err != nil {
				return err
			}
			if t := c.String("token"); t != "" {
				req.Header.Set("Authorization", "Bearer "+t)
			}
			res, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
			if err != nil {
				return fmt.Errorf("status: %w", err)
			}
			defer res.Body.Close()
			body, err := io.ReadAll(res.Body)
			if err != nil {
				return fmt.Errorf("status: %w", err)
			}
			if res.StatusCode != http.StatusOK {
				return fmt.Errorf("status: %s: %s", res.Status, strings.TrimSpace(string(body)))
			}
			if c.Bool("json") {
				_, err := c.App.Writer.Write(body)
				return err
			}
			var st reconciler.Status
			if err := json.Unmarshal(body, &st); err != nil {
				return fmt.Errorf("status: decode: %w", err)
			}
			printStatus(c.App.Writer, st)
			return nil
		},
	}
}

func printStatus(w io.Writer, st reconciler.Status) {
	role := "follower"
	if st.Leader {
		role = "leader"
	}
	fmt.Fprintf(w, "role: %s   time: %s\n\n", role, st.Time.Format(time.RFC3339))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "POLICY\tMIN\tMAX\tDESIRED\tPLAN NOW\tFLOOR\tPLAN\tTUNED\tLAST DECISION\tLAST ACTION")
	for _, p := range st.Policies {
		desired, planNow, floor, planID, tuned, decision, action := "-", "-", "-", "-", "-", "-", "-"
		if p.LastDecision != nil {
			desired = fmt.Sprint(p.LastDecision.Desired)
			floor = fmt.Sprint(p.LastDecision.Floor)
			decision = p.LastDecision.Action + ": " + p.LastDecision.Reason
		}
		if t := p.Tuning; t != nil {
			tuned = fmt.Sprintf("margin %g step %s (cost %.0f vs %.0f, unmet %.0f vs %.0f, %s)", t.ForecastMargin, t.ModelStep, t.Cost, t.PolicyCost, t.Unmet, t.PolicyUnmet, t.At.Format(time.TimeOnly))
		}
		if p.PlanValueNow != nil {
			planNow = fmt.Sprint(*p.PlanValueNow)
		}
		if p.Plan != nil {
			planID = fmt.Sprintf("%s %v", p.Plan.ID, p.Plan.Desired)
		}
		if p.LastAction != nil {
			action = fmt.Sprintf("%s %s %s", p.LastAction.Time.Format(time.TimeOnly), p.LastAction.Kind, p.LastAction.State)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.Policy.Key, p.Policy.Min, p.Policy.Max, desired, planNow, floor, planID, tuned, decision, action)
	}
	tw.Flush()
	for _, p := range st.Policies {
		for _, msg := range p.Warnings {
			fmt.Fprintf(w, "\nWARNING %s: %s", p.Policy.Key, msg)
		}
	}
	// Sorted, so that two runs over the same policies print the same.
	for _, k := range slices.Sorted(maps.Keys(st.Invalid)) {
		fmt.Fprintf(w, "\nINVALID %s: %s", k, st.Invalid[k])
	}
	if len(st.Invalid) > 0 || slices.ContainsFunc(st.Policies, func(p reconciler.PolicyStatus) bool { return len(p.Warnings) > 0 }) {
		fmt.Fprintln(w)
	}
}
