package model

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/nomadscalerd/nomadscalerd/optimize"
)

func TestForecasterRefusesTooShortAHistory(t *testing.T) {
	f := NewForecaster(DefaultForecastConfig(), time.Now)
	_, err := f.Forecast(context.Background(), optimize.History{Requests: make([]float64, 600)}, 60)
	if !errors.Is(err, ErrShortHistory) {
		t.Fatalf("err = %v, want ErrShortHistory", err)
	}
}

func TestForecasterFollowsARampAndAddsItsMargin(t *testing.T) {
	// 4 hours rising by 1 request/s every minute, plus a little noise.
	rng := rand.New(rand.NewPCG(5, 8))
	h := make([]float64, 4*3600)
	for s := range h {
		h[s] = 20 + float64(s)/60 + rng.NormFloat64()*0.5
	}
	last := 20 + float64(len(h))/60
	for _, sqrt := range []bool{false, true} {
		cfg := DefaultForecastConfig()
		cfg.Sqrt = sqrt
		cfg.Margin = 0
		mean, err := NewForecaster(cfg, time.Now).Forecast(context.Background(), optimize.History{Requests: h}, 600)
		if err != nil {
			t.Fatal(err)
		}
		// Ten minutes on, the ramp is 10 higher.
		if got := mean[599]; math.Abs(got-(last+10)) > 2 {
			t.Errorf("sqrt %v: forecast 600 s ahead %.1f, want about %.1f", sqrt, got, last+10)
		}
		if math.Abs(mean[0]-last) > 2 {
			t.Errorf("sqrt %v: forecast 1 s ahead %.1f, want about %.1f", sqrt, mean[0], last)
		}
		cfg.Margin = 2
		upper, err := NewForecaster(cfg, time.Now).Forecast(context.Background(), optimize.History{Requests: h}, 600)
		if err != nil {
			t.Fatal(err)
		}
		for s := range upper {
			if upper[s] < mean[s] {
				t.Fatalf("sqrt %v: second %d: forecast with margin %.2f below the mean %.2f", sqrt, s, upper[s], mean[s])
			}
		}
		if upper[599] <= mean[599] {
			t.Errorf("sqrt %v: margin added nothing 600 s ahead", sqrt)
		}
	}
}

