package backtest

import (
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
)

// LevelWindow is the seconds around each second whose mean demand is its
// level in a Levels breakdown: five minutes, the span over which
// mean-oracle knows the traffic's level. A second's own count scatters
// around its level, and bands of single seconds would put a steady level's
// shortfalls into the band above it, apart from the seconds that caused
// them.
const LevelWindow = 300

// LevelBand is what each strategy spent, and left unmet, in the seconds
// whose level (see LevelWindow) lay in [From, To) requests/s.
type LevelBand struct {
	From    float64 `json:"from"`
	To      float64 `json:"to"`
	Seconds int     `json:"seconds"`
	// Strategies holds one entry per result, in the report's order.
	Strategies []LevelTally `json:"strategies"`
}

// LevelTally is one strategy's part of a band: its replica-seconds,
// unmet requests and cost (scaling changes counted at the second they were
// made).
type LevelTally struct {
	Strategy       string  `json:"strategy"`
	ReplicaSeconds int64   `json:"replica_seconds"`
	UnmetRequests  float64 `json:"unmet_requests"`
	Cost           float64 `json:"cost"`
}

// Levels splits each result of a replay of demand under cfg by the
// demand's level, in bands of width requests/s, so where each strategy's
// replica-seconds and unmet requests go shows by traffic level: at a steady
// level one strategy keeps more headroom than another, around bursts it
// follows them sooner. The bands of a result add up to its totals. Only
// bands holding a second are returned, lowest first; width must be
// positive.
func Levels(cfg Config, demand []float64, results []Result, width float64) ([]LevelBand, error) {
	if !(width > 0) || math.IsInf(width, 0) {
		return nil, fmt.Errorf("level band width %g: want a positive, finite number", width)
	}
	for _, r := range results {
		if len(r.Requested) != len(demand) || len(r.Serving) != len(demand) {
			return nil, fmt.Errorf("result %s holds %d seconds of a %d-second replay", r.Strategy, len(r.Requested), len(demand))
		}
	}
	if len(demand) == 0 {
		return nil, nil
	}
	// The level is a rate window's demand: Demand's centred mean.
	level, err := Demand(demand, 0, 0, 1, LevelWindow)
	if err != nil {
		return nil, err
	}
	band := make([]int, len(demand))
	lo, hi := math.MaxInt, -1
	for s, v := range level {
		band[s] = int(math.Floor(v / width))
		lo, hi = min(lo, band[s]), max(hi, band[s])
	}
	if hi < 0 {
		return nil, nil
	}
	n := hi - lo + 1
	seconds := make([]int, n)
	tallies := make([][]Tally, len(results))
	for i, r := range results {
		tallies[i] = make([]Tally, n)
		prev := cfg.initial(demand)
		for s := range demand {
			r.tallySecond(&tallies[i][band[s]-lo], cfg, demand, s, prev)
			prev = r.Requested[s]
		}
	}
	for s := range demand {
		seconds[band[s]-lo]++
	}
	var out []LevelBand
	for b := range n {
		if seconds[b] == 0 {
			continue
		}
		lb := LevelBand{From: float64(b+lo) * width, To: float64(b+lo+1) * width, Seconds: seconds[b]}
		for i, r := range results {
			t := tallies[i][b]
			lb.Strategies = append(lb.Strategies, LevelTally{Strategy: r.Strategy,
				ReplicaSeconds: t.ReplicaSeconds, UnmetRequests: t.Unmet, Cost: cfg.Cost.Price(t)})
		}
		out = append(out, lb)
	}
	return out, nil
}

// writeLevels writes the level bands as a table, one band a row and each
// strategy's replica-seconds / unmet requests / cost in its column.
func writeLevels(w io.Writer, bands []LevelBand) error {
	if len(bands) == 0 {
		return nil
	}
	fmt.Fprintf(w, "\nby level (mean demand of the %d s around each second), replica-seconds / unmet requests / cost:\n", LevelWindow)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := []string{"level (requests/s)", "seconds"}
	for _, s := range bands[0].Strategies {
		head = append(head, s.Strategy)
	}
	fmt.Fprintf(tw, "%s\t\n", strings.Join(head, "\t"))
	for _, b := range bands {
		row := []string{fmt.Sprintf("%g-%g", b.From, b.To), fmt.Sprint(b.Seconds)}
		for _, s := range b.Strategies {
			row = append(row, fmt.Sprintf("%d / %.0f / %.0f", s.ReplicaSeconds, s.UnmetRequests, s.Cost))
		}
		fmt.Fprintf(tw, "%s\t\n", strings.Join(row, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}
