package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
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
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/nomadscalerd/nomadscalerd/history/promtest"
	"github.com/nomadscalerd/nomadscalerd/nomadtest"
	"github.com/nomadscalerd/nomadscalerd/store"
)

// BenchmarkScale runs the daemon as its own process against a real Nomad
// dev agent and a real Prometheus with BENCH_SCALE_POLICIES policies
// (default 1,000: one check "requests" each, dry_run, groups of count 0, 1 s
// sampling) for BENCH_SCALE_DURATION (default 3m) after every policy is
// active, and prints what issue 12 asks of it. Job updates at one a second
// during the window give the event-to-reconcile figure. `make bench-scale`.
func BenchmarkScale(b *testing.B) {
	policies := envInt(b, "BENCH_SCALE_POLICIES", 1000)
	window := envDuration(b, "BENCH_SCALE_DURATION", 3*time.Minute)
	promtest.Require(b)
	agent := nomadtest.StartServer(b, nomadtest.Options{})
	nc := agent.Client(b)

	// One counter per service; flat, so every group's demand (and want)
	// is 0 = its count: the steady state of idle groups, no scale calls.
	reg := prometheus.NewRegistry()
	reqs := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bench_requests_total", Help: "bench"}, []string{"svc"})
	reg.MustRegister(reqs)
	for i := range policies {
		reqs.WithLabelValues(fmt.Sprintf("s%d", i)).Add(0)
	}
	exporter := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer exporter.Close()
	promBase := promtest.StartPrometheus(b, []string{strings.TrimPrefix(exporter.URL, "http://")})
	promtest.WaitQuery(b, promBase, fmt.Sprintf("count(bench_requests_total) >= %d", policies), 60*time.Second)

	jobs := make([]*nomadapi.Job, policies)
	for i := range jobs {
		jobs[i] = benchJob(i)
	}
	start := time.Now()
	registerAll(b, nc, jobs, 8)
	b.Logf("registered %d jobs in %s", policies, time.Since(start).Round(time.Millisecond))

	dir := b.TempDir()
	dbPath := filepath.Join(dir, "bench.db")
	httpAddr := fmt.Sprintf("127.0.0.1:%d", nomadtest.FreePort(b))
	logPath := filepath.Join(dir, "daemon.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		b.Fatal(err)
	}
	defer logFile.Close()
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(self, "--db", dbPath, "--log-level", "warn", "run", "--nomad-addr", agent.Addr,
		"--prometheus-addr", promBase, "--http-addr", httpAddr, "--sample-interval", "1s")
	cmd.Env = append(os.Environ(), runMainEnv+"=1")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	launched := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	defer stop()
	metricsURL := "http://" + httpAddr + "/metrics"
	waitUntil(b, 5*time.Minute, fmt.Sprintf("%d active policies", policies), func() bool {
		return gauge(scrape(metricsURL), "nomadscaler_policies", "state", "active") >= float64(policies)
	})
	allActive := time.Since(launched)
	// Let the first reconciles and ticks settle before measuring.
	time.Sleep(15 * time.Second)

	pid := cmd.Process.Pid
	cpu0, err := procCPU(pid)
	if err != nil {
		b.Fatal(err)
	}
	host0 := hostCPU(b)
	before := scrape(metricsURL)
	from := time.Now().Truncate(time.Second).Add(time.Second)
	var peakRSS float64
	ctx, cancel := context.WithTimeout(context.Background(), window)
	defer cancel()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	updates := 0
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
		if rss, err := procRSS(pid); err == nil {
			peakRSS = max(peakRSS, rss)
		}
	}
	to := time.Now().Truncate(time.Second)
	cpu1, err := procCPU(pid)
	if err != nil {
		b.Fatal(err)
	}
	host1 := hostCPU(b)
	after := scrape(metricsURL)
	elapsed := to.Sub(from)
	cores := (cpu1 - cpu0) / elapsed.Seconds()
	hostBusy := (host1.busy - host0.busy) / (host1.total - host0.total) * float64(host1.cpus)
	lagP99 := histQuantile(before, after, "nomadscaler_event_lag_seconds", 0.99)
	lagN := histCount(after, "nomadscaler_event_lag_seconds") - histCount(before, "nomadscaler_event_lag_seconds")
	missed := counter(after, "nomadscaler_history_missed_intervals_total") - counter(before, "nomadscaler_history_missed_intervals_total")
	active := gauge(after, "nomadscaler_policies", "state", "active")
	// Samples the window's last ticks missed are back-filled within 10 s:
	// give them the time before counting what was stored.
	time.Sleep(12 * time.Second)
	final := scrape(metricsURL)
	backfilled := counter(final, "nomadscaler_history_backfilled_total") - counter(before, "nomadscaler_history_backfilled_total")
	lost := counter(final, "nomadscaler_history_lost_total") - counter(before, "nomadscaler_history_lost_total")
	outcomes := map[string]float64{}
	if mf := final["nomadscaler_history_samples_total"]; mf != nil {
		for _, m := range mf.Metric {
			for _, l := range m.Label {
				if l.GetName() == "outcome" {
					outcomes[l.GetValue()] += m.GetCounter().GetValue()
				}
			}
		}
	}
	if mf := before["nomadscaler_history_samples_total"]; mf != nil {
		for _, m := range mf.Metric {
			for _, l := range m.Label {
				if l.GetName() == "outcome" {
					outcomes[l.GetValue()] -= m.GetCounter().GetValue()
				}
			}
		}
	}
	stop()

	db, err := store.Open(dbPath, store.Options{ReadOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	series, err := db.ListSeries()
	if err != nil {
		b.Fatal(err)
	}
	stored, total := 0, 0
	for _, s := range series {
		total += s.Count
		pts, err := db.Range(s.Name, from, to)
		if err != nil {
			b.Fatal(err)
		}
		stored += len(pts)
	}
	_ = db.Close()
	st, err := os.Stat(dbPath)
	if err != nil {
		b.Fatal(err)
	}
	expected := policies * int(elapsed/time.Second)
	logs, err := os.ReadFile(logPath)
	if err != nil {
		b.Fatal(err)
	}
	too := tooMany(string(logs))
	agentToo := tooMany(agent.Log())
	warnLines := bytes.Count(logs, []byte("level=WARN")) + bytes.Count(logs, []byte("level=ERROR"))

	pct := 100 * float64(stored) / float64(max(expected, 1))
	b.ReportMetric(active, "policies_active")
	b.ReportMetric(pct, "pct_samples")
	b.ReportMetric(cores, "cores")
	b.ReportMetric(peakRSS/(1<<20), "rss_MiB")
	b.ReportMetric(float64(st.Size())/float64(max(total, 1)), "bytes/point")
	b.ReportMetric(lagP99*1000, "lag_p99_ms")
	fmt.Printf(`bench-scale: %d policies, %s window (all active %s after launch), machine of %d cores shared
  policies active                 %.0f of %d                    goal: all
  samples stored                  %d of %d expected = %.2f%%    goal: >= 99.5%%
    (tick samples ok %.0f, timed out %.0f, failed %.0f; intervals missed %.0f; back-filled %.0f, lost %.0f)
  daemon CPU                      %.3f cores                    goal: <= 0.25
  daemon peak RSS                 %.1f MiB                      goal: <= 256
  bytes per stored point          %.1f (%d bytes, %d points)    goal: <= 2 at steady state (minutes of history are mostly bbolt's preallocation; see make bench-store)
  429 / too many connections      %d in the daemon's log, %d in Nomad's  goal: 0
  event-to-reconcile p99          %.1f ms over %.0f triggered reconciles (%d job updates)   goal: < 250 ms
  warnings+errors logged          %d lines (%d bytes of log)
  host CPU busy during window     %.2f of %d cores (Nomad, Prometheus, other engineers' work included)
`, policies, window, allActive.Round(100*time.Millisecond), host1.cpus,
		active, policies,
		stored, expected, pct, outcomes["ok"], outcomes["timeout"], outcomes["error"], missed, backfilled, lost,
		cores,
		peakRSS/(1<<20),
		float64(st.Size())/float64(max(total, 1)), st.Size(), total,
		too, agentToo,
		lagP99*1000, lagN, updates,
		warnLines, len(logs),
		hostBusy, host1.cpus)
	for _, w := range topMessages(logs, 6) {
		fmt.Printf("  logged %5d x %s\n    e.g. %s\n", w.n, w.msg, w.example)
	}
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
// service's request rate from Prometheus, in dry-run mode.
func benchJob(i int) *nomadapi.Job {
	id := fmt.Sprintf("bench-%04d", i)
	job := nomadapi.NewServiceJob(id, id, "global", 50)
	job.Datacenters = []string{"*"}
	pol := nomadscalerPolicy(map[string][2]string{"requests": {"prometheus", fmt.Sprintf(`sum(rate(bench_requests_total{svc="s%d"}[1m]))`, i)}},
		map[string]any{"capacity_per_replica": 10.0, "dry_run": true}, nil)
	job.AddTaskGroup(scalingGroup("web", 0, 0, 10, pol))
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

// procRSS is the process's resident set in bytes.
func procRSS(pid int) (float64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
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