func TestEveryRefitIsHandedOverAsARecordAndASeedWarmStartsTheNextFit(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	cfg := ForecastConfig{Step: 10, Orders: []Order{{P: 1, D: 0, Q: 0}}, RefitEvery: time.Minute}
	f := NewForecaster(cfg, clock)
	var got []Record
	f.OnFit = func(r Record) { got = append(got, r) }
	h := optimize.History{Requests: make([]float64, 600)}
	for i := range h.Requests {
		h.Requests[i] = 50 + 10*math.Sin(float64(i)/30) + float64(i%7)
	}
	if _, err := f.Forecast(context.Background(), h, 30); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Forecast(context.Background(), h, 30); err != nil { // within RefitEvery: no new fit
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Order.String() != "1,0,0" || len(got[0].Params) == 0 || !got[0].TrainedAt.Equal(now) || got[0].NObs != 60 {
		t.Fatalf("records = %+v, want one fit of order 1,0,0 on 60 steps", got)
	}
	g := NewForecaster(cfg, clock)
	g.Seed(got[0])
	if w := g.warm["1,0,0"]; len(w) != len(got[0].Params) {
		t.Fatalf("seeded warm start %v", w)
	}
}

func TestTheNoiseCapIsNeverBelowItsShareOfTheForecastDemand(t *testing.T) {
	// Two hours at 1,000/s whose seconds scatter by 100/s: three
	// deviations (300/s) are 172/s above the quantile's 1.28, past a cap
	// of 30/s but within a third of the level (333/s).
	rng := rand.New(rand.NewPCG(4, 2))
	h := make([]float64, 2*3600)
	for s := range h {
		h[s] = math.Max(0, 1000+rng.NormFloat64()*100)
	}
	band := func(cfg ForecastConfig) []float64 { return planOf(t, cfg, h) }
	cfg := ForecastConfig{Step: 10, Orders: DefaultOrders(), RefitEvery: time.Hour, Margin: 1.15, NoiseMargin: 3, Settings: "share"}
	full := band(cfg)
	capped := cfg
	capped.NoiseCap, capped.NoiseQuantile = 30, 1.28
	byReplicas := band(capped)
	capped.NoiseCapShare = 1.0 / 3
	byShare := band(capped)
	for s := range full {
		if math.Abs(byShare[s]-full[s]) > 1e-9 {
			t.Fatalf("second %d: with a third of the level the cap should not bind: %.2f, uncapped %.2f", s, byShare[s], full[s])
		}
	}
	if byReplicas[60] > full[60]-100 {
		t.Errorf("the cap of 30/s alone: %.1f against uncapped %.1f, want it to bind by over 100/s", byReplicas[60], full[60])
	}
	// A share of a level whose seconds scatter by more than it does not
	// lift the cap: NASA-like traffic scaled up stays capped.
	for s := range h {
		h[s] = math.Max(0, 200+rng.NormFloat64()*150)
	}
	full = band(cfg)
	capped.NoiseCapShare = 0
	byReplicas = band(capped)
	capped.NoiseCapShare = 1.0 / 3
	byShare = band(capped)
	if byShare[60] > full[60]-100 || math.Abs(byShare[60]-byReplicas[60]) > 1e-9 {
		t.Errorf("scattered seconds: capped with a share %.1f, by replicas alone %.1f, uncapped %.1f: want the same binding cap", byShare[60], byReplicas[60], full[60])
	}
}

func TestAModelWithoutSeasonsIsFittedOnTheLatestHourAndASeasonalOneOnItsWholeWindow(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	day := make([]float64, 86400)
	for i := range day {
		day[i] = 50 + 20*math.Sin(2*math.Pi*float64(i)/86400) + 5*math.Sin(float64(i)/40) + float64(i%7)
	}
	for _, c := range []struct {
		name    string
		seasons []time.Duration
		exog    bool
		want    int
	}{
		{"no seasons, no regressors: the latest hour", nil, false, 360},
		{"a declared season: the whole day", []time.Duration{time.Hour}, false, 8640},
		{"known regressors: the whole day", nil, true, 8640},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := ForecastConfig{Step: 10, Orders: []Order{{P: 1, D: 1, Q: 0}}, RefitEvery: time.Hour, Seasons: c.seasons}
			f := NewForecaster(cfg, func() time.Time { return now })
			var fits []Record
			f.OnFit = func(r Record) { fits = append(fits, r) }
			h := optimize.History{Requests: day}
			if c.exog {
				h.Exog = make([][]float64, len(day)+60)
				for i := range h.Exog {
					h.Exog[i] = []float64{math.Cos(2 * math.Pi * float64(i) / 86400)}
				}
			}
			if _, err := f.Forecast(context.Background(), h, 60); err != nil {
				t.Fatal(err)
			}
			if len(fits) != 1 {
				t.Fatalf("%d fits, want 1", len(fits))
			}
			// A seasonal fit starts a cycle in: its lag's steps are
			// regressors, not observations.
			want := c.want
			if len(c.seasons) > 0 {
				want -= SeasonSteps(c.seasons[0], 10)
			}
			if fits[0].NObs != want {
				t.Errorf("fitted on %d steps, want %d", fits[0].NObs, want)
			}
		})
	}
}

func TestAYoungModelIsRefittedEachTimeItsHistoryDoubles(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	cfg := ForecastConfig{Step: 10, Orders: []Order{{P: 1, D: 0, Q: 0}}, RefitEvery: time.Hour}
	f := NewForecaster(cfg, clock)
	var fitted []int
	f.OnFit = func(r Record) { fitted = append(fitted, r.NObs) }
	all := make([]float64, 2400)
	for i := range all {
		all[i] = 50 + 10*math.Sin(float64(i)/30) + float64(i%7)
	}
	// A new policy plans every 10 s of the same hour: the fit from its
	// first 30 steps is redone at 60 and 120 steps and, with the
	// refit interval not yet past, at no other time.
	for n := MinSteps * 10; n <= len(all); n += 10 {
		now = now.Add(10 * time.Second)
		if _, err := f.Forecast(context.Background(), optimize.History{Requests: all[:n]}, 30); err != nil {
			t.Fatal(err)
		}
	}
	want := []int{MinSteps, 2 * MinSteps, 4 * MinSteps, 8 * MinSteps}
	if fmt.Sprint(fitted) != fmt.Sprint(want) {
		t.Errorf("fits on %v steps, want %v", fitted, want)
	}
}

