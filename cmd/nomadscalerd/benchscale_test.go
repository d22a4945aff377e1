package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/nomadscalerd/nomadscalerd/history/promtest"
	"github.com/nomadscalerd/nomadscalerd/nomadtest"
	"github.com/nomadscalerd/nomadscalerd/store"
	"github.com/nomadscalerd/nomadscalerd/store/chunk"
)

// BenchmarkScale runs the daemon as its own process against a real Nomad
// dev agent and a real Prometheus with BENCH_SCALE_POLICIES policies
// (default 1,000: one check "requests" each, dry_run, groups of count 0, 1 s
// sampling) for BENCH_SCALE_DURATION (default 3m) after every policy is
// active, and prints what issue 12 asks of it. Job updates at one a second
// during the window give the event-to-reconcile figure. With
// BENCH_SCALE_SHARDS=N above 1, N replicas run with --shards N (each its
// own process and database) and the window starts once every policy is
// active on one of them and each holds one shard; the figures are then
// per replica where they are per process. `make bench-scale`.
//
// Before launch each replica's database is filled with BENCH_SCALE_HISTORY
// (default 24h; 0 starts from an empty file) of 1 s history for the series
// it will write, less benchPrefillMargin so the daemon's 24 h retention
// prunes none of it during the run (see prefillHistory): the daemon is
// measured as an operator runs it after a day, and the bytes per sealed
// point are those of a day of history, not of one first chunk per series.
// The prefilled values are synthetic request counts (benchCounts).
//
// BENCH_SCALE_TRAFFIC says what the live ones are: "history" (the default
// with a prefill) increments each policy's counter in the background at
// the level benchCounts gives its series now (benchTraffic), from before
// the jobs are registered and at least benchTrafficWarmup before launch,
// so rate() over 1m continues the prefilled day. Its groups have max 0,
// so the daemon's want is their count 0, as for groups at their planned
// count, and it does not dry-run a scale-up of every group each
// evaluation (a fixed count is not self-tuned either: self_tune stays at
// its default, but there is nothing to choose). The window starts once
// every policy has fitted its model once (BENCH_SCALE_FIT_WAIT).
// "idle" (the default with BENCH_SCALE_HISTORY=0) leaves the
// counters at 0, as young-file runs always had them: live samples are
// zeros, and after a prefill a level shift at launch.
func BenchmarkScale(b *testing.B) {
	policies := envInt(b, "BENCH_SCALE_POLICIES", 1000)
	window := envDuration(b, "BENCH_SCALE_DURATION", 3*time.Minute)
	shards := envInt(b, "BENCH_SCALE_SHARDS", 1)
	historyAsked := 24 * time.Hour
	if v := os.Getenv("BENCH_SCALE_HISTORY"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			b.Fatalf("BENCH_SCALE_HISTORY=%q: want a duration, 0 for none", v)
		}
		historyAsked = d
	}
	historySpan := min(historyAsked, benchRawRetention-benchPrefillMargin)
	// Rollups older than the raw history, as a daemon that has recorded a
	// month keeps them: within the rollup retention, less the same margin.
	var olderRollups time.Duration
	if v := os.Getenv("BENCH_SCALE_ROLLUPS"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			b.Fatalf("BENCH_SCALE_ROLLUPS=%q: want a duration, 0 for none", v)
		}
		olderRollups = min(d, benchRollupRetention-historySpan-benchPrefillMargin).Truncate(time.Hour)
		if historySpan == 0 {
			b.Fatal("BENCH_SCALE_ROLLUPS needs a prefilled history (BENCH_SCALE_HISTORY above 0)")
		}
	}
	traffic := "idle"
	if historySpan > 0 {
		traffic = "history"
	}
	switch v := os.Getenv("BENCH_SCALE_TRAFFIC"); v {
	case "":
	case "idle", "history":
		traffic = v
	default:
		b.Fatalf("BENCH_SCALE_TRAFFIC=%q: want idle or history", v)
	}
	promtest.Require(b)
	agent := nomadtest.StartServer(b, nomadtest.Options{})
	nc := agent.Client(b)

	// One counter per service. Idle, flat, so every group's demand (and
	// want) is 0 = its count: the steady state of idle groups, no scale
	// calls. With traffic, growing from now on at the prefill's levels.
	reg := prometheus.NewRegistry()
	reqs := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bench_requests_total", Help: "bench"}, []string{"svc"})
	reg.MustRegister(reqs)
	for i := range policies {
		reqs.WithLabelValues(fmt.Sprintf("s%d", i)).Add(0)
	}
	var live *benchTraffic
	if traffic == "history" {
		live = startBenchTraffic(reqs, policies, shards)
		defer live.close()
	}
	// Before the prefill, which catches up with the clock at its end: the
	// last prefilled point stays seconds before launch.
	warmUp := func() {
		if live == nil {
			return
		}
		if wait := benchTrafficWarmup - time.Since(live.started); wait > 0 {
			b.Logf("traffic: waiting %s for rate() over 1m to warm up", wait.Round(time.Second))
			time.Sleep(wait)
		}
	}
	promBase := promtest.ScrapeRegistry(b, reg)
	promtest.WaitQuery(b, promBase, fmt.Sprintf("count(bench_requests_total) >= %d", policies), 60*time.Second)

	jobs := make([]*nomadapi.Job, policies)
	for i := range jobs {
		jobs[i] = benchJob(i, live != nil)
	}
	start := time.Now()
	registerAll(b, nc, jobs, 8)
	b.Logf("registered %d jobs in %s", policies, time.Since(start).Round(time.Millisecond))

	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	var reps []*benchReplica
	for i := range shards {
		reps = append(reps, &benchReplica{
			dbPath:      filepath.Join(dir, fmt.Sprintf("bench-%d.db", i)),
			httpAddr:    fmt.Sprintf("127.0.0.1:%d", nomadtest.FreePort(b)),
			logPath:     filepath.Join(dir, fmt.Sprintf("daemon-%d.log", i)),
			dbMappedMin: -1, dbMappedMax: -1,
		})
	}
	warmUp()
	var prefillTook time.Duration
	if historySpan > 0 {
		cacheDir, err := filepath.Abs(filepath.Join("..", "..", ".cache", "bench-scale"))
		if err != nil {
			b.Fatal(err)
		}
		for i, r := range reps {
			// Up to a few seconds before launch: no point in the future.
			end := time.Now().Truncate(time.Second).Add(-2 * time.Second)
			r.prefill = prefillHistory(b, r.dbPath, cacheDir, benchSeriesNames(policies, i, shards), i, shards, historySpan, olderRollups, end)
			prefillTook += r.prefill.took
			b.Logf("replica %d: prefilled %s of history in %s (cache %s, used %v)", i, historySpan, r.prefill.took.Round(time.Millisecond), r.prefill.cached, r.prefill.fromCache)
		}
	}
	var liveRate, liveLevel float64
	var liveAge time.Duration
	if live != nil {
		warmUp()
		// rate() over [1m] is about the mean over the minute: the level
		// half a minute ago.
		liveRate = promScalar(b, promBase, "sum(rate(bench_requests_total[1m]))")
		liveLevel = live.levelSum(time.Now().Add(-30 * time.Second).Unix())
		liveAge = time.Since(live.started)
	}
	launched := time.Now()
	for _, r := range reps {
		args := []string{"--db", r.dbPath, "--log-level", "warn", "run", "--nomad-addr", agent.Addr,
			"--prometheus-addr", promBase, "--http-addr", r.httpAddr, "--sample-interval", "1s"}
		if shards > 1 {
			args = append(args, "--shards", strconv.Itoa(shards))
		}
		r.start(b, self, args)
		defer r.stop()
	}
	waitUntil(b, 15*time.Minute, fmt.Sprintf("%d active policies over %d replica(s), one shard each", policies, shards), func() bool {
		active := 0.0
		for _, r := range reps {
			f := scrape(r.metricsURL())
			active += gauge(f, "nomadscaler_policies", "state", "active")
			if shards > 1 && plainGauge(f, "nomadscaler_shards_held") != 1 {
				return false
			}
		}
		return active >= float64(policies)
	})
	allActive := time.Since(launched)
	// Every policy fits its model at its first plan: with history to fit
	// (BENCH_SCALE_HISTORY), a thousand fits are a start-up burst of
	// minutes, not the steady state, where a policy refits once a
	// refit_interval (1 h). The window starts once every policy has
	// fitted once (with idle zeros no model is fitted: nothing to wait
	// for), after at most BENCH_SCALE_FIT_WAIT.
	fitWait := envDuration(b, "BENCH_SCALE_FIT_WAIT", 10*time.Minute)
	fitsAt := func() float64 {
		n := 0.0
		for _, r := range reps {
			n += counter(scrape(r.metricsURL()), "nomadscaler_model_fits_total")
		}
		return n
	}
	var allFitted time.Duration
	if traffic == "history" {
		deadline := time.Now().Add(fitWait)
		for fitsAt() < float64(policies) && time.Now().Before(deadline) {
			time.Sleep(2 * time.Second)
		}
		allFitted = time.Since(launched)
	}
	// Let the first reconciles and ticks settle before measuring.
	time.Sleep(15 * time.Second)

	for _, r := range reps {
		if r.cpu0, err = procCPU(r.cmd.Process.Pid); err != nil {
			b.Fatal(err)
		}
		r.before = scrape(r.metricsURL())
	}
	host0 := hostCPU(b)
	self0, err := procCPU(os.Getpid())
	if err != nil {
		b.Fatal(err)
	}
	from := time.Now().Truncate(time.Second).Add(time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), window)
	defer cancel()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	updates := 0
	// BENCH_SCALE_TRACE=file writes each second's resident set of every
	// replica (total, anonymous, file-backed, the database's mapped pages;
	// bytes), to line a peak up with what the daemon logged at that moment.
	var trace *os.File
	if p := os.Getenv("BENCH_SCALE_TRACE"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		trace = f
		fmt.Fprintln(trace, "time\treplica\trss\tanon\tfile\tdb_mapped")
	}
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-tick.C:
		}
		// A job update a second: each triggers its policy's reconcile.
		j := jobs[updates%len(jobs)]
		j.Meta = map[string]string{"rev": strconv.Itoa(updates)}
		if _, _, err := nc.Jobs().RegisterOpts(j, &nomadapi.RegisterOptions{PreserveCounts: true}, nil); err != nil {
			b.Logf("job update: %v", err)
		}
		updates++
		for i, r := range reps {
			mb, err := store.MappedBytes(r.cmd.Process.Pid, r.dbPath)
			if err != nil {
				b.Fatal(err)
			}
			mapped := float64(mb)
			if r.dbMappedMax < 0 || mapped > r.dbMappedMax {
				r.dbMappedMax = mapped
			}
			if r.dbMappedMin < 0 || mapped < r.dbMappedMin {
				r.dbMappedMin = mapped
			}
			rss, err := procRSS(r.cmd.Process.Pid)
			if err != nil {
				continue
			}
			if rss.total > r.peakRSS {
				r.peakRSS, r.peakRSSAnon, r.peakRSSFile, r.peakDBMapped = rss.total, rss.anon, rss.file, mapped
			}
			if trace != nil {
				fmt.Fprintf(trace, "%s\t%d\t%.0f\t%.0f\t%.0f\t%.0f\n", time.Now().UTC().Format(time.RFC3339), i, rss.total, rss.anon, rss.file, mapped)
			}
		}
	}
	to := time.Now().Truncate(time.Second)
	host1 := hostCPU(b)
	self1, err := procCPU(os.Getpid())
	if err != nil {
		b.Fatal(err)
	}
	elapsed := to.Sub(from)
	for _, r := range reps {
		cpu1, err := procCPU(r.cmd.Process.Pid)
		if err != nil {
			b.Fatal(err)
		}
		r.cores = (cpu1 - r.cpu0) / elapsed.Seconds()
		r.after = scrape(r.metricsURL())
	}
	hostBusy := (host1.busy - host0.busy) / (host1.total - host0.total) * float64(host1.cpus)
	var before, after []families
	for _, r := range reps {
		before, after = append(before, r.before), append(after, r.after)
	}
	lagBefore, lagAfter := mergeHist(before, "nomadscaler_event_lag_seconds"), mergeHist(after, "nomadscaler_event_lag_seconds")
	lagP99 := histQuantile(lagBefore, lagAfter, "nomadscaler_event_lag_seconds", 0.99)
	lagN := histCount(lagAfter, "nomadscaler_event_lag_seconds") - histCount(lagBefore, "nomadscaler_event_lag_seconds")
	active, missed := 0.0, 0.0
	for _, r := range reps {
		active += gauge(r.after, "nomadscaler_policies", "state", "active")
		missed += counter(r.after, "nomadscaler_history_missed_intervals_total") - counter(r.before, "nomadscaler_history_missed_intervals_total")
	}
	// Samples the window's last ticks missed are back-filled within 10 s:
	// give them the time before counting what was stored.
	time.Sleep(12 * time.Second)
	backfilled, lost, gainedFilled, rolledUp, pruned := 0.0, 0.0, 0.0, 0.0, 0.0
	outcomes := map[string]float64{}
	for _, r := range reps {
		final := scrape(r.metricsURL())
		backfilled += counter(final, "nomadscaler_history_backfilled_total") - counter(r.before, "nomadscaler_history_backfilled_total")
		lost += counter(final, "nomadscaler_history_lost_total") - counter(r.before, "nomadscaler_history_lost_total")
		// From start-up: the policies' windows, as far back as Prometheus
		// had them, filled when the series were first recorded.
		gainedFilled += counter(final, "nomadscaler_history_gained_filled_total")
		// From start-up too: the first maintenance rolls up every minute
		// not rolled up yet, and prunes past retention.
		rolledUp += counter(final, "nomadscaler_history_rollups_written_total")
		pruned += counter(final, "nomadscaler_history_pruned_total")
		for sign, f := range map[float64]families{1: final, -1: r.before} {
			if mf := f["nomadscaler_history_samples_total"]; mf != nil {
				for _, m := range mf.Metric {
					for _, l := range m.Label {
						if l.GetName() == "outcome" {
							outcomes[l.GetValue()] += sign * m.GetCounter().GetValue()
						}
					}
				}
			}
		}
	}
	for _, r := range reps {
		r.stop()
	}
	stopped := time.Now()

	stored, total, prefilled, prefillPoints := 0, 0, 0, 0
	var foot, foot0 store.Footprint
	for _, r := range reps {
		db, err := store.Open(r.dbPath, store.Options{ReadOnly: true})
		if err != nil {
			b.Fatal(err)
		}
		series, err := db.ListSeries()
		if err != nil {
			b.Fatal(err)
		}
		for _, s := range series {
			r.points += s.Count
			pts, err := db.Range(s.Name, from, to)
			if err != nil {
				b.Fatal(err)
			}
			r.stored += len(pts)
		}
		if r.foot, err = db.Footprint(); err != nil {
			b.Fatal(err)
		}
		if err := db.Close(); err != nil {
			b.Fatal(err)
		}
		stored, total, foot = stored+r.stored, total+r.points, addFootprints(foot, r.foot)
		foot0 = addFootprints(foot0, r.prefill.foot)
		prefilled, prefillPoints = prefilled+r.prefill.written, prefillPoints+r.prefill.points
	}
	expected := policies * int(elapsed/time.Second)
	var logs []byte
	too, warnLines := 0, 0
	for _, r := range reps {
		l, err := os.ReadFile(r.logPath)
		if err != nil {
			b.Fatal(err)
		}
		r.too = tooMany(string(l))
		too += r.too
		warnLines += bytes.Count(l, []byte("level=WARN")) + bytes.Count(l, []byte("level=ERROR"))
		logs = append(logs, l...)
	}
	agentToo := tooMany(agent.Log())

	pct := 100 * float64(stored) / float64(max(expected, 1))
	cores, peakRSS, peakAnon, peakFile, peakDB := 0.0, 0.0, 0.0, 0.0, 0.0
	dbMin, dbMax := reps[0].dbMappedMin, reps[0].dbMappedMax
	for _, r := range reps {
		cores = max(cores, r.cores)
		if r.peakRSS > peakRSS {
			peakRSS, peakAnon, peakFile, peakDB = r.peakRSS, r.peakRSSAnon, r.peakRSSFile, r.peakDBMapped
		}
		dbMin, dbMax = min(dbMin, r.dbMappedMin), max(dbMax, r.dbMappedMax)
	}
	b.ReportMetric(active, "policies_active")
	b.ReportMetric(pct, "pct_samples")
	b.ReportMetric(cores, "cores")
	b.ReportMetric(peakRSS/(1<<20), "rss_MiB")
	b.ReportMetric(foot.ChunkPageBytesPerPoint(), "sealed_bytes/point")
	b.ReportMetric(float64(foot.FileBytes)/float64(max(total, 1)), "file_bytes/point")
	b.ReportMetric(lagP99*1000, "lag_p99_ms")
	fmt.Printf(`bench-scale: %d policies, %d replica(s) with --shards %d, %s window (all active %s after launch), machine of %d cores shared
  policies active                 %.0f of %d                    goal: all
  samples stored                  %d of %d expected = %.2f%%    goal: >= 99.5%%
    (tick samples ok %.0f, timed out %.0f, failed %.0f; intervals missed %.0f; back-filled %.0f, lost %.0f; history windows back-filled at start-up %.0f points)
  daemon CPU (the busiest)        %.3f cores                    goal: <= 0.25 per 1,000 policies held
  daemon peak RSS (the largest)   %.1f MiB                      goal: <= 256
    (at the peak: anonymous %.1f MiB, file-backed %.1f MiB: the database's mmap pages the daemon touched, and the binary)
    (the database file's pages mapped: %.1f MiB at the peak, %.1f-%.1f MiB over the window, from /proc/PID/smaps each second)
  sealed history per point        %.2f bytes (%d bytes of chunk pages for %d points in chunks; chunk payload %.2f bytes/point)   goal: <= 2
  whole file per stored point     %.1f bytes (%d bytes, %d points; not the goal: %s)
  429 / too many connections      %d in the daemons' logs, %d in Nomad's  goal: 0
  event-to-reconcile p99          %.1f ms over %.0f triggered reconciles (%d job updates)   goal: < 250 ms
  warnings+errors logged          %d lines (%d bytes of log)
  host CPU busy during window     %.2f of %d cores (Nomad, Prometheus, every replica, other engineers' work included)
  bench process CPU during window %.3f cores (its exporter and traffic, the job updates, the scrapes of the daemons)
`, policies, shards, shards, window, allActive.Round(100*time.Millisecond), host1.cpus,
		active, policies,
		stored, expected, pct, outcomes["ok"], outcomes["timeout"], outcomes["error"], missed, backfilled, lost, gainedFilled,
		cores,
		peakRSS/(1<<20), peakAnon/(1<<20), peakFile/(1<<20),
		peakDB/(1<<20), dbMin/(1<<20), dbMax/(1<<20),
		foot.ChunkPageBytesPerPoint(), foot.ChunkPageBytes, foot.ChunkPoints, float64(foot.ChunkBytes)/float64(max(foot.ChunkPoints, 1)),
		float64(foot.FileBytes)/float64(max(total, 1)), foot.FileBytes, total, footprintParts(foot),
		too, agentToo,
		lagP99*1000, lagN, updates,
		warnLines, len(logs),
		hostBusy, host1.cpus,
		(self1-self0)/elapsed.Seconds())
	fits0, fits1, fitSec := 0.0, 0.0, 0.0
	for _, r := range reps {
		fits0 += counter(r.before, "nomadscaler_model_fits_total")
		fits1 += counter(r.after, "nomadscaler_model_fits_total")
		fitSec += counter(r.after, "nomadscaler_model_fit_seconds_total") - counter(r.before, "nomadscaler_model_fit_seconds_total")
	}
	b.ReportMetric(fitSec/elapsed.Seconds(), "fit_cores")
	if traffic == "history" {
		fmt.Printf("  model fits                      %.0f before the window (every policy's first plan; all %d fitted %s after launch, BENCH_SCALE_FIT_WAIT %s), %.0f during it, taking %.3f cores of fitting\n",
			fits0, policies, allFitted.Round(time.Second), fitWait, fits1-fits0, fitSec/elapsed.Seconds())
	} else {
		fmt.Printf("  model fits                      %.0f before the window, %.0f during it (%.3f cores): idle zeros have nothing to fit\n", fits0, fits1-fits0, fitSec/elapsed.Seconds())
	}
	if live != nil {
		rounds, mean, late := live.stats()
		fmt.Printf(`  live traffic                    history (BENCH_SCALE_TRAFFIC): each counter incremented every %s at its prefilled series' level, from %s before launch; groups max 0 (a fixed count: never self-tuned)
    (sum(rate(bench_requests_total[1m])) at launch %.1f/s, the generator's levels %.1f/s: %+.2f%%; exporter %d rounds, %s each on average, %d late)
`, benchTrafficEvery, liveAge.Round(time.Second), liveRate, liveLevel, 100*(liveRate/liveLevel-1), rounds, mean.Round(time.Microsecond), late)
	} else {
		fmt.Printf("  live traffic                    idle (BENCH_SCALE_TRAFFIC): counters at 0, live samples zeros\n")
	}
	if historySpan > 0 {
		// Windows sealed while the daemons ran: the prefill's open one
		// and each one that ended before they stopped.
		windows := stopped.UnixMilli()/chunk.WindowMillis - reps[0].prefill.end.UnixMilli()/chunk.WindowMillis
		fmt.Printf(`  history prefilled before launch %s of 1 s synthetic request counts (%s asked; less %s so the daemon's 24 h raw retention prunes none of it while measured), last point %s before launch
    %d points written (%s) in %s, as the recorder writes them (%d ticks a WritePoints call), with its maintenance every simulated minute: %d points in the file, %d 1-minute rollups
    (the daemon rolled up %.0f minutes and pruned %.0f points from start-up to the end)
  sealed per point before launch  %.2f bytes (%d bytes of chunk pages for %d points in chunks; file %d bytes: %s)
  sealed growth during the run    %.2f bytes/point (%+d bytes of chunk pages for %+d points sealed from launch to the end: the prefill's open window, the gap back-filled and the live ticks, over %d sealing windows; appends to each series' last chunk and the pages it spills into, not a steady-state figure)
`, historySpan, historyAsked, benchPrefillMargin, launched.Sub(reps[len(reps)-1].prefill.end).Round(100*time.Millisecond),
			prefilled, prefillSource(reps), prefillTook.Round(time.Second), prefillTicksPerWrite, prefillPoints, foot0rollups(reps),
			rolledUp, pruned,
			foot0.ChunkPageBytesPerPoint(), foot0.ChunkPageBytes, foot0.ChunkPoints, foot0.FileBytes, footprintParts(foot0),
			float64(foot.ChunkPageBytes-foot0.ChunkPageBytes)/float64(max(foot.ChunkPoints-foot0.ChunkPoints, 1)),
			foot.ChunkPageBytes-foot0.ChunkPageBytes, foot.ChunkPoints-foot0.ChunkPoints, windows)
		if olderRollups > 0 {
			fmt.Printf("  rollups prefilled before that   %s of 1-minute rollups (BENCH_SCALE_ROLLUPS), written when the file was made: %d\n", olderRollups, olderRollupsOf(reps))
		}
	} else {
		fmt.Printf("  history prefilled before launch none (BENCH_SCALE_HISTORY=0): a young file, one first chunk per series\n")
	}
	if len(reps) > 1 {
		for i, r := range reps {
			fmt.Printf("  replica %d: %.0f policies active, %d samples stored, %.3f cores, %.1f MiB peak RSS, %.2f bytes/sealed point, %.1f bytes/point of the whole file (%d bytes, %d points), %d 429s\n",
				i, gauge(r.after, "nomadscaler_policies", "state", "active"), r.stored, r.cores, r.peakRSS/(1<<20),
				r.foot.ChunkPageBytesPerPoint(), float64(r.foot.FileBytes)/float64(max(r.points, 1)), r.foot.FileBytes, r.points, r.too)
		}
	}
	for _, w := range topMessages(logs, 6) {
		fmt.Printf("  logged %5d x %s\n    e.g. %s\n", w.n, w.msg, w.example)
	}
}

