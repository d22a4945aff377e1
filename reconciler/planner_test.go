package reconciler

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/cronexpr"

	"github.com/nomadscalerd/nomadscalerd/optimize"
	"github.com/nomadscalerd/nomadscalerd/predict"
	"github.com/nomadscalerd/nomadscalerd/store"
)

func TestKnownRegressorsMarkScheduledEventsAheadOfTimeAndRepeatSeasonally(t *testing.T) {
	ev := Event{Name: "noon", Cron: "0 12 * * *", Duration: 30 * time.Minute, expr: cronexpr.MustParse("0 12 * * *")}
	tg := Target{Seasonality: []time.Duration{time.Hour}, FourierTerms: 2, Events: []Event{ev}}
	first := time.Date(2026, 11, 23, 11, 0, 0, 0, time.Local)
	rows := knownRegressors(tg, first, 2*3600, 2*time.Hour)
	if len(rows) != 7200 || len(rows[0]) != 5 {
		t.Fatalf("shape %d x %d, want 7200 x 5", len(rows), len(rows[0]))
	}
	at := func(d time.Duration) []float64 { return rows[int(d.Seconds())] }
	if at(59 * time.Minute)[4] != 0 || at(60 * time.Minute)[4] != 1 || at(89 * time.Minute)[4] != 1 || at(91 * time.Minute)[4] != 0 {
		t.Errorf("noon indicator wrong around 12:00-12:30")
	}
	for c := 0; c < 4; c++ {
		if math.Abs(at(10 * time.Minute)[c]-at(70 * time.Minute)[c]) > 1e-9 {
			t.Errorf("Fourier column %d does not repeat with the 1h period", c)
		}
	}
	if knownRegressors(Target{}, first, 10, time.Hour) != nil {
		t.Error("a target without seasonality or events has no regressors")
	}
}

func TestHistoryPlannerPlansFromStoredHistoryAndServesTheCacheSize(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), "p.db"), store.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p := testPolicy()
	p.Target.CapacityPerReplica, p.Target.MaxScaleUp, p.Target.MaxScaleDown = 10, 2, 2
	p.Target.HistoryWindow, p.Target.ForecastHorizon, p.Target.CacheSize = time.Hour, 30, 6
	p.Target.Penalty, p.Target.StartupCost, p.Target.ShutdownCost, p.Target.ExtraPenalty = 1, 0.5, 0.3, 10
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	var pts []store.Point
	for i := 120; i > 0; i-- {
		pts = append(pts, store.Point{Series: store.SeriesName(p.Key, "requests"), T: now.Add(-time.Duration(i) * time.Second), V: 50})
	}
	if err := db.WritePoints(pts); err != nil {
		t.Fatal(err)
	}
	hp := NewHistoryPlanner(db, func(Policy) optimize.Forecaster { return optimize.LastValueForecaster{} }, nil, optimize.DPSolver{}, nil, nil)
	plan, err := hp.Plan(context.Background(), p, 1, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Desired) != 6 {
		t.Fatalf("plan has %d seconds, want the cache size 6", len(plan.Desired))
	}
	// From 1 replica, at most 2 more a second, to the 5 that 50 req/s needs.
	if plan.Desired[0] != 3 || plan.Desired[1] != 5 || plan.Desired[5] != 5 {
		t.Fatalf("desired = %v, want a ramp 3, 5, 5...", plan.Desired)
	}
	// The decider judges scale-downs against the demand the plan was
	// solved for, second by second.
	if len(plan.Demand) != len(plan.Desired) || plan.Demand[0] != 50 {
		t.Fatalf("plan demand %v, want the forecast 50 for each of its %d seconds", plan.Demand, len(plan.Desired))
	}
	p.Checks[0].Name = "other"
	p.Target.RequestsCheck = "other"
	if _, err := hp.Plan(context.Background(), p, 1, now); !errors.Is(err, optimize.ErrNoHistory) && !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown series: err = %v, want no history", err)
	}
}

type fixedResources struct{ cpu, mem float64 }

func (f fixedResources) GroupResources(context.Context, string, string, string) (float64, float64, error) {
	return f.cpu, f.mem, nil
}