func TestAResumedFitForecastsAtOnceAsItsFitterWould(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	cfg := ForecastConfig{Step: 10, Orders: []Order{{P: 1, D: 1, Q: 1}, {P: 1, D: 0, Q: 1}}, RefitEvery: time.Hour, Margin: 1.15, NoiseMargin: 3, Settings: "step=10s query=a"}
	h := optimize.History{Requests: make([]float64, 3600)}
	for i := range h.Requests {
		h.Requests[i] = 80 + 20*math.Sin(float64(i)/400) + float64((i*7919)%11)
	}
	fitter := NewForecaster(cfg, clock)
	var rec Record
	fitter.OnFit = func(r Record) { rec = r }
	if _, err := fitter.Forecast(context.Background(), h, 60); err != nil {
		t.Fatal(err)
	}
	if rec.Settings != cfg.Settings {
		t.Fatalf("stored fit's settings %q, want %q", rec.Settings, cfg.Settings)
	}
	// Twenty minutes later (a restart), with twenty minutes more history.
	now = now.Add(20 * time.Minute)
	h.Requests = append(h.Requests, h.Requests[:1200]...)
	want, err := fitter.ForecastBand(context.Background(), h, 60)
	if err != nil {
		t.Fatal(err)
	}
	resumed := NewForecaster(cfg, clock)
	fits := 0
	resumed.OnFit = func(Record) { fits++ }
	if !resumed.Resume(rec) {
		t.Fatal("a fit of the same settings 20 minutes old was not resumed")
	}
	got, err := resumed.ForecastBand(context.Background(), h, 60)
	if err != nil {
		t.Fatal(err)
	}
	if fits != 0 {
		t.Fatalf("the resumed forecaster fitted %d times before its first forecast, want none", fits)
	}
	for s := range want.Plan {
		if math.Abs(got.Plan[s]-want.Plan[s]) > 1e-9 || math.Abs(got.Upper[s]-want.Upper[s]) > 1e-9 {
			t.Fatalf("second %d: resumed %.6f (upper %.6f), the fitter %.6f (upper %.6f)", s, got.Plan[s], got.Upper[s], want.Plan[s], want.Upper[s])
		}
	}
	// Its refit is due RefitEvery after the fit was trained, not after the restart.
	now = rec.TrainedAt.Add(time.Hour)
	if _, err := resumed.Forecast(context.Background(), h, 60); err != nil {
		t.Fatal(err)
	}
	if fits != 1 {
		t.Fatalf("%d fits an hour after the stored fit was trained, want 1", fits)
	}
}

