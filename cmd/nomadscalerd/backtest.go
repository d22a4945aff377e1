package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/nomadscalerd/nomadscalerd/backtest"
	"github.com/nomadscalerd/nomadscalerd/optimize"
	"github.com/nomadscalerd/nomadscalerd/reconciler"
)

func backtestCommand() *cli.Command {
	return &cli.Command{
		Name:      "backtest",
		Usage:     "replay a request-rate trace through the predictive planner and reactive baselines",
		ArgsUsage: " ",
		Description: "Replays FILE (one request count a line, one line a second; plain or gzip) on a simulated\n" +
			"clock through each strategy and prints replica-seconds, unmet requests, violation seconds,\n" +
			"scale actions, cost (the planner's objective) and the 99th percentile time of a decision.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "trace", Required: true, Usage: "request-rate trace FILE (plain or gzip), or synthetic:KIND[:DAYS[:SEED]] with KIND daily, flash-crowd, step, trend or demo (default 7 days, seed 1)"},
			&cli.StringFlag{Name: "start", Value: "0", Usage: "skip this much of the trace (seconds, Go duration or 1d)"},
			&cli.StringFlag{Name: "duration", Usage: "replay this much (seconds, Go duration or 7d); default to the end"},
			&cli.Float64Flag{Name: "scale", Value: 1, Usage: "multiply the trace by this"},
			&cli.IntFlag{Name: "rate-window", Value: 1, Usage: "demand is the mean of this many trace seconds centred on each second"},
			&cli.Float64Flag{Name: "capacity-per-replica", Value: 10, Usage: "requests/s one replica serves"},
			&cli.IntFlag{Name: "startup-delay", Value: 30, Usage: "seconds from requesting a replica to its serving"},
			&cli.IntFlag{Name: "min", Value: 1, Usage: "fewest replicas"},
			&cli.IntFlag{Name: "max", Value: 100, Usage: "most replicas"},
			&cli.StringFlag{Name: "strategies", Value: strings.Join(backtest.StrategyNames, ","), Usage: "comma-separated strategies to compare"},
			&cli.BoolFlag{Name: "json", Usage: "print JSON instead of a table"},
			&cli.StringFlag{Name: "plot", Usage: "write demand and each strategy's serving capacity to this PNG"},
			&cli.BoolFlag{Name: "progress", Usage: "draw a progress bar on stderr even when it is not a terminal"},
			// The predictive strategy's configuration.
			&cli.StringFlag{Name: "policy", Usage: "predictive: the `target \"nomadscaler\"` policy to run, from a job file, a scaling block or a policy block (default: the daemon's defaults)"},
			&cli.Float64Flag{Name: "tv-target", Value: 0.75, Usage: "target-value: the utilisation it aims at (nomad-autoscaler's `target` over capacity per replica: 1 is a target of capacity_per_replica requests/s per replica)"},
			&cli.StringFlag{Name: "tv-window", Value: "60s", Usage: "target-value: the metric's window (the W of rate(...[W]); seconds or Go duration)"},
			&cli.StringFlag{Name: "tv-cooldown", Value: "30s", Usage: "target-value: the cooldown after each scaling (seconds or Go duration)"},
			&cli.BoolFlag{Name: "self-tune", Usage: "predictive: replay the daemon's self-tuning too (policies with self_tune, the default): every tune_interval, with 2 h of history, the last tune_window is replayed with candidate settings and the cheapest adopted; off, the policy runs as written"},
			&cli.StringFlag{Name: "min-healthy-time", Value: "10s", Usage: "predictive: the replayed group's update block's min_healthy_time (seconds or Go duration; Nomad's default 10s): a scale-up's deployment blocks the next change until its replicas have run healthy this long"},
			&cli.StringFlag{Name: "history", Value: "2d", Usage: "history recorded before the replay that the policy may read (seconds, Go duration or 2d)"},
			&cli.Float64Flag{Name: "by-level", Usage: "also split each strategy's replica-seconds, unmet requests and cost by the traffic's level (the mean demand of the 5 minutes around each second), in bands of this many requests/s; 0 (the default) does not"},
			&cli.BoolFlag{Name: "pool-sim", Usage: "also replay the groups' counts on a simulated node pool (8 replicas a node): reactive scale-out on blocked allocations against a predictive pool reading the plans"},
			&cli.StringFlag{Name: "node-boot", Value: "3m", Usage: "pool simulation: time from launching a node to it being ready"},
			&cli.StringFlag{Name: "lead-time", Value: "3m", Usage: "pool simulation: the predictive pool's lead_time"},
			&cli.StringFlag{Name: "solver", Value: "dp", Usage: "predictive: plan solver, dp (exact dynamic program, as the daemon) or highs (the MILP with DP fallback)"},
		},
		Action: runBacktest,
	}
}

