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
// the replay ran; none without a predictive result.
func Goals(results []Result) []Goal {
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
	return out
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
	fmt.Fprintf(tw, "predictive against\tmeasure\tratio\tgoal\t\n")
	for _, g := range goals {
		ratio := fmt.Sprintf("%.0f vs 0", g.Value)
		if g.Ratio != nil {
			ratio = fmt.Sprintf("%.3fx", *g.Ratio)
		}
		verdict := "met"
		if !g.Met {
			verdict = "missed"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t<= %.1fx: %s\t\n", g.Against, g.Measure, ratio, g.Limit, verdict)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write goals: %w", err)
	}
	return nil
}
