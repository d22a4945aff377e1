package backtest

import (
	"fmt"
	"io"
	"math"
	"text/tabwriter"
)

// Goal is one of the bars predictive scaling is held to, measured on one
// replay: a measure of the predictive strategy's result over the same
// measure of another strategy's, at most Limit.
type Goal struct {
	Measure string  `json:"measure"` // unmet_requests, replica_seconds or cost
	Against string  `json:"against"` // the strategy compared with
	Limit   float64 `json:"limit"`
	// Value and Baseline are the two measures: predictive's and the other's.
	Value    float64 `json:"value"`
	Baseline float64 `json:"baseline"`
	// Ratio is predictive's measure over the other's; absent when the
	// other's is 0 (then the goal is met only if predictive's is 0 too).
	Ratio *float64 `json:"ratio,omitempty"`
	Met   bool     `json:"met"`
	// Reach, on a trace drawn from a known rate, is the least ratio any
	// strategy could expect while it also met the goals on the other
	// measure (see RateBound and Goals); OutOfReach says it is above the
	// limit: no strategy can meet this goal and those together.
	Reach      *float64 `json:"reach,omitempty"`
	OutOfReach bool     `json:"out_of_reach,omitempty"`
}

// goalBars are the bars, in the order they are printed: no dearer than
// either reactive strategy by the planner's own cost, no more than half of
// target-value's unmet requests and no more than HPA's, at most 0.9x
// HPA's replica-seconds, and within 1.2x of the cost of the oracle (the
// same program solved on the true future).
var goalBars = []struct {
	measure, against string
	limit            float64
}{
	{"cost", "target-value", 1.0},
	{"cost", "hpa", 1.0},
	{"unmet_requests", "target-value", 0.5},
	{"unmet_requests", "hpa", 1.0},
	{"replica_seconds", "hpa", 0.9},
	{"cost", "oracle", 1.2},
}

// Goals measures the predictive result against the goals whose strategies
// the replay ran; none without a predictive result. With a bound (a trace
// drawn from a known rate, else nil) each goal also says how close to its
// baseline any strategy could come while meeting the goals on the other
// measure: the unmet-request goals cap the unmet requests a replica-second
// or cost goal is reached with, the replica-second goal caps the
// replica-seconds an unmet-request goal is reached with. A goal out of
// that reach is in conflict with the others on this traffic, not missed
// for want of a better forecast.
func Goals(results []Result, bound *RateBound) []Goal {
	by := map[string]Result{}
	for _, r := range results {
		by[r.Strategy] = r
	}
	p, ok := by["predictive"]
	if !ok {
		return nil
	}
	var out []Goal
	for _, b := range goalBars {
		o, ok := by[b.against]
		if !ok {
			continue
		}
		mine, theirs := measureOf(p, b.measure), measureOf(o, b.measure)
		g := Goal{Measure: b.measure, Against: b.against, Limit: b.limit, Value: mine, Baseline: theirs}
		if theirs > 0 {
			r := mine / theirs
			g.Ratio, g.Met = &r, r <= b.limit+1e-12
		} else {
			g.Met = mine <= 0
		}
		out = append(out, g)
	}
	if bound != nil {
		reach(out, bound)
	}
	return out
}

// reach fills in the goals' Reach from bound (see Goals).
func reach(goals []Goal, bound *RateBound) {
	unmet, replicaSeconds := math.Inf(1), math.Inf(1)
	for _, g := range goals {
		switch g.Measure {
		case "unmet_requests":
			unmet = math.Min(unmet, g.Limit*g.Baseline)
		case "replica_seconds":
			replicaSeconds = math.Min(replicaSeconds, g.Limit*g.Baseline)
		}
	}
	// The least of a measure depends only on the measure, not on the
	// strategy it is compared with: each dual is solved once.
	leastOf := map[string]float64{}
	least := func(measure string) (float64, bool) {
		if v, ok := leastOf[measure]; ok {
			return v, true
		}
		var v float64
		switch {
		case measure == "unmet_requests" && !math.IsInf(replicaSeconds, 1):
			v = bound.MinUnmet(replicaSeconds)
		case measure == "replica_seconds" && !math.IsInf(unmet, 1):
			v = bound.MinReplicaSeconds(unmet)
		case measure == "cost" && !math.IsInf(unmet, 1):
			v = bound.MinCostWithin(unmet)
		case measure == "cost":
			v = bound.MinCost()
		default:
			return 0, false
		}
		leastOf[measure] = v
		return v, true
	}
	for i, g := range goals {
		if g.Baseline <= 0 {
			continue
		}
		if v, ok := least(g.Measure); ok {
			r := v / g.Baseline
			goals[i].Reach, goals[i].OutOfReach = &r, r > g.Limit+1e-12
		}
	}
}

func measureOf(r Result, measure string) float64 {
	switch measure {
	case "unmet_requests":
		return r.UnmetRequests
	case "replica_seconds":
		return float64(r.ReplicaSeconds)
	case "cost":
		return r.Cost
	}
	return math.NaN()
}

// writeGoals prints the goals under the results table.
func writeGoals(w io.Writer, goals []Goal) error {
	if len(goals) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	reachable := false
	for _, g := range goals {
		reachable = reachable || g.Reach != nil
	}
	if reachable {
		fmt.Fprintf(tw, "predictive against\tmeasure\tratio\tgoal\treach\t\n")
	} else {
		fmt.Fprintf(tw, "predictive against\tmeasure\tratio\tgoal\t\n")
	}
	for _, g := range goals {
		ratio := fmt.Sprintf("%.0f vs 0", g.Value)
		if g.Ratio != nil {
			ratio = fmt.Sprintf("%.3fx", *g.Ratio)
		}
		verdict := "met"
		if !g.Met {
			verdict = "missed"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t<= %.1fx: %s\t", g.Against, g.Measure, ratio, g.Limit, verdict)
		switch {
		case g.Reach != nil && g.OutOfReach && !g.Met:
			fmt.Fprintf(tw, "%.3fx: out of reach\t", *g.Reach)
		case g.Reach != nil:
			fmt.Fprintf(tw, "%.3fx\t", *g.Reach)
		case reachable:
			fmt.Fprintf(tw, "\t")
		}
		fmt.Fprintln(tw)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write goals: %w", err)
	}
	if !reachable {
		return nil
	}
	fmt.Fprintln(w, "reach: the least ratio any strategy could expect here, knowing every second's rate but not its draw, with the goals on the other measure met")
	for _, g := range goals {
		if g.Reach == nil || !g.OutOfReach || g.Met {
			continue
		}
		other := "unmet_requests"
		if g.Measure == "unmet_requests" {
			other = "replica_seconds"
		}
		fmt.Fprintf(w, "out of reach: %s against %s at <= %.1fx together with the %s goals (no strategy can expect under %.3fx)\n", g.Measure, g.Against, g.Limit, other, *g.Reach)
	}
	return nil
}