func TestCPUAndMemoryPricesSetTheReplicaCostFromTheGroupsAllocation(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), "p.db"), store.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	p := testPolicy()
	p.Target.HistoryWindow, p.Target.ForecastHorizon, p.Target.CacheSize = time.Hour, 10, 5
	p.Target.CapacityPerReplica, p.Target.MaxScaleUp, p.Target.MaxScaleDown, p.Target.Penalty = 10, 2, 2, 1
	_ = db.WritePoints([]store.Point{{Series: store.SeriesName(p.Key, "requests"), T: now.Add(-time.Second), V: 50}})
	hp := NewHistoryPlanner(db, func(Policy) optimize.Forecaster { return optimize.LastValueForecaster{} }, nil, optimize.DPSolver{}, nil, nil)
	p.Target.CPUPrice = 0.01
	if _, err := hp.Plan(context.Background(), p, 5, now); err == nil {
		t.Fatal("pricing CPU without a resource reader should fail loudly")
	}
	// 500 MHz at 0.05 costs 25 per replica-second: more than the penalty of
	// the 10 req/s one replica covers, so the optimum keeps only the minimum.
	p.Target.CPUPrice = 0.05
	hp.WithResources(fixedResources{cpu: 500, mem: 256})
	plan, err := hp.Plan(context.Background(), p, 5, now)
	if err != nil {
		t.Fatal(err)
	}
	if last := plan.Desired[len(plan.Desired)-1]; last != p.Min {
		t.Fatalf("with replicas priced at 5/s the plan keeps %d, want the minimum %d", last, p.Min)
	}
	p.Target.CPUPrice = 0.0001 // 0.05 per replica-second: cover the demand
	plan, _ = hp.Plan(context.Background(), p, 5, now)
	if last := plan.Desired[len(plan.Desired)-1]; last != 5 {
		t.Fatalf("cheap replicas: plan keeps %d, want 5", last)
	}
}

// countingForecaster is a fake that records the most plans inside it at
// once, and waits a while for a second one to arrive.
type countingForecaster struct {
	inFlight, most atomic.Int32
	both           chan struct{}
	once           sync.Once
}

func (f *countingForecaster) Forecast(_ context.Context, h optimize.History, steps int) ([]float64, error) {
	n := f.inFlight.Add(1)
	defer f.inFlight.Add(-1)
	for {
		m := f.most.Load()
		if n <= m || f.most.CompareAndSwap(m, n) {
			break
		}
	}
	if n == 2 {
		f.once.Do(func() { close(f.both) })
	}
	select { // give a second plan the chance to arrive
	case <-f.both:
	case <-time.After(300 * time.Millisecond):
	}
	out := make([]float64, steps)
	return out, nil
}

// A policy's forecaster keeps its fit and warm starts between calls and
// has no lock of its own; POST /optimize plans several requests at once
// beside the policy's worker. Uses a fake forecaster that records how many
// plans are inside it at once.
func TestTwoPlansOfOnePolicyAtOnceNeverRunItsForecasterConcurrently(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), "h.db"), store.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Now().Truncate(time.Second)
	p := testPolicy()
	var pts []store.Point
	for i := 120; i > 0; i-- {
		pts = append(pts, store.Point{Series: store.SeriesName(p.Key, "requests"), T: now.Add(-time.Duration(i) * time.Second), V: 5})
	}
	if err := db.WritePoints(pts); err != nil {
		t.Fatal(err)
	}
	var built []*countingForecaster
	var mu sync.Mutex
	hp := NewHistoryPlanner(db, func(Policy) optimize.Forecaster {
		mu.Lock()
		defer mu.Unlock()
		f := &countingForecaster{both: make(chan struct{})}
		built = append(built, f)
		return f
	}, nil, optimize.DPSolver{}, nil, nil)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			if _, err := hp.Plan(context.Background(), p, 2, now); err != nil && !errors.Is(err, optimize.ErrShortHistory) {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for _, f := range built {
		if f.most.Load() > 1 {
			t.Fatalf("%d plans of %s ran one forecaster at once (%d forecaster(s) built)", f.most.Load(), p.Key, len(built))
		}
	}
}