// benchReplica is one daemon process of BenchmarkScale and what was
// measured of it.
type benchReplica struct {
	dbPath, httpAddr, logPath string
	cmd                       *exec.Cmd
	logFile                   *os.File
	stopped                   bool

	cpu0, cores, peakRSS float64
	before, after        families
	stored, points, too  int
	foot                 store.Footprint
	prefill              benchPrefill
	// The resident set at its peak, and its anonymous and file-backed
	// (mmap'd database pages, the binary) parts then.
	peakRSSAnon, peakRSSFile float64
	// The database file's pages mapped at the peak, and the fewest and
	// most over the window (sampled each second; -1 before the first).
	peakDBMapped, dbMappedMin, dbMappedMax float64
}

// prefillSource says whether the replicas' prefills were made or copied
// from the cache and topped up.
func prefillSource(reps []*benchReplica) string {
	var parts []string
	for i, r := range reps {
		if r.prefill.fromCache {
			parts = append(parts, fmt.Sprintf("replica %d: %s copied and topped up by %s", i, filepath.Base(r.prefill.cached), r.prefill.toppedUp))
		} else {
			parts = append(parts, fmt.Sprintf("replica %d: generated, cached as %s", i, filepath.Base(r.prefill.cached)))
		}
	}
	return strings.Join(parts, "; ")
}

