package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"
	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"github.com/urfave/cli/v2"

	"github.com/nomadscalerd/nomadscalerd/backtest"
	"github.com/nomadscalerd/nomadscalerd/nomad"
)

// demoCompareCommand measures a `make bench-live` run: for each scaled job
// it reads, at 1 s resolution from Prometheus, the demand its load
// generator offered (the rate of its own demo_requests_total) and the
// group's running and desired counts (demo_group_running/desired, which the
// load generator polls from Nomad's job scale status every second), and
// prints unmet requests, replica-seconds, scaling actions, flaps and
// whether capacity was up before each ramp of the demand.
func demoCompareCommand() *cli.Command {
	return &cli.Command{
		Name:      "compare",
		Usage:     "compare the autoscalers of a make bench-live run from Prometheus and Nomad",
		ArgsUsage: "NAME=[NAMESPACE/]JOB...",
		Description: "Each argument names an autoscaler and the Nomad job it scaled (nomadscalerd=bench-a,\n" +
			"nomad-autoscaler=bench-b/bench-b). The job's load generator must be scraped under the Prometheus\n" +
			"job label of the job's name.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "prometheus-addr", EnvVars: []string{"PROMETHEUS_ADDR"}, Required: true},
			&cli.StringFlag{Name: "nomad-addr", EnvVars: []string{"NOMAD_ADDR"}, Usage: "Nomad HTTP address, for the jobs' scaling events"},
			&cli.BoolFlag{Name: "without-nomad", Usage: "read Prometheus alone (a run whose dev agent is gone: its Prometheus data kept); the nomad events column is left empty"},
			&cli.StringFlag{Name: "group", Value: "web"},
			&cli.StringFlag{Name: "start", Required: true, Usage: "start of the run: Unix seconds or RFC 3339"},
			&cli.StringFlag{Name: "end", Usage: "end of the run: Unix seconds or RFC 3339 (default now)"},
			&cli.Float64Flag{Name: "capacity-per-replica", Value: 10},
			&cli.IntFlag{Name: "max", Value: 12, Usage: "the group's max count: demand above max*capacity is no ramp anyone can meet"},
			&cli.DurationFlag{Name: "warmup", Value: 120 * time.Second, Usage: "the second row of each autoscaler leaves out this much of the start"},
			&cli.DurationFlag{Name: "flap-window", Value: 30 * time.Second, Usage: "a scale-down undone by a scale-up within this long is a flap"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return fmt.Errorf("name at least one NAME=JOB")
			}
			start, err := parseWhen(c.String("start"), time.Time{})
			if err != nil {
				return fmt.Errorf("--start: %w", err)
			}
			end, err := parseWhen(c.String("end"), time.Now())
			if err != nil {
				return fmt.Errorf("--end: %w", err)
			}
			if !end.After(start) {
				return fmt.Errorf("--end %s is not after --start %s", end, start)
			}
			pc, err := promapi.NewClient(promapi.Config{Address: c.String("prometheus-addr")})
			if err != nil {
				return fmt.Errorf("prometheus client: %w", err)
			}
			prom := promv1.NewAPI(pc)
			nc, err := nomad.NewClient(c.String("nomad-addr"), "")
			if err != nil {
				return err
			}
			opt := compareOptions{
				Capacity:   c.Float64("capacity-per-replica"),
				Max:        c.Int("max"),
				Warmup:     int(c.Duration("warmup") / time.Second),
				FlapWindow: int(c.Duration("flap-window") / time.Second),
			}
			group := c.String("group")
			var rows []compareRow
			for _, arg := range c.Args().Slice() {
				name, job, ok := strings.Cut(arg, "=")
				namespace := ""
				if ns, j, found := strings.Cut(job, "/"); found {
					namespace, job = ns, j
				}
				if !ok || name == "" || job == "" {
					return fmt.Errorf("argument %q: want NAME=[NAMESPACE/]JOB", arg)
				}
				s, err := readBenchSeries(c.Context, prom, job, group, start, end)
				if err != nil {
					return fmt.Errorf("%s: %w", job, err)
				}
				events, capped := -1, false
				if !c.Bool("without-nomad") {
					if events, capped, err = countScalingEvents(c.Context, nc, namespace, job, group, start, end); err != nil {
						return fmt.Errorf("%s: %w", job, err)
					}
				}
				rows = append(rows, compareRow{Name: name, Job: job, Series: s, Events: events, EventsCapped: capped})
			}
			printComparison(c.App.Writer, rows, start, end, opt)
			return nil
		},
	}
}

