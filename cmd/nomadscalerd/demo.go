package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/urfave/cli/v2"

	"github.com/nomadscalerd/nomadscalerd/backtest"
	"github.com/nomadscalerd/nomadscalerd/nomad"
)

// loadPattern is the request rate a demo task serves at a given time. Its
// phase comes from the absolute clock, so a test or a dashboard can tell
// when each step or peak happens.
type loadPattern struct {
	Kind      string        // "step" or "day"
	Low, High float64       // requests per second
	Period    time.Duration // step: cycle length; day: length of a compressed day
	HighFor   time.Duration // step: how long the high rate lasts
	HighAt    time.Duration // step: offset of the high rate within the cycle
	Noise     float64       // day: relative noise
}

// Rate returns the rate at t, without noise.
func (p loadPattern) Rate(t time.Time) float64 {
	period := p.Period.Seconds()
	phase := math.Mod(float64(t.UnixNano())/1e9, period)
	switch p.Kind {
	case "step":
		at := p.HighAt.Seconds()
		if phase >= at && phase < at+p.HighFor.Seconds() {
			return p.High
		}
		return p.Low
	case "day":
		// A day compressed into Period: night trough, a morning ramp to an
		// afternoon peak, and one short burst at 70% of the day (the shape
		// backtest's synthetic "demo" trace replays).
		return backtest.DemoDayRate(phase/period, p.Low, p.High)
	}
	return p.Low
}

func demoCommand() *cli.Command {
	return &cli.Command{
		Name:        "demo",
		Usage:       "demo workloads for make run and the end-to-end tests",
		Hidden:      true,
		Subcommands: []*cli.Command{demoLoadCommand(), demoCompareCommand()},
	}
}

func demoLoadCommand() *cli.Command {
	return &cli.Command{
		Name:  "load",
		Usage: "serve demo_requests_total on /metrics, growing at a patterned rate",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "listen", Value: "127.0.0.1:9300", EnvVars: []string{"DEMO_LISTEN"}},
			&cli.StringFlag{Name: "pattern", Value: "step", Usage: "step or day"},
			&cli.Float64Flag{Name: "low", Value: 20},
			&cli.Float64Flag{Name: "high", Value: 80},
			&cli.DurationFlag{Name: "period", Value: 3 * time.Minute},
			&cli.DurationFlag{Name: "high-for", Value: time.Minute},
			&cli.DurationFlag{Name: "high-at", Value: 2 * time.Minute},
			&cli.Float64Flag{Name: "noise", Value: 0.05},
			&cli.Uint64Flag{Name: "seed", Usage: "noise seed: when set, the noise of each 100 ms of wall-clock time is drawn from the seed and that time, so generators given one seed offer the same load; 0 draws fresh noise"},
			&cli.StringFlag{Name: "nomad-addr", Usage: "with --nomad-job: Nomad HTTP address to poll the job's scale status from"},
			&cli.StringFlag{Name: "nomad-job", Usage: "export demo_group_running and demo_group_desired for this job's --nomad-group, polled from Nomad every second"},
			&cli.StringFlag{Name: "nomad-group", Value: "web"},
			&cli.StringFlag{Name: "nomad-namespace", Usage: "the --nomad-job's namespace (default: Nomad's default)"},
		},
		Action: func(c *cli.Context) error {
			p := loadPattern{Kind: c.String("pattern"), Low: c.Float64("low"), High: c.Float64("high"), Period: c.Duration("period"),
				HighFor: c.Duration("high-for"), HighAt: c.Duration("high-at"), Noise: c.Float64("noise")}
			if p.Kind != "step" && p.Kind != "day" {
				return fmt.Errorf("--pattern %q: want step or day", p.Kind)
			}
			if p.Period <= 0 {
				return errors.New("--period must be positive")
			}
			ctx, stop := signal.NotifyContext(c.Context, syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			reg := prometheus.NewRegistry()
			if job := c.String("nomad-job"); job != "" {
				nc, err := nomad.NewClient(c.String("nomad-addr"), "")
				if err != nil {
					return err
				}
				go pollGroup(ctx, reg, nc, c.String("nomad-namespace"), job, c.String("nomad-group"))
			}
			return serveLoad(ctx, c.String("listen"), p, c.Uint64("seed"), reg)
		},
	}
}

// pollGroup exports the group's desired and running counts from Nomad's
// job scale status every second, for `make bench-live`: Prometheus then
// holds demand and capacity on one clock. A failed poll leaves the last
// values; before the first answer there are none.
func pollGroup(ctx context.Context, reg *prometheus.Registry, nc *nomad.Client, namespace, job, group string) {
	labels := prometheus.Labels{"nomad_job": job, "group": group}
	running := prometheus.NewGauge(prometheus.GaugeOpts{Name: "demo_group_running", Help: "Running allocations of the group, from Nomad's job scale status.", ConstLabels: labels})
	desired := prometheus.NewGauge(prometheus.GaugeOpts{Name: "demo_group_desired", Help: "The group's desired count, from Nomad's job scale status.", ConstLabels: labels})
	registered := false // absent until Nomad first answers, not 0
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		qctx, cancel := context.WithTimeout(ctx, 900*time.Millisecond)
		st, err := nc.GroupStatus(qctx, namespace, job, group)
		cancel()
		if err != nil {
			slog.Warn("demo load: nomad scale status", "job", job, "err", err)
		} else {
			running.Set(float64(st.Running))
			desired.Set(float64(st.Desired))
			if !registered {
				reg.MustRegister(running, desired)
				registered = true
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// noiseAt is the standard normal noise of the 100 ms slot holding t, drawn
// from seed and the slot alone: two generators with one seed agree whenever
// they start.
func noiseAt(seed uint64, t time.Time) float64 {
	slot := uint64(t.UnixMilli() / 100)
	return rand.New(rand.NewPCG(seed, slot)).NormFloat64()
}

func serveLoad(ctx context.Context, addr string, p loadPattern, seed uint64, reg *prometheus.Registry) error {
	total := prometheus.NewCounter(prometheus.CounterOpts{Name: "demo_requests_total", Help: "Requests served by the demo task."})
	rate := prometheus.NewGauge(prometheus.GaugeOpts{Name: "demo_request_rate", Help: "The rate the demo pattern asks for now."})
	reg.MustRegister(total, rate)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	srv := &http.Server{Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-tick.C:
			r := p.Rate(now)
			if p.Noise > 0 {
				n := rand.NormFloat64()
				if seed != 0 {
					n = noiseAt(seed, now)
				}
				r *= 1 + p.Noise*n
			}
			r = math.Max(0, r)
			rate.Set(r)
			total.Add(r / 10)
		}
	}
}