// olderRollupsOf sums the rollups the replicas' fresh fills wrote before
// their raw history (0 for a file copied from the cache).
func olderRollupsOf(reps []*benchReplica) int {
	n := 0
	for _, r := range reps {
		n += r.prefill.olderRollups
	}
	return n
}

func foot0rollups(reps []*benchReplica) int {
	n := 0
	for _, r := range reps {
		n += r.prefill.rolledUp
	}
	return n
}

// addFootprints sums the replicas' databases part by part.
func addFootprints(a, b store.Footprint) store.Footprint {
	return store.Footprint{
		FileBytes: a.FileBytes + b.FileBytes, PageSize: max(a.PageSize, b.PageSize),
		ChunkPoints: a.ChunkPoints + b.ChunkPoints, ChunkBytes: a.ChunkBytes + b.ChunkBytes, ChunkPageBytes: a.ChunkPageBytes + b.ChunkPageBytes,
		HeadPoints: a.HeadPoints + b.HeadPoints, HeadPageBytes: a.HeadPageBytes + b.HeadPageBytes,
		RollupPageBytes: a.RollupPageBytes + b.RollupPageBytes, OtherPageBytes: a.OtherPageBytes + b.OtherPageBytes,
		FreePageBytes: a.FreePageBytes + b.FreePageBytes, BboltPageBytes: a.BboltPageBytes + b.BboltPageBytes,
		TailBytes: a.TailBytes + b.TailBytes,
	}
}

