package backtest

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
)

// Report is a backtest's outcome, as printed with --json.
type Report struct {
	Trace   string   `json:"trace"`
	Seconds int      `json:"seconds"`
	Results []Result `json:"results"`
	// Goals measure the predictive result against the others (see Goals).
	Goals []Goal `json:"goals,omitempty"`
	// Frontier, on a trace drawn from a known rate, puts each strategy's
	// replica-seconds against the least any strategy could expect with as
	// many unmet requests (see Frontier).
	Frontier []FrontierRatio `json:"frontier,omitempty"`
	// Levels split each result by the traffic's level (--by-level), if
	// asked for (see Levels).
	Levels []LevelBand `json:"levels,omitempty"`
	// Pools are the node-pool simulations (--pool-sim), if any.
	Pools []PoolResult `json:"pools,omitempty"`
}

// WriteJSON writes the report as one indented JSON document.
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

// WriteTable writes the results side by side, one strategy a row.
func (r Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "strategy\treplica_seconds\tunmet_requests\tviolation_seconds\tscale_actions\tflaps\tcost\tdecision_ms_p99\t\n")
	for _, res := range r.Results {
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%d\t%d\t%d\t%.0f\t%.3f\t\n",
			res.Strategy, res.ReplicaSeconds, res.UnmetRequests, res.ViolationSeconds, res.ScaleActions, res.Flaps, res.Cost, res.DecisionMsP99)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if err := writeGoals(w, r.Goals); err != nil {
		return err
	}
	writeFrontier(w, r.Frontier)
	if err := writeLevels(w, r.Levels); err != nil {
		return err
	}
	if len(r.Pools) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "pool\tnode_hours\tpending_allocation_seconds\tnodes_launched\tnodes_drained\tpeak_nodes\t\n")
	for _, p := range r.Pools {
		fmt.Fprintf(tw, "%s\t%.1f\t%d\t%d\t%d\t%d\t\n", p.Pool, p.NodeHours, p.PendingAllocationSeconds, p.Launches, p.Drains, p.PeakNodes)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}