func runBacktest(c *cli.Context) error {
	start, err := backtest.ParseSeconds(c.String("start"))
	if err != nil {
		return fmt.Errorf("--start: %w", err)
	}
	duration := 0
	if s := c.String("duration"); s != "" {
		if duration, err = backtest.ParseSeconds(s); err != nil {
			return fmt.Errorf("--duration: %w", err)
		}
	}
	cfg := backtest.DefaultConfig()
	cfg.Capacity = c.Float64("capacity-per-replica")
	cfg.StartupDelay = c.Int("startup-delay")
	cfg.Min, cfg.Max = c.Int("min"), c.Int("max")
	cfg.TargetValue.Target = c.Float64("tv-target")
	if cfg.TargetValue.Window, err = backtest.ParseSeconds(c.String("tv-window")); err != nil {
		return fmt.Errorf("--tv-window: %w", err)
	}
	if cfg.TargetValue.Cooldown, err = backtest.ParseSeconds(c.String("tv-cooldown")); err != nil {
		return fmt.Errorf("--tv-cooldown: %w", err)
	}
	if c := cfg.Capacity; !(c > 0) || math.IsInf(c, 0) {
		return fmt.Errorf("--capacity-per-replica %g: want a positive, finite number", c)
	}
	if s := c.Float64("scale"); !(s >= 0) || math.IsInf(s, 0) {
		return fmt.Errorf("--scale %g: want a non-negative, finite number", s)
	}
	if !(cfg.TargetValue.Target > 0) || math.IsInf(cfg.TargetValue.Target, 0) || cfg.TargetValue.Window < 1 {
		return fmt.Errorf("--tv-target %g, --tv-window %ds: want a positive target and a window of at least 1 s", cfg.TargetValue.Target, cfg.TargetValue.Window)
	}
	if w := c.Float64("by-level"); w < 0 || math.IsNaN(w) || math.IsInf(w, 0) {
		return fmt.Errorf("--by-level %g: want a band width in requests/s, or 0 for none", w)
	}
	var names []string
	for _, n := range strings.Split(c.String("strategies"), ",") {
		if n = strings.TrimSpace(n); n != "" {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return fmt.Errorf("--strategies: none given")
	}

	pcfg, err := predictiveConfig(c, cfg)
	if err != nil {
		return err
	}
	prior, err := backtest.ParseSeconds(c.String("history"))
	if err != nil {
		return fmt.Errorf("--history: %w", err)
	}

	trace, rows, err := backtest.LoadTraceInfo(c.String("trace"))
	if err != nil {
		return err
	}
	if rows != nil {
		// Say how the rows became seconds: a step or a span read wrong
		// shows here before a replay of the wrong traffic.
		fmt.Fprintf(c.App.ErrWriter, "trace: %d rows of %d s each, %s to %s, %d missing (counted as 0), laid onto %d seconds (second 0 is %s)\n",
			rows.Rows, rows.Step, rows.First.Format(time.RFC3339), rows.End.Format(time.RFC3339), rows.MissingRows, len(trace), rows.First.Format(time.RFC3339))
	}
	replay, err := backtest.NewReplay(trace, start, duration, c.Float64("scale"), c.Int("rate-window"), prior)
	if err != nil {
		return err
	}
	trace = nil // the raw trace can be large; only the replay is kept
	demand := replay.Demand

	strategies := make([]backtest.Strategy, len(names))
	for i, n := range names {
		if strategies[i], err = backtest.NewStrategy(n, cfg, pcfg, replay, slog.Default()); err != nil {
			return err
		}
	}
	poolCfg := backtest.DefaultPoolSimConfig()
	if c.Bool("pool-sim") {
		if poolCfg.Boot, err = backtest.ParseSeconds(c.String("node-boot")); err != nil {
			return fmt.Errorf("--node-boot: %w", err)
		}
		if poolCfg.LeadTime, err = backtest.ParseSeconds(c.String("lead-time")); err != nil {
			return fmt.Errorf("--lead-time: %w", err)
		}
		for _, s := range strategies {
			if p, ok := s.(*backtest.Predictive); ok {
				p.RecordPeaks(poolCfg.LeadTime)
			}
		}
	}

	var bar *progressBar
	if c.Bool("progress") || isTerminal(os.Stderr) {
		bar = newProgressBar(c.App.ErrWriter, len(strategies)*len(demand))
		defer bar.stop()
	}
	results, err := runStrategies(c.Context, cfg, demand, strategies, bar)
	if err != nil {
		return err
	}
	bar.stop()

	bound, err := rateBound(c, cfg, names, start, len(demand))
	if err != nil {
		return err
	}
	report := backtest.Report{Trace: c.String("trace"), Seconds: len(demand), Results: results,
		Goals: backtest.Goals(results, bound), Frontier: backtest.Frontier(results, bound)}
	if width := c.Float64("by-level"); width != 0 {
		if report.Levels, err = backtest.Levels(cfg, demand, results, width); err != nil {
			return fmt.Errorf("--by-level: %w", err)
		}
	}
	if c.Bool("pool-sim") {
		if report.Pools, err = simulatePools(c.Context, strategies, results, poolCfg); err != nil {
			return err
		}
	}
	if out := c.String("plot"); out != "" {
		title := fmt.Sprintf("%s from second %d, %d s, scale %g", c.String("trace"), start, len(demand), c.Float64("scale"))
		if err := backtest.WritePlot(out, title, demand, results, cfg.Capacity); err != nil {
			return err
		}
	}
	if c.Bool("json") {
		return report.WriteJSON(c.App.Writer)
	}
	return report.WriteTable(c.App.Writer)
}

func predictiveConfig(c *cli.Context, cfg backtest.Config) (backtest.PredictiveConfig, error) {
	pcfg := backtest.DefaultPredictiveConfig(cfg.Min, cfg.Max)
	if path := c.String("policy"); path != "" {
		p, err := reconciler.ReadPolicyFile(path, reconciler.Defaults{})
		if err != nil {
			return pcfg, fmt.Errorf("--policy: %w", err)
		}
		pcfg.Policy = p
	}
	mh, err := backtest.ParseSeconds(c.String("min-healthy-time"))
	if err != nil {
		return pcfg, fmt.Errorf("--min-healthy-time: %w", err)
	}
	pcfg.MinHealthy = time.Duration(mh) * time.Second
	pcfg.SelfTune = c.Bool("self-tune")
	switch c.String("solver") {
	case "dp":
		pcfg.Solver = optimize.DPSolver{}
	case "highs":
		pcfg.Solver = optimize.NewFallbackSolver(optimize.MIPOptions{TimeLimit: 10 * time.Second}, nil, slog.Default())
	default:
		return pcfg, fmt.Errorf("--solver %q: want dp or highs", c.String("solver"))
	}
	return pcfg, nil
}

// runStrategies replays demand through every strategy at once (each has
// its own state; they share only the demand, which none modifies).
func runStrategies(ctx context.Context, cfg backtest.Config, demand []float64, strategies []backtest.Strategy, bar *progressBar) ([]backtest.Result, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make([]backtest.Result, len(strategies))
	errs := make([]error, len(strategies))
	var wg sync.WaitGroup
	for i, s := range strategies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			last := 0
			results[i], errs[i] = backtest.Run(ctx, cfg, demand, s, func(done int) {
				bar.add(done - last)
				last = done
			})
			if errs[i] != nil {
				cancel()
			}
		}()
	}
	wg.Wait()
	// A strategy cancelled because another failed reports the failure's
	// cause, not its own cancellation.
	var canceled error
	for _, err := range errs {
		switch {
		case err == nil:
		case !errors.Is(err, context.Canceled):
			return nil, err
		case canceled == nil:
			canceled = err
		}
	}
	if canceled != nil {
		return nil, canceled
	}
	return results, nil
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// progressBar redraws one line on a terminal with the share of simulated
// seconds done. A nil bar draws nothing.
type progressBar struct {
	w     io.Writer
	total int
	done  atomic.Int64
	quit  chan struct{}
	once  sync.Once
	wg    sync.WaitGroup
	began time.Time
}

