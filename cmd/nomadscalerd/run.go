package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/urfave/cli/v2"
	"golang.org/x/sync/errgroup"

	"github.com/nomadscalerd/nomadscalerd/api"
	"github.com/nomadscalerd/nomadscalerd/backtest"
	"github.com/nomadscalerd/nomadscalerd/clock"
	"github.com/nomadscalerd/nomadscalerd/history"
	"github.com/nomadscalerd/nomadscalerd/nodepool"
	"github.com/nomadscalerd/nomadscalerd/nomad"
	"github.com/nomadscalerd/nomadscalerd/optimize"
	"github.com/nomadscalerd/nomadscalerd/reconciler"
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
		&cli.BoolFlag{Name: "ha", EnvVars: []string{"NOMADSCALERD_HA"}, Usage: "elect a leader through a Nomad variable lock; only the leader scales"},
		&cli.DurationFlag{Name: "ha-lock-ttl", EnvVars: []string{"NOMADSCALERD_HA_LOCK_TTL"}, Value: nomad.MinHandOver, Usage: "how long Nomad keeps a dead leader's lock (a crashed leader is replaced within this plus about a second); the daemon asks Nomad for a lock TTL of (this - 1s) / 2, as Nomad frees a lock twice its TTL plus a 1 s lock delay after the last renewal, so 21s is the least possible"},
		&cli.StringFlag{Name: "prometheus-addr", EnvVars: []string{"PROMETHEUS_ADDR"}, Usage: "Prometheus HTTP address for checks with source = \"prometheus\""},
		&cli.DurationFlag{Name: "sample-interval", EnvVars: []string{"NOMADSCALERD_SAMPLE_INTERVAL"}, Value: time.Second, Usage: "how often every policy's metrics are recorded"},
		&cli.DurationFlag{Name: "raw-retention", EnvVars: []string{"NOMADSCALERD_RAW_RETENTION"}, Value: 24 * time.Hour, Usage: "how long raw points are kept"},
		&cli.DurationFlag{Name: "rollup-retention", EnvVars: []string{"NOMADSCALERD_ROLLUP_RETENTION"}, Value: 30 * 24 * time.Hour, Usage: "how long 1-minute rollups are kept"},
		&cli.StringFlag{Name: "node-id", EnvVars: []string{"NOMADSCALERD_NODE_ID"}, Usage: "Nomad node running this daemon: never drained"},
		&cli.DurationFlag{Name: "pool-interval", EnvVars: []string{"NOMADSCALERD_POOL_INTERVAL"}, Value: 10 * time.Second, Usage: "how often node pools are reconciled"},
		&cli.Float64Flag{Name: "tune-cpu", EnvVars: []string{"NOMADSCALERD_TUNE_CPU"}, Value: 0.1, Usage: "share of one core self-tuning may take (0 < share <= 1): a tuning costs seconds of CPU a policy, so past about 140 policies at 0.1 they come less often than tune_interval"},
		&cli.IntFlag{Name: "nomad-max-conns", EnvVars: []string{"NOMADSCALERD_NOMAD_MAX_CONNS"}, Value: nomad.DefaultMaxConns, Usage: "connections (and requests in flight) to Nomad at most; Nomad refuses more than 100 per client by default"},
		&cli.DurationFlag{Name: "journal-retention", EnvVars: []string{"NOMADSCALERD_JOURNAL_RETENTION"}, Value: 7 * 24 * time.Hour, Usage: "how long settled actions stay in the journal (each target's last one stays)"},
		&cli.IntFlag{Name: "shards", EnvVars: []string{"NOMADSCALERD_SHARDS"}, Value: 1, Usage: "split policies into this many shards, each held by one replica through the lock of the Nomad variable nomadscalerd/shard/<i>"},
		&cli.IntFlag{Name: "workers", EnvVars: []string{"NOMADSCALERD_WORKERS"}, Value: reconciler.DefaultWorkers, Usage: "policies reconciled at once, plus a reserve of workers/8 (at least 1) for event-triggered reconciles"},
		&cli.BoolFlag{Name: "only-test-data", EnvVars: []string{"ONLY_TEST_DATA"}, Usage: "POST /optimize plans from bundled sample data (the seed's only_test_data)"},
		&cli.StringFlag{Name: "config-ini", EnvVars: []string{"NOMADSCALERD_CONFIG_INI"}, Usage: "the seed optimizer's config.ini: its [main] keys loglevel, api_loglevel, only_test_data and token (below flags, environment and --config)"},
		&cli.StringFlag{Name: "api-log-level", EnvVars: []string{"NOMADSCALERD_API_LOG_LEVEL"}, Usage: "log level of the HTTP API (requests are logged at debug); default: --log-level"},
		&cli.StringFlag{Name: "metrics-addr", EnvVars: []string{"NOMADSCALERD_METRICS_ADDR"}, Usage: "also serve GET /metrics alone on this address (e.g. :9090, the seed's metrics port)"},
		&cli.StringFlag{Name: "policy-dir", EnvVars: []string{"NOMADSCALERD_POLICY_DIR"}, Usage: "directory of scaling policy files (nomad-autoscaler's policy_dir layout), re-read on change and on SIGHUP"},
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
	HA                                         bool
	HALockTTL                                  time.Duration
	PrometheusAddr                             string
	SampleInterval, RawRetention               time.Duration
	RollupRetention                            time.Duration
	OnlyTestData                               bool
	Workers                                    int
	NomadMaxConns                              int
	TuneCPU                                    float64
	JournalRetention                           time.Duration
	Shards                                     int
	NodeID                                     string
	PoolInterval                               time.Duration
	Pools                                      []nodepool.Pool
	PolicyDir                                  string
	MetricsAddr                                string
	// APILog logs the HTTP API (--api-log-level); nil: the daemon's logger.
	APILog *slog.Logger
}

