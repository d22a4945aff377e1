package backtest

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// nasaTrace is the NASA trace beside the checkout (see ../shared/README.md);
// NASA_TRACE overrides the path.
func nasaTrace() string {
	if p := os.Getenv("NASA_TRACE"); p != "" {
		return p
	}
	return "../../shared/traces/nasa-1995-per-second.txt.gz"
}

type sweepCell struct {
	startup            int
	history, step      time.Duration
	cacheSize, horizon int
	pred               Result
}

// BenchmarkPredictiveSweepOnTheNASAWeek replays the NASA week (7 days from
// second 86400, scale 100, 60 s rate window) through the predictive policy
// across a grid of settings: the service's startup delay {0, 30, 60 s}
// (which the policy measures, as the daemon does), and the policy's
// history_window {1h, 1d, 2d}, model_step {1s, 10s, 60s} and
// cache_size/forecast_horizon {10/60, 45/90, 60/120}, everything else at
// the daemon's defaults. In every cell predictive must leave no more unmet
// requests than target-value and cost no more. It prints the grid as a
// Markdown table (make bench-sweep).
func BenchmarkPredictiveSweepOnTheNASAWeek(b *testing.B) {
	trace, err := ReadTraceFile(nasaTrace())
	if err != nil {
		b.Skipf("NASA trace: %v", err)
	}
	replay, err := NewReplay(trace, 86400, 7*86400, 100, 60, 2*86400)
	if err != nil {
		b.Fatal(err)
	}
	var cells []*sweepCell
	for _, sd := range []int{0, 30, 60} {
		for _, hw := range []time.Duration{time.Hour, 24 * time.Hour, 48 * time.Hour} {
			for _, ms := range []time.Duration{time.Second, 10 * time.Second, time.Minute} {
				for _, ch := range [][2]int{{10, 60}, {45, 90}, {60, 120}} {
					cells = append(cells, &sweepCell{startup: sd, history: hw, step: ms, cacheSize: ch[0], horizon: ch[1]})
				}
			}
		}
	}
	for b.Loop() {
		ctx := context.Background()
		tv := map[int]Result{}
		for _, sd := range []int{0, 30, 60} {
			cfg := DefaultConfig()
			cfg.StartupDelay = sd
			if tv[sd], err = Run(ctx, cfg, replay.Demand, NewTargetValue(cfg.Capacity), nil); err != nil {
				b.Fatal(err)
			}
		}
		work := make(chan *sweepCell)
		errs := make(chan error, len(cells))
		var wg sync.WaitGroup
		var printMu sync.Mutex
		began := time.Now()
		for range runtime.GOMAXPROCS(0) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for c := range work {
					cfg := DefaultConfig()
					cfg.StartupDelay = c.startup
					pcfg := DefaultPredictiveConfig(cfg.Min, cfg.Max)
					t := &pcfg.Policy.Target
					t.HistoryWindow, t.ModelStep, t.CacheSize, t.ForecastHorizon = c.history, c.step, c.cacheSize, c.horizon
					p, err := NewPredictive(cfg, pcfg, replay.Prior, replay.Start, nil)
					if err == nil {
						c.pred, err = Run(ctx, cfg, replay.Demand, p, nil)
					}
					if err != nil {
						errs <- fmt.Errorf("cell %+v: %w", *c, err)
						continue
					}
					// Each cell as it finishes, so a long run shows progress.
					printMu.Lock()
					fmt.Printf("cell done after %s: startup %ds history %s step %s cache/horizon %d/%d: unmet %.0f cost %.0f\n",
						time.Since(began).Round(time.Second), c.startup, days(c.history), c.step, c.cacheSize, c.horizon, c.pred.UnmetRequests, c.pred.Cost)
					printMu.Unlock()
				}
			}()
		}
		for _, c := range cells {
			work <- c
		}
		close(work)
		wg.Wait()
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
		var out strings.Builder
		fmt.Fprintln(&out, "| startup | history | step | cache/horizon | predictive unmet | target-value unmet | predictive cost | target-value cost | both better |")
		fmt.Fprintln(&out, "|---:|---:|---:|---:|---:|---:|---:|---:|:---:|")
		failed := 0
		for _, c := range cells {
			base := tv[c.startup]
			ok := c.pred.UnmetRequests <= base.UnmetRequests && c.pred.Cost <= base.Cost
			mark := "yes"
			if !ok {
				mark, failed = "**no**", failed+1
			}
			fmt.Fprintf(&out, "| %ds | %s | %s | %d/%d | %.0f | %.0f | %.0f | %.0f | %s |\n", c.startup, days(c.history), c.step,
				c.cacheSize, c.horizon, c.pred.UnmetRequests, base.UnmetRequests, c.pred.Cost, base.Cost, mark)
		}
		fmt.Print(out.String())
		if failed > 0 {
			b.Errorf("%d of %d cells: predictive leaves more unmet requests or costs more than target-value", failed, len(cells))
		}
	}
}

func days(d time.Duration) string {
	if d >= 24*time.Hour && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}