// parseWhen reads Unix seconds or RFC 3339; empty is def.
func parseWhen(s string, def time.Time) (time.Time, error) {
	if s == "" {
		if def.IsZero() {
			return def, fmt.Errorf("empty")
		}
		return def, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(n, 0), nil
	}
	return time.Parse(time.RFC3339, s)
}

// benchSeries holds one value per second of the run (index 0 is the start);
// NaN where Prometheus had none.
type benchSeries struct {
	Demand  []float64 // requests/s the load generator offered
	Running []float64 // running allocations of the group
	Desired []float64 // the group's count
}

// readBenchSeries runs the three range queries at 1 s resolution. Demand is
// the load generator's own counter over 5 s (a 1 s scrape of a counter
// that grows every 100 ms is too coarse for a per-second irate).
func readBenchSeries(ctx context.Context, prom promv1.API, job, group string, start, end time.Time) (benchSeries, error) {
	sel := fmt.Sprintf(`job=%q`, job)
	gsel := fmt.Sprintf(`job=%q,group=%q`, job, group)
	queries := []string{
		fmt.Sprintf(`sum(rate(demo_requests_total{%s}[5s]))`, sel),
		fmt.Sprintf(`max(demo_group_running{%s})`, gsel),
		fmt.Sprintf(`max(demo_group_desired{%s})`, gsel),
	}
	out := make([][]float64, len(queries))
	for i, q := range queries {
		v, err := rangeSeconds(ctx, prom, q, start, end)
		if err != nil {
			return benchSeries{}, err
		}
		out[i] = v
	}
	return benchSeries{Demand: out[0], Running: out[1], Desired: out[2]}, nil
}

// rangeSeconds evaluates q at every second from start to end, in chunks
// below Prometheus's 11,000 points per query.
func rangeSeconds(ctx context.Context, prom promv1.API, q string, start, end time.Time) ([]float64, error) {
	start = start.Truncate(time.Second)
	n := int(end.Sub(start)/time.Second) + 1
	out := make([]float64, n)
	for i := range out {
		out[i] = math.NaN()
	}
	const chunk = 3600
	for from := 0; from < n; from += chunk {
		to := min(from+chunk, n) - 1
		r := promv1.Range{Start: start.Add(time.Duration(from) * time.Second), End: start.Add(time.Duration(to) * time.Second), Step: time.Second}
		res, _, err := prom.QueryRange(ctx, q, r)
		if err != nil {
			return nil, fmt.Errorf("prometheus query %q: %w", q, err)
		}
		m, ok := res.(model.Matrix)
		if !ok {
			return nil, fmt.Errorf("prometheus query %q: %s, want a matrix", q, res.Type())
		}
		for _, ss := range m {
			for _, p := range ss.Values {
				i := int(p.Timestamp.Time().Sub(start).Round(time.Second) / time.Second)
				if i >= 0 && i < n {
					out[i] = float64(p.Value)
				}
			}
		}
	}
	return out, nil
}