func resolveSettings(c *cli.Context) (settings, error) {
	var pools []nodepool.Pool
	if path := c.String("config"); path != "" {
		f, err := loadConfigFile(path)
		if err != nil {
			return settings{}, err
		}
		if err := f.apply(c); err != nil {
			return settings{}, err
		}
		if pools, err = f.pools(); err != nil {
			return settings{}, err
		}
	}
	if path := c.String("config-ini"); path != "" {
		if err := applyINI(c, path); err != nil {
			return settings{}, err
		}
	}
	s := settings{
		DB: c.String("db"), NomadAddr: c.String("nomad-addr"), NomadToken: c.String("nomad-token"),
		HTTPAddr: c.String("http-addr"), Token: c.String("token"),
		CacheSize: c.Int("cache-size"), ForecastHorizon: c.Int("forecast-horizon"), DryRun: c.Bool("dry-run"),
		HA: c.Bool("ha"), HALockTTL: c.Duration("ha-lock-ttl"), PrometheusAddr: c.String("prometheus-addr"),
		SampleInterval: c.Duration("sample-interval"), RawRetention: c.Duration("raw-retention"),
		RollupRetention: c.Duration("rollup-retention"), OnlyTestData: c.Bool("only-test-data"),
		NodeID: c.String("node-id"), PoolInterval: c.Duration("pool-interval"), Pools: pools,
		Workers: c.Int("workers"), NomadMaxConns: c.Int("nomad-max-conns"), TuneCPU: c.Float64("tune-cpu"),
		JournalRetention: c.Duration("journal-retention"), Shards: c.Int("shards"),
		PolicyDir: c.String("policy-dir"), MetricsAddr: c.String("metrics-addr"),
	}
	if s.Shards < 1 || s.Shards > 1024 {
		return s, fmt.Errorf("shards %d: must be within 1..1024", s.Shards)
	}
	if s.JournalRetention < time.Hour {
		return s, fmt.Errorf("journal-retention %s: must be at least 1h", s.JournalRetention)
	}
	if !(s.TuneCPU > 0 && s.TuneCPU <= 1) {
		return s, fmt.Errorf("tune-cpu %g: must be within (0, 1]", s.TuneCPU)
	}
	if s.NomadMaxConns < 2 {
		return s, fmt.Errorf("nomad-max-conns %d: must be at least 2 (the event stream keeps one)", s.NomadMaxConns)
	}
	if s.Workers < 1 {
		return s, fmt.Errorf("workers %d: must be at least 1", s.Workers)
	}
	if s.PoolInterval < time.Second {
		return s, fmt.Errorf("pool-interval %s: must be at least 1s", s.PoolInterval)
	}
	if s.SampleInterval < 100*time.Millisecond {
		return s, fmt.Errorf("sample-interval %s: must be at least 100ms", s.SampleInterval)
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
	if s.APILog, err = apiLoggerFrom(c); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(c.Context, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return runDaemon(ctx, s, log)
}

// ErrPoolsNeedOneLeader refuses node pools on sharded replicas without
// --ha: shards split policies between replicas, but a pool is managed by
// one leader, and without an election every replica would launch and
// drain nodes for the same pool.
var ErrPoolsNeedOneLeader = errors.New("node pools with --shards need --ha, so that one replica manages them")

func runDaemon(ctx context.Context, s settings, log *slog.Logger) error {
	if len(s.Pools) > 0 && s.Shards > 1 && !s.HA {
		return ErrPoolsNeedOneLeader
	}
	if s.JournalRetention <= 0 {
		s.JournalRetention = 7 * 24 * time.Hour // settings built in code, not from flags
	}
	db, err := store.Open(s.DB, store.Options{Migrate: true})
	if err != nil {
		return err
	}
	defer db.Close()
	v, _ := db.SchemaVersion()
	log.Info("database open", "path", s.DB, "schema", v)

	nc, err := nomad.NewClientLimited(s.NomadAddr, s.NomadToken, s.NomadMaxConns)
	if err != nil {
		return err
	}
	// Reconciles read group counts and policies from this view, kept
	// current by the event stream, instead of asking Nomad per policy.
	cluster := nomad.NewClusterState(nc, log)
	if len(s.Pools) > 0 {
		// Pool reconciles read nodes from it (newPoolRunner).
		cluster.TrackNodes()
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	recMetrics, err := reconciler.NewMetrics(reg)
	if err != nil {
		return err
	}
	optMetrics, err := optimize.NewMetrics(reg)
	if err != nil {
		return err
	}

	var leader reconciler.Leadership = nomad.AlwaysLeader{}
	var elector *nomad.Leader
	if (s.HA || s.Shards > 1) && s.HALockTTL < nomad.MinHandOver {
		log.Warn("--ha-lock-ttl is below what Nomad can do: a dead leader's lock is freed after it instead",
			"ha_lock_ttl", s.HALockTTL, "min", nomad.MinHandOver, "nomad_lock_ttl", nomad.NomadLockTTL(s.HALockTTL))
	}
	if s.HA {
		elector = nomad.NewLeader(nc, s.HALockTTL, clock.Real{}, recMetrics.SetLeader, log)
		leader = elector
	} else {
		recMetrics.SetLeader(true)
	}

	sources, err := history.NewSources(nc.API(), s.PrometheusAddr, log)
	if err != nil {
		return err
	}
	// A target-value check is recorded as its group total.
	totals := history.GroupTotals{Inner: sources, Counts: cluster}

	// The daemon plans single groups with the exact DP; interpolation is
	// the last resort (HiGHS serves coupled problems: node pools).
	solver := &optimize.FallbackSolver{Primary: optimize.DPSolver{}, Metrics: optMetrics, Log: log}
	planner := reconciler.NewHistoryPlanner(db, func(p reconciler.Policy) optimize.Forecaster {
		return reconciler.NewStoredForecaster(p, db, recMetrics, log)
	}, reconciler.SeedDemand, solver, optMetrics, log).WithMetrics(recMetrics).WithResources(cluster)

	// The recorder asks the controller for its policies on every tick; ctrl
	// is set below, before anything runs.
	var ctrl *reconciler.Controller
	targets := history.TargetsFunc(func() []history.Target { return ctrl.RecordTargets() })
	recorder, err := history.NewRecorder(db, totals, targets, clock.Real{}, history.Config{
		Interval: s.SampleInterval, RawRetention: s.RawRetention, RollupRetention: s.RollupRetention, Logger: log, Registerer: reg,
		// A sample that steps a policy's demand up wakes its worker.
		Observe: func(pts []store.Point) { ctrl.ObservePoints(pts) },
	})
	if err != nil {
		return err
	}
	// With shards, each replica acts on the policies of the shards it
	// holds; the shard locks replace the single leader for policies (node
	// pools stay with --ha's leader).
	var shards *nomad.Shards
	var owner reconciler.Owner
	policyLeader := leader
	if s.Shards > 1 {
		shards = nomad.NewShards(nc, s.Shards, replicaName(s.HTTPAddr), s.HALockTTL, func() {
			if ctrl != nil {
				ctrl.RequestRefresh()
			}
		}, clock.Real{}, log)
		owner, policyLeader = shards, nomad.AlwaysLeader{}
		held := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "nomadscaler_shards_held", Help: "Shards this replica holds (with --shards)."},
			func() float64 { return float64(len(shards.Held())) })
		if err := reg.Register(held); err != nil {
			return fmt.Errorf("register shard metrics: %w", err)
		}
	}
	rec := reconciler.New(reconciler.Deps{Scaler: cluster, Observer: cluster, Events: nc, Planner: planner, Freshness: reconciler.RecorderFreshness{Recorder: recorder, DB: db},
		State: db, Leader: policyLeader, Owner: owner, Metrics: recMetrics, Log: log, DryRun: s.DryRun, Replica: replicaName(s.HTTPAddr),
		MinHorizon: nodepool.PlanHorizon(s.Pools)})
	ctrl = reconciler.NewController(rec, cluster, reconciler.Defaults{CacheSize: s.CacheSize, ForecastHorizon: s.ForecastHorizon, DryRun: s.DryRun, WithoutPrometheus: s.PrometheusAddr == ""}, recMetrics, log)

	ctrl.SetWorkers(s.Workers)
	if shards != nil {
		ctrl.SetOwner(shards)
	}

	if s.PolicyDir != "" {
		dir, err := reconciler.NewPolicyDir(s.PolicyDir)
		if err != nil {
			return err
		}
		ctrl.SetPolicyDir(dir)
		log.Info("reading policy files", "dir", s.PolicyDir)
	}

	apiLog := s.APILog
	if apiLog == nil {
		apiLog = log
	}
	srv, err := api.New(api.Config{Addr: s.HTTPAddr, Token: s.Token, Version: version}, api.Deps{
		DB:       api.PingFunc(func(context.Context) error { return db.Ping() }),
		Nomad:    nc,
		Roles:    leader,
		Registry: reg,
		Logger:   apiLog,
	})
	if err != nil {
		return err
	}
	srv.HandleOptimize(&reconciler.OptimizeService{Controller: ctrl, Planner: planner, TestData: s.OnlyTestData, Solver: solver, CacheSize: s.CacheSize})
	srv.HandleSnapshot(db)
	var pools *nodepool.Runner
	if len(s.Pools) > 0 {
		if pools, err = newPoolRunner(s, nc, cluster, db, leader, rec, reg, log); err != nil {
			return err
		}
		ctrl.SetBlockedHandler(pools)
	}
	srv.HandleStatus(api.StatusFunc(func(ctx context.Context) any {
		st := struct {
			reconciler.Status
			Pools []nodepool.Decision `json:"pools,omitempty"`
			// Shards lists the shards this replica holds (with --shards).
			Shards []int `json:"shards,omitempty"`
		}{Status: ctrl.Status(ctx)}
		if pools != nil {
			st.Pools = pools.Status(ctx)
		}
		if shards != nil {
			st.Shards = shards.Held()
		}
		return st
	}))

	watcher := nomad.NewWatcher(nc, db, nomad.Handlers{cluster, ctrl}, log)
	watcher.OnConnect(cluster.Sync)

	g, gctx := errgroup.WithContext(ctx)
	if pools != nil {
		g.Go(func() error { return pools.Run(gctx) })
	}
	g.Go(func() error { return srv.Serve(gctx) })
	if s.MetricsAddr != "" {
		ms := api.NewMetricsServer(s.MetricsAddr, reg, apiLog)
		g.Go(func() error { return ms.Serve(gctx) })
	}
	g.Go(func() error { return ctrl.Run(gctx) })
	hangups := onHangup(ctrl.Reload)
	g.Go(func() error { return hangups(gctx) })
	g.Go(func() error { return watcher.Run(gctx) })
	g.Go(func() error { return recorder.Run(gctx) })
	g.Go(func() error { return compactJournal(gctx, db, s.JournalRetention, 10*time.Minute, log) })
	g.Go(func() error { return rec.RunPlanFlusher(gctx, time.Second) })
	g.Go(func() error {
		return rec.RunTuner(gctx, ctrl.Policies, backtest.PolicyTuner{}, reconciler.TunerOptions{Check: time.Minute, CPUShare: s.TuneCPU, Active: ctrl.Active})
	})
	if elector != nil {
		g.Go(func() error { return elector.Run(gctx) })
	}
	if shards != nil {
		g.Go(func() error { return shards.Run(gctx) })
	}
	log.Info("nomadscalerd running", "version", version, "nomad", nc.Address(), "http", s.HTTPAddr, "dry_run", s.DryRun, "ha", s.HA)
	err = g.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	// The flusher's last flush may have run before reconciles still in
	// flight at the stop made their plans: every goroutine is done now.
	if _, ferr := rec.FlushPlans(); ferr != nil {
		log.Error("store plans at stop", "err", ferr)
	}
	log.Info("nomadscalerd stopped")
	return err
}

// replicaName identifies this process among HA replicas: host, process
// and API address, after its allocation's ID when Nomad runs it.
func replicaName(httpAddr string) string {
	return replicaNameOf(os.Hostname, os.Getpid(), httpAddr, os.Getenv("NOMAD_ALLOC_ID"))
}

// replicaNameOf is replicaName from its parts. Under Nomad the allocation
// ID is part of it: with the exec driver's own PID namespace every
// replica is pid 1, and two on one host behind bridge networking share
// an address, so host, pid and address alone could name two live
// replicas alike, and each would take the other's heartbeat for its own.
// It comes first so that a heartbeat path cut to Nomad's length limit
// keeps it.
func replicaNameOf(hostname func() (string, error), pid int, httpAddr, allocID string) string {
	host, err := hostname()
	if err != nil {
		host = "unknown"
	}
	name := fmt.Sprintf("%s/%d/%s", host, pid, httpAddr)
	if allocID != "" {
		name = allocID + "/" + name
	}
	return name
}

// onHangup catches SIGHUP from now on (it would otherwise end the process)
// and returns the loop that calls reload on each until ctx ends.
func onHangup(reload func()) func(ctx context.Context) error {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	return func(ctx context.Context) error {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-hup:
				reload()
			}
		}
	}
}