func TestAStoredFitIsNotResumedUnlessItIsOfTheSameModelAndFresh(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	cfg := ForecastConfig{Step: 10, Orders: []Order{{P: 1, D: 1, Q: 1}}, RefitEvery: time.Hour, Settings: "step=10s query=a"}
	good := Record{Order: Order{P: 1, D: 1, Q: 1}, Params: []float64{0.5, -0.3, 1}, TrainedAt: now.Add(-time.Minute), Settings: cfg.Settings}
	cases := []struct {
		name string
		cfg  func(*ForecastConfig)
		rec  func(*Record)
		want bool
	}{
		{"a fresh fit of the same settings", nil, nil, true},
		{"a fit of other settings", nil, func(r *Record) { r.Settings = "step=60s query=a" }, false},
		{"a fit stored before fits had settings", nil, func(r *Record) { r.Settings = "" }, false},
		{"a forecaster without settings", func(c *ForecastConfig) { c.Settings = "" }, func(r *Record) { r.Settings = "" }, false},
		{"a fit older than the refit interval", nil, func(r *Record) { r.TrainedAt = now.Add(-61 * time.Minute) }, false},
		{"a fit trained after now (the clock went back)", nil, func(r *Record) { r.TrainedAt = now.Add(time.Minute) }, false},
		{"a fit of an order no longer a candidate", nil, func(r *Record) { r.Order = Order{P: 2, D: 1, Q: 1} }, false},
		{"a record without parameters", nil, func(r *Record) { r.Params = nil }, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cf, r := cfg, good
			r.Params = append([]float64(nil), good.Params...)
			if c.cfg != nil {
				c.cfg(&cf)
			}
			if c.rec != nil {
				c.rec(&r)
			}
			f := NewForecaster(cf, func() time.Time { return now })
			if got := f.Resume(r); got != c.want {
				t.Fatalf("Resume = %v, want %v", got, c.want)
			}
			if (f.fitted != nil) != c.want {
				t.Fatalf("fitted = %v after Resume, want a fit only when resumed", f.fitted)
			}
			if len(r.Params) > 0 && len(f.warm[r.Order.String()]) != len(r.Params) {
				t.Fatalf("the record did not warm-start the next fit: %v", f.warm)
			}
		})
	}
}

// planOf is the plan of the 120 seconds after h, made by a new
// forecaster of cfg.
func planOf(t *testing.T, cfg ForecastConfig, h []float64) []float64 {
	t.Helper()
	b, err := NewForecaster(cfg, time.Now).ForecastBand(context.Background(), optimize.History{Requests: h}, 120)
	if err != nil {
		t.Fatal(err)
	}
	return b.Plan
}

func TestNoiseCapBoundsWhatTheNoiseMarginAddsOnlyWhereTheSecondsScatterWidely(t *testing.T) {
	// Two hours at a level of 200/s: once with seconds scattering by 5/s
	// (three deviations are 15/s, under the cap), once by 150/s (450/s).
	for _, c := range []struct {
		name    string
		scatter float64
		capped  bool
	}{
		{"steady level", 5, false},
		{"seconds scattering by many replicas", 150, true},
	} {
		rng := rand.New(rand.NewPCG(3, 9))
		h := make([]float64, 2*3600)
		for s := range h {
			h[s] = math.Max(0, 200+rng.NormFloat64()*c.scatter)
		}
		cfg := ForecastConfig{Step: 10, Orders: DefaultOrders(), RefitEvery: time.Hour, Margin: 1.15, NoiseMargin: 3, Settings: "cap"}
		band := func(cfg ForecastConfig) []float64 { return planOf(t, cfg, h) }
		full := band(cfg)
		quantile := cfg
		quantile.NoiseMargin = 1.28
		low := band(quantile)
		capped := cfg
		capped.NoiseCap, capped.NoiseQuantile = 30, 1.28
		got := band(capped)
		for s := range got {
			if want := math.Min(full[s], low[s]+30); math.Abs(got[s]-want) > 1e-9 {
				t.Fatalf("%s: second %d: capped plan %.2f, want min(%.2f, %.2f + 30)", c.name, s, got[s], full[s], low[s])
			}
		}
		if moved := got[60] < full[60]-1; moved != c.capped {
			t.Errorf("%s: capped %.1f against uncapped %.1f: cap binding = %v, want %v", c.name, got[60], full[60], moved, c.capped)
		}
	}
}

// repeatingBurst is hours of a 10-minute cycle: a level of 40 requests/s
// with noise, and a 30-second burst to 90 at the same phase every cycle.
func repeatingBurst(seconds int, burstAt int) []float64 {
	rng := rand.New(rand.NewPCG(11, 3))
	h := make([]float64, seconds)
	for s := range h {
		h[s] = 40 + rng.NormFloat64()
		if p := s % 600; p >= burstAt && p < burstAt+30 {
			h[s] += 50
		}
	}
	return h
}