func newProgressBar(w io.Writer, total int) *progressBar {
	b := &progressBar{w: w, total: max(total, 1), quit: make(chan struct{}), began: time.Now()}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-b.quit:
				b.draw()
				fmt.Fprintln(b.w)
				return
			case <-tick.C:
				b.draw()
			}
		}
	}()
	return b
}

func (b *progressBar) add(n int) {
	if b != nil {
		b.done.Add(int64(n))
	}
}

func (b *progressBar) draw() {
	const width = 40
	frac := min(float64(b.done.Load())/float64(b.total), 1)
	filled := int(frac * width)
	fmt.Fprintf(b.w, "\rbacktest [%s%s] %5.1f%% %s", strings.Repeat("=", filled), strings.Repeat(" ", width-filled),
		100*frac, time.Since(b.began).Truncate(time.Second))
}

func (b *progressBar) stop() {
	if b == nil {
		return
	}
	b.once.Do(func() {
		close(b.quit)
		b.wg.Wait()
	})
}

// simulatePools replays the groups' counts on node pools: the predictive
// strategy's counts on a reactive pool and on a predictive one reading its
// plans, and each reactive strategy's counts on a reactive pool.
func simulatePools(ctx context.Context, strategies []backtest.Strategy, results []backtest.Result, cfg backtest.PoolSimConfig) ([]backtest.PoolResult, error) {
	var out []backtest.PoolResult
	reactive := cfg
	reactive.LeadTime = 0
	for i, s := range strategies {
		if s.Name() == "oracle" || s.Name() == "mean-oracle" {
			continue
		}
		r, err := backtest.SimulatePool(ctx, "reactive pool, "+s.Name()+" group", results[i].Requested, nil, reactive)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
		if p, ok := s.(*backtest.Predictive); ok {
			r, err := backtest.SimulatePool(ctx, fmt.Sprintf("predictive pool (lead %ds), %s group", cfg.LeadTime, s.Name()), results[i].Requested, p.Peaks(), cfg)
			if err != nil {
				return nil, err
			}
			out = append(out, r)
		}
	}
	return out, nil
}

// rateBound is the bound on what any strategy could do with the replay
// (see backtest.RateBound), for a trace drawn from a known rate replayed
// second by second; nil for other traces and for a demand that is a
// window's mean of draws rather than one draw.
func rateBound(c *cli.Context, cfg backtest.Config, strategies []string, start, seconds int) (*backtest.RateBound, error) {
	if c.Int("rate-window") != 1 || !slices.Contains(strategies, "predictive") || len(strategies) < 2 {
		return nil, nil
	}
	rate, err := backtest.LoadTraceRate(c.String("trace"))
	if err != nil || rate == nil {
		return nil, err
	}
	if start+seconds > len(rate) {
		return nil, fmt.Errorf("rate bound: the trace's %d seconds end before the replay's %d", len(rate), start+seconds)
	}
	b, err := backtest.NewRateBound(rate[start:start+seconds], c.Float64("scale"), cfg)
	if errors.Is(err, backtest.ErrBoundTooLarge) {
		// The bound is a diagnosis, not the replay: say why it is missing.
		fmt.Fprintf(c.App.ErrWriter, "no reach or frontier: %v\n", err)
		return nil, nil
	}
	return b, err
}