// countScalingEvents counts the group's Nomad scaling events in the run
// that changed its count. Nomad keeps only the latest 20 per group, so
// capped says the count may be short.
func countScalingEvents(ctx context.Context, nc *nomad.Client, namespace, job, group string, start, end time.Time) (int, bool, error) {
	st, _, err := nc.API().Jobs().ScaleStatus(job, (&nomadapi.QueryOptions{Namespace: namespace}).WithContext(ctx))
	if err != nil {
		return 0, false, fmt.Errorf("scale status: %w", err)
	}
	tg, ok := st.TaskGroups[group]
	if !ok {
		return 0, false, fmt.Errorf("no group %q", group)
	}
	n := 0
	oldest := end
	for _, e := range tg.Events {
		at := time.Unix(0, int64(e.Time))
		if at.Before(oldest) {
			oldest = at
		}
		if e.Count == nil || *e.Count == e.PreviousCount || at.Before(start) || at.After(end) {
			continue
		}
		n++
	}
	return n, len(tg.Events) >= 20 && oldest.After(start), nil
}

type compareOptions struct {
	Capacity   float64 // requests/s one replica serves
	Max        int     // the group's max count
	Warmup     int     // seconds left out of the second row
	FlapWindow int     // seconds
}

type compareRow struct {
	Name, Job string
	Series    benchSeries
	// Events is the count of Nomad's scaling events, -1 when not read.
	Events       int
	EventsCapped bool
}

// benchFigures are one autoscaler's results over a stretch of the run.
type benchFigures struct {
	Seconds        int     // seconds with both demand and a running count
	Offered        float64 // requests offered
	Unmet          float64 // requests above capacity
	ReplicaSeconds float64
	Actions        int // changes of the desired count
	Flaps          int // scale-downs undone within the flap window
	Ramps          []rampCheck
}

// rampCheck is one rise of demand past k replicas' capacity.
type rampCheck struct {
	Replicas int // k: demand rose above k*capacity, so k+1 were needed
	At       int // second of the run when it did
	OnTime   bool
	// Lead: on time, how many seconds k+1 replicas had been running (at
	// least 1); late, the seconds until they were (-1: not before demand
	// fell back below k*capacity or the run ended).
	Lead int
}

// carryForward fills NaN gaps with the last value; leading NaNs stay.
func carryForward(v []float64) []float64 {
	out := make([]float64, len(v))
	last := math.NaN()
	for i, x := range v {
		if !math.IsNaN(x) {
			last = x
		}
		out[i] = last
	}
	return out
}

// unmetRequests sums max(0, demand - capacity*running) over the seconds
// from `from` on where both are known, with the offered total and the
// replica-seconds of those seconds.
func unmetRequests(demand, running []float64, capacity float64, from int) (seconds int, offered, unmet, replicaSeconds float64) {
	for i := max(from, 0); i < len(demand) && i < len(running); i++ {
		d, r := demand[i], running[i]
		if math.IsNaN(d) || math.IsNaN(r) {
			continue
		}
		seconds++
		offered += d
		unmet += math.Max(0, d-capacity*r)
		replicaSeconds += r
	}
	return seconds, offered, unmet, replicaSeconds
}

// scalingActions counts changes of the desired count at seconds from `from`
// on, and flaps: a decrease followed by an increase within window seconds
// (each decrease counts once), as the backtest counts them
// (backtest.ScalingChanges). Gaps carry the last count; seconds before the
// first known one are no change.
func scalingActions(desired []float64, from, window int) (actions, flaps int) {
	d := carryForward(desired)
	k := 0
	for k < len(d) && math.IsNaN(d[k]) {
		k++
	}
	counts := make([]int, len(d)-k)
	for i, v := range d[k:] {
		counts[i] = int(math.Round(v))
	}
	return backtest.ScalingChanges(counts, from-k, window)
}