func TestASeasonsLastCycleForecastsABurstThatRepeatsAtTheSamePhase(t *testing.T) {
	// The history ends 60 s before the phase of the burst; the forecast
	// covers it. Fourier terms of a 10-minute cycle at 10-second steps
	// would need dozens of pairs to draw a 30-second burst; the value one
	// cycle earlier draws it at once.
	const burstAt = 300
	h := repeatingBurst(3600+burstAt-60, burstAt)
	cfg := DefaultForecastConfig()
	cfg.Step, cfg.Margin, cfg.NoiseMargin, cfg.Sqrt = 10, 0, 0, false
	without, err := NewForecaster(cfg, time.Now).Forecast(context.Background(), optimize.History{Requests: h}, 120)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Seasons = []time.Duration{10 * time.Minute}
	with, err := NewForecaster(cfg, time.Now).Forecast(context.Background(), optimize.History{Requests: h}, 120)
	if err != nil {
		t.Fatal(err)
	}
	// Seconds 70-80 of the forecast are inside the burst.
	if got := with[75]; got < 80 {
		t.Errorf("with the season: forecast inside the burst %.1f, want above 80", got)
	}
	if got := without[75]; got > 60 {
		t.Errorf("without the season: forecast inside the burst %.1f, want the level (the test's burst must not be forecast by other means)", got)
	}
	if got := with[20]; math.Abs(got-40) > 5 {
		t.Errorf("with the season: forecast before the burst %.1f, want about 40", got)
	}
}

func TestTheSeasonalLagIsTheLongestSeasonTheHistoryCoversWithAFitToSpare(t *testing.T) {
	day, tenMin := 24*time.Hour, 10*time.Minute
	for _, tc := range []struct {
		name    string
		seasons []time.Duration
		nb, B   int
		ahead   int
		want    int
	}{
		{"no season, no lag", nil, 1000, 10, 10, 0},
		{"a cycle and a fit's steps", []time.Duration{tenMin}, 60 + MinSteps, 10, 10, 60},
		{"a step short of a fit after the cycle", []time.Duration{tenMin}, 60 + MinSteps - 1, 10, 10, 0},
		{"a day not yet covered: the shorter season", []time.Duration{tenMin, day}, 360, 10, 10, 60},
		{"both covered: the longer", []time.Duration{tenMin, day}, 8640 + MinSteps, 10, 10, 8640},
		{"a cycle shorter than the forecast gives no lag", []time.Duration{time.Minute}, 1000, 10, 10, 0},
		{"the cycle in steps is rounded", []time.Duration{tenMin}, 1000, 60, 2, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := NewForecaster(ForecastConfig{Step: tc.B, Seasons: tc.seasons}, time.Now)
			if got := f.seasonalLag(tc.nb, tc.B, tc.ahead); got != tc.want {
				t.Errorf("lag %d, want %d", got, tc.want)
			}
		})
	}
}

func TestTheSeasonalRegressorIsTheValueOneCycleEarlierInHistoryAndForecast(t *testing.T) {
	y := []float64{0, 1, 2, 3, 4, 5}
	exog := [][]float64{{10}, {11}, {12}, {13}, {14}, {15}}
	future := [][]float64{{16}}
	fy, ex, fut := withSeasonalLag(y, exog, future, 3, 2)
	if fmt.Sprint(fy) != "[3 4 5]" {
		t.Errorf("series %v, want the steps from the lag on", fy)
	}
	if fmt.Sprint(ex) != "[[13 0] [14 1] [15 2]]" {
		t.Errorf("regressors %v, want each step's own and the value 3 steps earlier", ex)
	}
	// The second future step has no known row given: it holds the last.
	if fmt.Sprint(fut) != "[[16 3] [16 4]]" {
		t.Errorf("future regressors %v", fut)
	}
	if fmt.Sprint(exog[3]) != "[13]" {
		t.Errorf("the caller's rows were changed: %v", exog[3])
	}
	_, ex, fut = withSeasonalLag(y, nil, nil, 3, 2)
	if fmt.Sprint(ex, fut) != "[[0] [1] [2]] [[3] [4]]" {
		t.Errorf("without other regressors: %v %v", ex, fut)
	}
}

