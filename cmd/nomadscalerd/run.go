package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/signal"
	"syscall"

	nomadapi "github.com/hashicorp/nomad/api"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/urfave/cli/v2"
	"golang.org/x/sync/errgroup"

	"github.com/nomadscalerd/nomadscalerd/api"
	"github.com/nomadscalerd/nomadscalerd/nomad"
	"github.com/nomadscalerd/nomadscalerd/store"
)

func runFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "config", Usage: "HCL config file; every flag has a key there (dashes become underscores)"},
		&cli.StringFlag{Name: "nomad-addr", EnvVars: []string{"NOMAD_ADDR"}, Usage: "Nomad HTTP address (default: the api package's, http://127.0.0.1:4646)"},
		&cli.StringFlag{Name: "nomad-token", EnvVars: []string{"NOMAD_TOKEN"}, Usage: "Nomad ACL token"},
		&cli.StringFlag{Name: "http-addr", EnvVars: []string{"NOMADSCALERD_HTTP_ADDR"}, Value: "127.0.0.1:8000", Usage: "HTTP API listen address"},
		&cli.StringFlag{Name: "token", EnvVars: []string{"NOMADSCALERD_TOKEN"}, Usage: "bearer token for the HTTP API (required off loopback)"},
		&cli.IntFlag{Name: "cache-size", EnvVars: []string{"CACHE_SIZE"}, Value: 10, Usage: "seconds of desired counts per plan"},
		&cli.IntFlag{Name: "forecast-horizon", EnvVars: []string{"FORECAST_HORIZON"}, Value: 60, Usage: "seconds forecast ahead"},
		&cli.BoolFlag{Name: "dry-run", EnvVars: []string{"NOMADSCALERD_DRY_RUN"}, Usage: "decide and record scaling events, change no counts"},
	}
}

func runCommand() *cli.Command {
	return &cli.Command{
		Name:   "run",
		Usage:  "run the autoscaler daemon",
		Flags:  runFlags(),
		Action: runAction,
	}
}

// settings are the resolved values of run's flags.
type settings struct {
	DB, NomadAddr, NomadToken, HTTPAddr, Token string
	CacheSize, ForecastHorizon                 int
	DryRun                                     bool
}

func resolveSettings(c *cli.Context) (settings, error) {
	if path := c.String("config"); path != "" {
		f, err := loadConfigFile(path)
		if err != nil {
			return settings{}, err
		}
		if err := f.apply(c); err != nil {
			return settings{}, err
		}
	}
	s := settings{
		DB: c.String("db"), NomadAddr: c.String("nomad-addr"), NomadToken: c.String("nomad-token"),
		HTTPAddr: c.String("http-addr"), Token: c.String("token"),
		CacheSize: c.Int("cache-size"), ForecastHorizon: c.Int("forecast-horizon"), DryRun: c.Bool("dry-run"),
	}
	if s.CacheSize < 1 || s.CacheSize > 3600 {
		return s, fmt.Errorf("cache-size %d: must be within 1..3600", s.CacheSize)
	}
	if s.ForecastHorizon < 1 || s.ForecastHorizon > 86400 {
		return s, fmt.Errorf("forecast-horizon %d: must be within 1..86400", s.ForecastHorizon)
	}
	return s, nil
}

func runAction(c *cli.Context) error {
	s, err := resolveSettings(c)
	if err != nil {
		return err
	}
	log, err := loggerFrom(c)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(c.Context, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return runDaemon(ctx, s, log)
}

func runDaemon(ctx context.Context, s settings, log *slog.Logger) error {
	db, err := store.Open(s.DB, store.Options{Migrate: true})
	if err != nil {
		return err
	}
	defer db.Close()
	v, _ := db.SchemaVersion()
	log.Info("database open", "path", s.DB, "schema", v)

	nc, err := nomad.NewClient(s.NomadAddr, s.NomadToken)
	if err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	srv, err := api.New(api.Config{Addr: s.HTTPAddr, Token: s.Token, Version: version}, api.Deps{
		DB:       api.PingFunc(func(context.Context) error { return db.Ping() }),
		Nomad:    nc,
		Registry: reg,
		Logger:   log,
	})
	if err != nil {
		return err
	}

	events := nomad.HandlerFunc(func(ctx context.Context, index uint64, evs []nomadapi.Event) {
		log.Debug("nomad events", "index", index, "count", len(evs))
	})
	watcher := nomad.NewWatcher(nc, db, events, log)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return srv.Serve(gctx) })
	g.Go(func() error { return watcher.Run(gctx) })
	log.Info("nomadscalerd running", "version", version, "nomad", nc.Address(), "http", s.HTTPAddr, "dry_run", s.DryRun)
	err = g.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	log.Info("nomadscalerd stopped")
	return err
}