// footprintParts names where a file's bytes are, so the whole-file figure
// reads for what it is: in minutes of history mostly the open window's log
// and bbolt's preallocated tail, which do not grow with retention.
func footprintParts(f store.Footprint) string {
	return fmt.Sprintf("sealed chunks %d, open-window log %d (%d points), rollups %d, journal/fits/plans/state/meta %d, free pages %d, bbolt's own %d, preallocated tail %d",
		f.ChunkPageBytes, f.HeadPageBytes, f.HeadPoints, f.RollupPageBytes, f.OtherPageBytes, f.FreePageBytes, f.BboltPageBytes, f.TailBytes)
}

func (r *benchReplica) metricsURL() string { return "http://" + r.httpAddr + "/metrics" }

func (r *benchReplica) start(b *testing.B, self string, args []string) {
	f, err := os.Create(r.logPath)
	if err != nil {
		b.Fatal(err)
	}
	r.logFile = f
	r.cmd = exec.Command(self, args...)
	r.cmd.Env = append(os.Environ(), runMainEnv+"=1")
	r.cmd.Stdout, r.cmd.Stderr = f, f
	if err := r.cmd.Start(); err != nil {
		b.Fatal(err)
	}
}

func (r *benchReplica) stop() {
	if r.stopped {
		return
	}
	r.stopped = true
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = r.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = r.cmd.Process.Kill()
		<-done
	}
	_ = r.logFile.Close()
}