func TestWithinVarianceIsTheSecondsScatterAndABurstDoesNotLiftItForTheWholeWindow(t *testing.T) {
	// An hour of 10-second steps around a level of 100/s.
	draw := func(sd func(s int) float64, burst bool) []float64 {
		rng := rand.New(rand.NewPCG(7, 11))
		x := make([]float64, 3600)
		for s := range x {
			x[s] = 100 + sd(s)*rng.NormFloat64()
			// A 12-second burst of +50/s once every 10 minutes, at a
			// phase that splits it over two steps.
			if burst && s%600 >= 425 && s%600 < 437 {
				x[s] += 50
			}
		}
		return x
	}
	steady := func(int) float64 { return 2 }
	sparse := make([]float64, 3600)
	for s := 0; s < len(sparse); s += 30 {
		sparse[s] = 1
	}
	for _, c := range []struct {
		name     string
		x        []float64
		want, hi float64
	}{
		{"steady noise", draw(steady, false), 4, 1.25},
		// Each step a burst splits counts as ten median steps: the
		// twelve of them lift the estimate by about a third, where their
		// whole scatter would lift it about sixfold.
		{"steady noise with a burst every 10 minutes", draw(steady, true), 4, 1.5},
		// The scatter doubles halfway: both halves are noise, and the
		// estimate is their pooled variance, not the quieter half's.
		{"noise that doubles halfway", draw(func(s int) float64 { return 2 + 2*float64(s/1800) }, false), 10, 1.25},
		// One request every 30 s: two steps in three are silent, and the
		// third's scatter is the traffic's (0.9/9 in every third step).
		{"a request every 30 s", sparse, 0.1 / 3, 1.25},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := withinVariance(c.x, 10, false)
			if got < 0.8*c.want || got > c.hi*c.want {
				t.Errorf("within-step variance %.2f, want %.2f to %.2f", got, 0.8*c.want, c.hi*c.want)
			}
		})
	}
}

func TestWithinVarianceOfStepsLongerThanTenSecondsDoesNotCountTheirDriftAsNoise(t *testing.T) {
	// Two hours of minute-long steps. A level that swings by 40/s over 10
	// minutes drifts within each minute; seconds that scatter independently
	// do not drift.
	const n, b = 7200, 60
	rng := rand.New(rand.NewPCG(3, 5))
	swing := func(s int) float64 { return 100 + 20*math.Sin(2*math.Pi*float64(s)/600) }
	smooth := make([]float64, n)
	noisy := make([]float64, n)
	flatNoise := make([]float64, n)
	for s := range smooth {
		smooth[s] = swing(s)
		noisy[s] = swing(s) + 2*rng.NormFloat64()
		flatNoise[s] = 100 + 2*rng.NormFloat64()
	}
	// What the flat step means see: the drift's variance around each
	// minute's mean, which a line through the minutes mostly follows.
	flat := func(x []float64) float64 { return flatScatter(x, b) }
	for _, c := range []struct {
		name   string
		x      []float64
		lo, hi float64
	}{
		// Over a minute the swing drifts by up to 12/s (variance about 7
		// around the minute's mean): a line through the minutes follows all
		// but its curvature.
		{"a smooth swing counts at most a tenth of its drift", smooth, 0, flat(smooth) / 10},
		{"noise on a smooth swing counts as the noise", noisy, 0.8 * 4, 1.25 * 4},
		{"noise around a level counts in full", flatNoise, 0.8 * 4, 1.25 * 4},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := withinVariance(c.x, b, false)
			if got < c.lo || got > c.hi {
				t.Errorf("within-step variance %.3f, want %.3f to %.3f (flat step means: %.3f)", got, c.lo, c.hi, flat(c.x))
			}
			if f := flat(c.x); got > f*(1+1e-9) {
				t.Errorf("within-step variance %.3f above the flat steps' %.3f", got, f)
			}
		})
	}
	// Ten-second steps and shorter keep the flat steps' scatter.
	if got, want := withinVariance(smooth, 10, false), flatScatter(smooth[len(smooth)-withinSteps*10:], 10); math.Abs(got-want) > 1e-9*want {
		t.Errorf("10-second steps: %.6f, want the flat steps' %.6f", got, want)
	}
}