// rampChecks finds every rise of demand past k*capacity (k = 1..max-1) and
// whether k+1 replicas were running at that second. A level is crossed again
// only after demand fell below it by half a replica's capacity, so noise
// around a level is one ramp, not many.
func rampChecks(demand, running []float64, capacity float64, maxReplicas int) []rampCheck {
	r := carryForward(running)
	hyst := capacity / 2
	var out []rampCheck
	for k := 1; k < maxReplicas; k++ {
		level := capacity * float64(k)
		armed := false
		seen := false
		for t, d := range demand {
			if math.IsNaN(d) {
				continue
			}
			if !seen {
				seen = true
				armed = d <= level
				continue
			}
			if d < level-hyst {
				armed = true
				continue
			}
			if !armed || d <= level {
				continue
			}
			armed = false
			if math.IsNaN(r[t]) {
				continue
			}
			c := rampCheck{Replicas: k, At: t, OnTime: r[t] >= float64(k+1)}
			if c.OnTime {
				for j := t; j >= 0 && r[j] >= float64(k+1); j-- {
					c.Lead++
				}
			} else {
				c.Lead = -1
				for j := t + 1; j < len(r); j++ {
					if r[j] >= float64(k+1) {
						c.Lead = j - t
						break
					}
					if !math.IsNaN(demand[j]) && demand[j] < level {
						break
					}
				}
			}
			out = append(out, c)
		}
	}
	// In time order, as the day ramps.
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && (out[j].At < out[j-1].At || out[j].At == out[j-1].At && out[j].Replicas < out[j-1].Replicas); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// figuresFrom computes one row over the seconds from `from` on.
func figuresFrom(s benchSeries, from int, o compareOptions) benchFigures {
	running := carryForward(s.Running)
	var f benchFigures
	f.Seconds, f.Offered, f.Unmet, f.ReplicaSeconds = unmetRequests(s.Demand, running, o.Capacity, from)
	f.Actions, f.Flaps = scalingActions(s.Desired, from, o.FlapWindow)
	for _, c := range rampChecks(s.Demand, running, o.Capacity, o.Max) {
		if c.At >= from {
			f.Ramps = append(f.Ramps, c)
		}
	}
	return f
}

func onTime(rs []rampCheck) int {
	n := 0
	for _, r := range rs {
		if r.OnTime {
			n++
		}
	}
	return n
}

func printComparison(w io.Writer, rows []compareRow, start, end time.Time, o compareOptions) {
	fmt.Fprintf(w, "run %s to %s (%s), %g requests/s per replica; demand = rate of the load generator's counter over 5s, running = Nomad's running allocations (polled every second)\n\n",
		start.Format(time.TimeOnly), end.Format(time.TimeOnly), end.Sub(start).Round(time.Second), o.Capacity)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "autoscaler\tjob\tfrom\tseconds\toffered req\tunmet req\tunmet %\treplica-s\tactions\tflaps\tramps on time\tnomad events\t")
	for _, r := range rows {
		for _, from := range []int{0, o.Warmup} {
			f := figuresFrom(r.Series, from, o)
			pct := 0.0
			if f.Offered > 0 {
				pct = 100 * f.Unmet / f.Offered
			}
			events := "-"
			if from == 0 && r.Events >= 0 {
				events = strconv.Itoa(r.Events)
				if r.EventsCapped {
					events = ">=" + events
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t+%ds\t%d\t%.0f\t%.0f\t%.1f\t%.0f\t%d\t%d\t%d/%d\t%s\t\n", r.Name, r.Job, from, f.Seconds, f.Offered, f.Unmet, pct,
				f.ReplicaSeconds, f.Actions, f.Flaps, onTime(f.Ramps), len(f.Ramps), events)
		}
	}
	_ = tw.Flush()
	fmt.Fprintln(w, "\nramps (replicas needed @ second of the run: on time with how long capacity was up, or late by):")
	for _, r := range rows {
		var parts []string
		for _, c := range figuresFrom(r.Series, 0, o).Ramps {
			switch {
			case c.OnTime:
				parts = append(parts, fmt.Sprintf("%d@%ds ok(%ds)", c.Replicas+1, c.At, c.Lead))
			case c.Lead < 0:
				parts = append(parts, fmt.Sprintf("%d@%ds missed", c.Replicas+1, c.At))
			default:
				parts = append(parts, fmt.Sprintf("%d@%ds late(%ds)", c.Replicas+1, c.At, c.Lead))
			}
		}
		if len(parts) == 0 {
			parts = []string{"none"}
		}
		fmt.Fprintf(w, "  %s: %s\n", r.Name, strings.Join(parts, " "))
	}
}