func TestAnUnwrittenRampLimitGrowsWithTheCountAndAWrittenOneIsKeptAsWritten(t *testing.T) {
	cases := []struct {
		name          string
		target        map[string]any
		current       int
		wantUp, wantD int
	}{
		{"a small group keeps 2 a second", map[string]any{}, 20, 2, 2},
		{"at 40 replicas 5% is still 2", map[string]any{}, 40, 2, 2},
		{"at 41 replicas 5% rounds up to 3", map[string]any{}, 41, 3, 3},
		{"at 400 replicas 5% is 20", map[string]any{}, 400, 20, 20},
		{"a written limit is kept at any count", map[string]any{"max_scale_up": 2.0, "max_scale_down": 4.0}, 400, 2, 4},
		{"a written down limit leaves the up limit relative", map[string]any{"max_scale_down": 1.0}, 400, 20, 1},
		{"a written 0 (no scale-down) is kept", map[string]any{"max_scale_down": 0.0}, 400, 20, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParsePolicy(scalingPolicy(reqCheck, tc.target, nil), Defaults{CacheSize: 10, ForecastHorizon: 60})
			if err != nil {
				t.Fatal(err)
			}
			prob := problemFor(p, tc.current)
			if prob.MaxScaleUp != tc.wantUp || prob.MaxScaleDown != tc.wantD {
				t.Errorf("at %d replicas: limits up %d, down %d; want %d, %d", tc.current, prob.MaxScaleUp, prob.MaxScaleDown, tc.wantUp, tc.wantD)
			}
		})
	}
}

// rangeRecorder is a fake history reader that remembers the ranges read
// and answers each with a constant second by second.
type rangeRecorder struct {
	mu    sync.Mutex
	reads []time.Duration
}

func (r *rangeRecorder) Range(series string, from, to time.Time) ([]store.Sample, error) {
	r.mu.Lock()
	r.reads = append(r.reads, to.Sub(from))
	r.mu.Unlock()
	var out []store.Sample
	for t := from; t.Before(to); t = t.Add(time.Second) {
		out = append(out, store.Sample{T: t, V: 50})
	}
	return out, nil
}

func TestAPlanOfAPolicyWithoutSeasonsReadsTheHourItsModelIsFittedOnNotItsWholeHistoryWindowFakeHistory(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name    string
		seasons []time.Duration
		want    time.Duration
	}{
		{"no season: the latest hour", nil, time.Hour},
		{"a declared day: the whole window", []time.Duration{24 * time.Hour}, 48 * time.Hour},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := testPolicy()
			p.Target.HistoryWindow, p.Target.Seasonality = 48*time.Hour, c.seasons
			r := &rangeRecorder{}
			hp := NewHistoryPlanner(r, func(Policy) optimize.Forecaster { return optimize.LastValueForecaster{} }, nil, optimize.DPSolver{}, nil, nil)
			if _, err := hp.PlanAhead(context.Background(), p, predict.PlanRequest{Now: now, Current: 1, Horizon: 60}); err != nil {
				t.Fatal(err)
			}
			if len(r.reads) != 1 || r.reads[0] != c.want {
				t.Errorf("ranges read %v, want one of %s", r.reads, c.want)
			}
		})
	}
}

// leadRecordingForecaster is a fake that keeps the lead each plan hands
// it and forecasts nothing.
type leadRecordingForecaster struct{ lead int }

func (f *leadRecordingForecaster) Forecast(_ context.Context, h optimize.History, steps int) ([]float64, error) {
	f.lead = h.Lead
	return make([]float64, steps), nil
}

func TestAPlanTellsItsForecastTheStartupDelayPlusTheReplanIntervalAsItsLead(t *testing.T) {
	p := testPolicy()
	p.Target.ReplanInterval = 10 * time.Second
	f := &leadRecordingForecaster{}
	pp := PolicyPlanner{Policy: p, Forecaster: f, Solver: optimize.DPSolver{}}
	for _, delay := range []time.Duration{0, 30 * time.Second, 1500 * time.Millisecond} {
		_, err := pp.Plan(context.Background(), time.Unix(0, 0), make([]float64, 600),
			predict.PlanRequest{Now: time.Unix(600, 0), Current: 1, StartupDelay: delay, Horizon: 60})
		if err != nil {
			t.Fatal(err)
		}
		// A replica asked for now serves after the delay (whole seconds,
		// rounded up), and the next plan comes within the interval.
		if want := int(math.Ceil(delay.Seconds())) + 10; f.lead != want {
			t.Errorf("startup delay %s: lead %d s, want %d", delay, f.lead, want)
		}
	}
}