// flatScatter is the variance of x's seconds around the means of their
// b-second steps (x holds whole steps), with b-1 degrees of freedom a step.
func flatScatter(x []float64, b int) float64 {
	ss := 0.0
	for i := 0; i < len(x)/b; i++ {
		m := 0.0
		for _, v := range x[i*b : (i+1)*b] {
			m += v
		}
		m /= float64(b)
		for _, v := range x[i*b : (i+1)*b] {
			ss += (v - m) * (v - m)
		}
	}
	return ss / float64(len(x)/b*(b-1))
}

func TestARegressorConstantOverTheHistoryIsLeftOutOfTheFitUntilItVaries(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	cfg := ForecastConfig{Step: 10, Orders: DefaultOrders(), RefitEvery: time.Hour}
	f := NewForecaster(cfg, func() time.Time { return now })
	var fits []Record
	f.OnFit = func(r Record) { fits = append(fits, r) }
	f.OnFallback = func(err error) { t.Errorf("no model fitted: %v", err) }
	const n, ahead = 3600, 60
	req := make([]float64, n)
	event := make([][]float64, n+ahead) // an event that has not happened yet
	for i := range req {
		req[i] = 50 + 10*math.Sin(float64(i)/300) + float64(i%7)
	}
	for i := range event {
		event[i] = []float64{0}
	}
	if _, err := f.Forecast(context.Background(), optimize.History{Requests: req, Exog: event}, ahead); err != nil {
		t.Fatal(err)
	}
	if len(fits) != 1 || len(fits[0].ExogNames) != 0 {
		t.Fatalf("fits %d (regressors %v), want one fit without the constant regressor", len(fits), fitsExog(fits))
	}
	// The event happens (an hour of history now holds it): the next plan
	// refits with it, before the refit interval is up.
	now = now.Add(10 * time.Second)
	for i := n - 600; i < n-300; i++ {
		event[i] = []float64{1}
		req[i] += 30
	}
	if _, err := f.Forecast(context.Background(), optimize.History{Requests: req, Exog: event}, ahead); err != nil {
		t.Fatal(err)
	}
	if len(fits) != 2 || len(fits[1].ExogNames) != 1 {
		t.Fatalf("fits %d (regressors %v), want a second fit with the regressor once it varies", len(fits), fitsExog(fits))
	}
}

func fitsExog(fits []Record) [][]string {
	out := make([][]string, len(fits))
	for i, r := range fits {
		out[i] = r.ExogNames
	}
	return out
}

func TestAForecasterWhoseSelectionFitsNothingSelectsAgainOnlyAfterFailRetry(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	// An order 40 steps deep cannot be fitted on 40 steps of history.
	cfg := ForecastConfig{Step: 10, Orders: []Order{{P: 40}}, RefitEvery: time.Hour}
	f := NewForecaster(cfg, func() time.Time { return now })
	failures := 0
	f.OnFallback = func(error) { failures++ }
	req := make([]float64, 400)
	for i := range req {
		req[i] = 50 + 10*math.Sin(float64(i)/30) + float64(i%7)
	}
	// Plans every 10 s for 10 minutes on the same history.
	for s := 0; s <= 600; s += 10 {
		mean, err := f.Forecast(context.Background(), optimize.History{Requests: req}, 30)
		if err != nil || len(mean) != 30 || math.IsNaN(mean[0]) {
			t.Fatalf("at +%d s: %v, %v; want the level forecast", s, mean, err)
		}
		now = now.Add(10 * time.Second)
	}
	if want := 1 + int(10*time.Minute/failRetry); failures != want {
		t.Errorf("%d selections failed in 10 minutes of plans, want %d (one each %s)", failures, want, failRetry)
	}
	f.Refit()
	if _, err := f.Forecast(context.Background(), optimize.History{Requests: req}, 30); err != nil {
		t.Fatal(err)
	}
	if want := 2 + int(10*time.Minute/failRetry); failures != want {
		t.Errorf("a refit asked for did not select again: %d failures, want %d", failures, want)
	}
}