func ptrTo[T any](v T) *T { return &v }

// plainGauge is the value of a gauge without labels (0 when absent).
func plainGauge(f families, name string) float64 {
	if mf := f[name]; mf != nil && len(mf.Metric) > 0 {
		return mf.Metric[0].GetGauge().GetValue()
	}
	return 0
}

// mergeHist sums one histogram over several replicas' scrapes, as one
// family histQuantile and histCount read.
func mergeHist(fs []families, name string) families {
	var sum *dto.Histogram
	for _, f := range fs {
		mf := f[name]
		if mf == nil || len(mf.Metric) == 0 {
			continue
		}
		h := mf.Metric[0].GetHistogram()
		if sum == nil {
			sum = &dto.Histogram{SampleCount: ptrTo(uint64(0))}
			for _, bk := range h.Bucket {
				sum.Bucket = append(sum.Bucket, &dto.Bucket{UpperBound: ptrTo(bk.GetUpperBound()), CumulativeCount: ptrTo(uint64(0))})
			}
		}
		sum.SampleCount = ptrTo(sum.GetSampleCount() + h.GetSampleCount())
		for i, bk := range h.Bucket {
			if i < len(sum.Bucket) {
				sum.Bucket[i].CumulativeCount = ptrTo(sum.Bucket[i].GetCumulativeCount() + bk.GetCumulativeCount())
			}
		}
	}
	if sum == nil {
		return families{}
	}
	return families{name: &dto.MetricFamily{Name: ptrTo(name), Metric: []*dto.Metric{{Histogram: sum}}}}
}

