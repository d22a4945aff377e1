package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/nomadscalerd/nomadscalerd/optimize"
)

func optimizeCommand() *cli.Command {
	return &cli.Command{
		Name:  "optimize",
		Usage: "plan replica counts offline for one optimize request and print {\"desired\": [...]}",
		Description: "Reads the seed's request body (--input) and plans cache_size seconds of desired\n" +
			"counts for the demand series in --demand (one number per line or a JSON array;\n" +
			"the first cache_size values are used, the last repeated if short). Without\n" +
			"--demand the bundled sample series is used.",
		Flags: []cli.Flag{
			&cli.PathFlag{Name: "input", Required: true, Usage: "request JSON file (- for stdin)"},
			&cli.PathFlag{Name: "demand", Usage: "demand series file (default: bundled sample)"},
			&cli.Float64Flag{Name: "capacity", Value: optimize.DefaultCapacityPerReplica, Usage: "demand one replica covers"},
			&cli.IntFlag{Name: "startup-delay", Usage: "seconds from requesting a replica to it serving"},
			&cli.StringFlag{Name: "solver", Value: "highs", Usage: "highs (with fallbacks) or dp"},
			&cli.DurationFlag{Name: "time-limit", Value: 10 * time.Second, Usage: "HiGHS time limit per solve (0 or less: none)"},
			&cli.Float64Flag{Name: "cpu-mhz", Usage: "CPU allocated to one replica"},
			&cli.Float64Flag{Name: "memory-mib", Usage: "memory allocated to one replica"},
			&cli.Float64Flag{Name: "price-per-mhz-second", Usage: "CPU price; with no prices a replica costs 1 per second"},
			&cli.Float64Flag{Name: "price-per-mib-second", Usage: "memory price"},
		},
		Action: runOptimize,
	}
}

func runOptimize(c *cli.Context) error {
	log, err := optimizeLogger(c)
	if err != nil {
		return err
	}
	in, err := openInput(c.Path("input"))
	if err != nil {
		return err
	}
	req, err := optimize.DecodeRequest(in)
	in.Close()
	if err != nil {
		return err
	}
	if err := req.Validate(); err != nil {
		return fmt.Errorf("invalid request: %w", err)
	}
	demand := optimize.SampleRequests()
	if path := c.Path("demand"); path != "" {
		f, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("open demand: %w", err)
		}
		demand, err = optimize.ParseSeries(f)
		f.Close()
		if err != nil {
			return err
		}
	}
	p := req.Apply(optimize.DefaultProblem())
	p.CapacityPerReplica = c.Float64("capacity")
	p.StartupDelay = c.Int("startup-delay")
	if p.StartupDelay >= req.CacheSize {
		// A replica requested within the plan would serve only after it,
		// so the plan could never add one, whatever the demand: it printed
		// the current count for every second. A policy's startup_delay is
		// held below its forecast_horizon for the same reason.
		return fmt.Errorf("--startup-delay %d: must be shorter than the request's cache_size %d (the plan's length)", p.StartupDelay, req.CacheSize)
	}
	// A price prices the resource one replica is allocated: without that
	// resource the price added nothing, and a price alone planned with
	// replicas that cost 0 (never worth stopping one).
	for _, pr := range []struct{ price, resource string }{
		{"price-per-mhz-second", "cpu-mhz"}, {"price-per-mib-second", "memory-mib"},
	} {
		if c.Float64(pr.price) != 0 && !(c.Float64(pr.resource) > 0) {
			return fmt.Errorf("--%s needs --%s, the resource one replica is allocated", pr.price, pr.resource)
		}
	}
	p.ReplicaCost = optimize.ReplicaCost(c.Float64("cpu-mhz"), c.Float64("memory-mib"),
		c.Float64("price-per-mhz-second"), c.Float64("price-per-mib-second"))

	var solver optimize.Solver
	switch c.String("solver") {
	case "highs":
		solver = optimize.NewFallbackSolver(optimize.MIPOptions{TimeLimit: c.Duration("time-limit"), RelGap: 1e-6}, nil, log)
	case "dp":
		solver = optimize.DPSolver{}
	default:
		return fmt.Errorf("unknown solver %q: want highs or dp", c.String("solver"))
	}
	planner := optimize.NewPlanner(optimize.FixedForecaster(demand), solver, nil, log)
	plan, err := planner.Plan(c.Context, optimize.PlanRequest{Problem: p, Horizon: req.CacheSize, Start: time.Now()})
	if err != nil {
		return err
	}
	log.Info("planned", "id", plan.ID, "solver", plan.Solver, "objective", plan.Objective)
	enc := json.NewEncoder(c.App.Writer)
	return enc.Encode(optimize.Response{Desired: plan.Desired})
}

func openInput(path string) (*os.File, error) {
	if path == "-" {
		return os.Stdin, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open input: %w", err)
	}
	return f, nil
}

// optimizeLogger logs to stderr at --log-level in --log-format, keeping
// stdout for the response. Levels and formats are read as every other
// command reads them.
func optimizeLogger(c *cli.Context) (*slog.Logger, error) {
	level, err := parseLevel("--log-level", c.String("log-level"))
	if err != nil {
		return nil, err
	}
	return newLoggerAt(os.Stderr, level, strings.ToLower(c.String("log-format")))
}