func newPoolRunner(s settings, nc *nomad.Client, cluster *nomad.ClusterState, db *store.DB, leader reconciler.Leadership, rec *reconciler.Reconciler, reg *prometheus.Registry, log *slog.Logger) (*nodepool.Runner, error) {
	providers, err := nodepool.NewProviders(s.Pools, log)
	if err != nil {
		return nil, err
	}
	m, err := nodepool.NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	// Pool reconciles read nodes and what their allocations hold from the
	// cluster state the event stream keeps current.
	adapter := nodepool.NewNomadAdapter(nc.API(), "").WithNodes(cluster)
	st := nodepool.StoreState{DB: db}
	ctl, err := nodepool.NewController(nodepool.Deps{Nomad: adapter, Drainer: adapter, Providers: providers, Idle: st, Journal: st,
		Chooser: nodepool.NewMIPChooser(log), Metrics: m, Logger: log, SelfNodeID: s.NodeID,
		Plans: nodepool.NewPeakPlans(func(from, to time.Time) []nodepool.PlannedGroup {
			var out []nodepool.PlannedGroup
			for _, g := range rec.PlannedPeaks(from, to) {
				out = append(out, nodepool.PlannedGroup{Namespace: g.Namespace, Job: g.Job, Group: g.Group, Current: g.Current, Peak: g.Peak})
			}
			return out
		}, adapter, time.Now)})
	if err != nil {
		return nil, err
	}
	for _, p := range s.Pools {
		log.Info("node pool configured", "pool", p.Name, "min", p.Min, "max", p.Max)
	}
	return nodepool.NewRunner(ctl, adapter, leader, clock.Real{}, nodepool.RunnerConfig{Pools: s.Pools, Interval: s.PoolInterval}, log), nil
}

// compactJournal drops settled actions older than retention, cooldowns
// that have ended, and the fits, plans and tunings of policies with no
// history left, every interval, so the journal's size follows its
// retention and the state's the policies the history holds.
func compactJournal(ctx context.Context, db *store.DB, retention, every time.Duration, log *slog.Logger) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		n, err := db.CompactJournal(time.Now().Add(-retention))
		if err != nil && ctx.Err() == nil {
			log.Error("journal compaction", "err", err)
		} else if n > 0 {
			log.Debug("journal compacted", "deleted", n)
		}
		if n, err := reconciler.DropExpiredCooldowns(db, time.Now()); err != nil && ctx.Err() == nil {
			log.Error("dropping ended cooldowns", "err", err)
		} else if n > 0 {
			log.Debug("ended cooldowns dropped", "deleted", n)
		}
		if n, err := reconciler.DropStateWithoutHistory(db); err != nil && ctx.Err() == nil {
			log.Error("dropping the state of policies without history", "err", err)
		} else if n > 0 {
			log.Info("dropped the model fits, plans and tunings of policies whose history has aged out", "deleted", n)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