// tooMany counts Nomad's refusals of too many connections: its 429 with
// the "too many concurrent connections" body.
func tooMany(logs string) int {
	n := 0
	for _, line := range strings.Split(logs, "\n") {
		l := strings.ToLower(line)
		if strings.Contains(l, "too many concurrent") || strings.Contains(l, "response code: 429") || strings.Contains(l, "status code 429") {
			n++
		}
	}
	return n
}

type msgCount struct {
	msg     string
	n       int
	example string
}

// topMessages counts the log's warning and error lines by message.
func topMessages(logs []byte, n int) []msgCount {
	counts := map[string]int{}
	examples := map[string]string{}
	for _, line := range strings.Split(string(logs), "\n") {
		if !strings.Contains(line, "level=WARN") && !strings.Contains(line, "level=ERROR") {
			continue
		}
		msg := line
		if i := strings.Index(line, "msg="); i >= 0 {
			msg = line[i+4:]
			if strings.HasPrefix(msg, `"`) {
				if j := strings.Index(msg[1:], `"`); j >= 0 {
					msg = msg[:j+2]
				}
			} else if j := strings.IndexByte(msg, ' '); j >= 0 {
				msg = msg[:j]
			}
		}
		counts[msg]++
		if _, ok := examples[msg]; !ok {
			examples[msg] = line[:min(len(line), 400)]
		}
	}
	out := make([]msgCount, 0, len(counts))
	for m, c := range counts {
		out = append(out, msgCount{m, c, examples[m]})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].n > out[j].n })
	return out[:min(n, len(out))]
}

func envInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

func envDuration(b *testing.B, name string, def time.Duration) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		b.Fatalf("%s=%q: want a positive duration", name, v)
	}
	return d
}

// benchJob is job i: one group of count 0 whose policy records its
// service's request rate from Prometheus, in dry-run mode. With traffic
// (see BenchmarkScale), the group's max is 0.
func benchJob(i int, traffic bool) *nomadapi.Job {
	id := fmt.Sprintf("bench-%04d", i)
	job := nomadapi.NewServiceJob(id, id, "global", 50)
	job.Datacenters = []string{"*"}
	target := map[string]any{"capacity_per_replica": 10.0, "dry_run": true}
	groupMax := 10
	if traffic {
		groupMax = 0
	}
	pol := nomadscalerPolicy(map[string][2]string{"requests": {"prometheus", fmt.Sprintf(`sum(rate(bench_requests_total{svc="s%d"}[1m]))`, i)}}, target, nil)
	job.AddTaskGroup(scalingGroup("web", 0, 0, groupMax, pol))
	return job
}

func registerAll(b *testing.B, c *nomadapi.Client, jobs []*nomadapi.Job, parallel int) {
	var wg sync.WaitGroup
	errs := make(chan error, len(jobs))
	next := make(chan *nomadapi.Job)
	for range parallel {
		wg.Go(func() {
			for j := range next {
				if _, _, err := c.Jobs().Register(j, nil); err != nil {
					errs <- fmt.Errorf("register %s: %w", *j.ID, err)
				}
			}
		})
	}
	for _, j := range jobs {
		next <- j
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

type families map[string]*dto.MetricFamily

func scrape(url string) families {
	res, err := http.Get(url)
	if err != nil {
		return nil
	}
	defer res.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mf, err := p.TextToMetricFamilies(res.Body)
	if err != nil {
		return nil
	}
	return mf
}

func gauge(f families, name, label, value string) float64 {
	mf := f[name]
	if mf == nil {
		return 0
	}
	for _, m := range mf.Metric {
		for _, l := range m.Label {
			if l.GetName() == label && l.GetValue() == value {
				return m.GetGauge().GetValue()
			}
		}
	}
	return 0
}

func counter(f families, name string) float64 {
	if mf := f[name]; mf != nil && len(mf.Metric) > 0 {
		return mf.Metric[0].GetCounter().GetValue()
	}
	return 0
}

func histCount(f families, name string) float64 {
	if mf := f[name]; mf != nil && len(mf.Metric) > 0 {
		return float64(mf.Metric[0].GetHistogram().GetSampleCount())
	}
	return 0
}

// histQuantile is the q quantile of the observations between two scrapes,
// interpolated linearly within the bucket it falls in (as
// histogram_quantile does).
func histQuantile(before, after families, name string, q float64) float64 {
	a, b := after[name], before[name]
	if a == nil || len(a.Metric) == 0 {
		return math.NaN()
	}
	prev := map[float64]float64{}
	if b != nil && len(b.Metric) > 0 {
		for _, bk := range b.Metric[0].GetHistogram().Bucket {
			prev[bk.GetUpperBound()] = float64(bk.GetCumulativeCount())
		}
	}
	h := a.Metric[0].GetHistogram()
	total := float64(h.GetSampleCount()) - histCount(before, name)
	if total <= 0 {
		return math.NaN()
	}
	bks := h.Bucket
	sort.Slice(bks, func(i, j int) bool { return bks[i].GetUpperBound() < bks[j].GetUpperBound() })
	lower, lowerCount := 0.0, 0.0
	for _, bk := range bks {
		c := float64(bk.GetCumulativeCount()) - prev[bk.GetUpperBound()]
		if c >= q*total {
			if c == lowerCount {
				return bk.GetUpperBound()
			}
			return lower + (bk.GetUpperBound()-lower)*(q*total-lowerCount)/(c-lowerCount)
		}
		lower, lowerCount = bk.GetUpperBound(), c
	}
	return math.Inf(1) // beyond the last bucket
}

// procCPU is the process's user+system CPU seconds.
func procCPU(pid int) (float64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which may hold spaces: state is 3rd.
	rest := string(raw[bytes.LastIndexByte(raw, ')')+2:])
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	ut, err1 := strconv.ParseFloat(f[11], 64)
	stime, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	return (ut + stime) / 100, nil // USER_HZ is 100 on Linux
}

// rssParts is a process's resident set in bytes (VmRSS) and its
// anonymous and file-backed parts (RssAnon, RssFile).
type rssParts struct{ total, anon, file float64 }

// procRSS is the process's resident set.
func procRSS(pid int) (rssParts, error) {
	var r rssParts
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return r, err
	}
	defer f.Close()
	found := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		for _, field := range []struct {
			name string
			to   *float64
		}{{"VmRSS:", &r.total}, {"RssAnon:", &r.anon}, {"RssFile:", &r.file}} {
			if v, ok := strings.CutPrefix(sc.Text(), field.name); ok {
				kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
				if err != nil {
					return r, err
				}
				*field.to = kb * 1024
				found = found || field.name == "VmRSS:"
			}
		}
	}
	if !found {
		return r, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
	}
	return r, nil
}

type hostTimes struct {
	busy, total float64
	cpus        int
}

// hostCPU reads the machine's CPU time from /proc/stat, to say how busy the
// shared machine was while the daemon was measured.
func hostCPU(b *testing.B) hostTimes {
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		b.Fatal(err)
	}
	var h hostTimes
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if f[0] == "cpu" {
			for i, v := range f[1:] {
				x, _ := strconv.ParseFloat(v, 64)
				h.total += x
				if i != 3 && i != 4 { // idle, iowait
					h.busy += x
				}
			}
		} else if strings.HasPrefix(f[0], "cpu") {
			h.cpus++
		}
	}
	return h
}
