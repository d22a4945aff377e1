package main

import (
	"context"
	"errors"
	"fmt"
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
		// afternoon peak, and one short burst at 70% of the day.
		x := phase / period
		r := p.Low + (p.High-p.Low)*0.5*(1-math.Cos(2*math.Pi*x))
		if x > 0.70 && x < 0.72 {
			r += (p.High - p.Low) * 0.8
		}
		return r
	}
	return p.Low
}

func demoCommand() *cli.Command {
	return &cli.Command{
		Name:   "demo",
		Usage:  "demo workloads for make run and the end-to-end tests",
		Hidden: true,
		Subcommands: []*cli.Command{{
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
				return serveLoad(ctx, c.String("listen"), p)
			},
		}},
	}
}

func serveLoad(ctx context.Context, addr string, p loadPattern) error {
	reg := prometheus.NewRegistry()
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
				r *= 1 + p.Noise*rand.NormFloat64()
			}
			r = math.Max(0, r)
			rate.Set(r)
			total.Add(r / 10)
		}
	}
}
