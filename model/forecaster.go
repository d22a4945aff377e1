package model

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/nomadscalerd/nomadscalerd/forecast"
)

// ForecastConfig is how Forecaster turns a per-second history into a
// per-second forecast.
type ForecastConfig struct {
	// Step is the seconds a model step averages: the history is fitted as
	// Step-second means, which a SARIMAX over days of data can afford.
	Step int
	// Orders are the candidate SARIMAX orders; the lowest AIC is kept.
	Orders []Order
	// RefitEvery is how often, by the clock, the parameters are
	// re-estimated; in between the last parameters forecast from the
	// up-to-date history (a Kalman filter pass, no optimisation).
	RefitEvery time.Duration
	// Margin is the number of forecast standard deviations added to the
	// mean: 0 plans for the mean, 1.96 for the upper 95% band.
	Margin float64
	// NoiseMargin is the number of standard deviations of single seconds
	// around their step's mean added on top (combined with the forecast's
	// in quadrature): demand is served per second, and a step mean hides
	// the seconds above it. 0 means Margin.
	NoiseMargin float64
	// NoiseCap, when positive, bounds what NoiseMargin adds: the plan is
	// never more than NoiseCap (in requests/s) above the plan made with
	// NoiseQuantile standard deviations of single seconds instead. A few
	// standard deviations of a steady level's scatter are a replica or
	// two; of traffic whose seconds scatter by tens of replicas they are
	// tens of replicas, each serving requests rarer than it costs.
	NoiseCap      float64
	NoiseQuantile float64
	// NoiseCapShare keeps the capped plan at least this share of the
	// forecast mean above it: a reactive rule's fixed headroom (a third
	// of the level at target-value's 0.75) is insurance enough where the
	// seconds scatter by little of their level, and a cap below it would
	// leave more requests unmet than the reactive rule. The cap then
	// binds only on traffic whose seconds scatter by much of its level as
	// well as by many replicas.
	NoiseCapShare float64
	// Sqrt fits and forecasts the square root of the rate and squares the
	// result back. Counts of requests vary about as the square root of
	// their level, so the margin then shrinks at night and grows at peaks
	// instead of being one width fitted over both.
	Sqrt bool
	// Seasons are the cycle lengths the traffic repeats on (the policy's
	// seasonality). Once the history holds the longest of them plus
	// MinSteps steps, the step mean one cycle earlier enters the fit as a
	// regressor (see seasonalLag): Fourier terms draw a cycle's smooth
	// shape, and what repeats sharply (a step, a daily burst) only a value
	// from the last cycle predicts.
	Seasons []time.Duration
	// BurstQuantile, when positive, replaces the forecast's Gaussian
	// headroom by one measured on the history (see burstScratch.headroom): the
	// plan is the larger of the forecast mean plus the BurstQuantile
	// quantile of how far recent bursts rose above their preceding
	// minute, and the mean plus the single seconds' headroom alone
	// (NoiseMargin, capped as above). Margin standard deviations of the
	// forecast grow with every step's uncertainty whether or not the
	// traffic bursts; the quantile holds what the last hour's bursts
	// actually needed.
	BurstQuantile float64
	// Settings names what a fit's parameters mean beyond this config (the
	// series, the known regressors): it is stored with every fit, and
	// Resume takes only a fit of the same non-empty Settings.
	Settings string
}

// DefaultForecastConfig fits the square root of one-minute means with
// ARIMA(1,1,1) or ARIMA(2,1,1), refits every hour and plans for the mean
// plus 1.5 standard deviations (above the newsvendor quantile of the
// default costs, z = 1.28: a replica costs 1 a second and covers 10
// requests that cost 1 each when unmet, so capacity should fall short about
// one second in ten; the forecast's deviation of minute means understates
// the noise of seconds).
func DefaultForecastConfig() ForecastConfig {
	return ForecastConfig{
		Step:       60,
		Orders:     []Order{{P: 1, D: 1, Q: 1}, {P: 2, D: 1, Q: 1}},
		RefitEvery: time.Hour,
		Margin:     1.5,
		Sqrt:       true,
	}
}

// Forecaster adapts the model package to forecast.Forecaster and
// forecast.BandForecaster. Exogenous rows, when the history has them, are
// read at each step's middle second, so known covariates such as Fourier
// terms of the time of day (see FourierRows) enter the regression; rows past
// the history are the future ones.
type Forecaster struct {
	cfg ForecastConfig
	now func() time.Time

	fitted   *Result
	fittedAt time.Time
	// fittedSteps is how many steps the fit was estimated from.
	fittedSteps int
	// kept are the regressor columns the fit was estimated with (the
	// others were constant over its history); nil for a resumed fit.
	kept  []int
	refit bool
	warm  map[string][]float64
	// bursts measures the burst headroom (BurstQuantile).
	bursts burstScratch
	// failedAt and failedSteps are when the last selection found no order
	// to fit, and on how many steps; zero after a fit.
	failedAt    time.Time
	failedSteps int

	// OnFit, when set, receives every new fit (the daemon stores it in
	// bbolt per policy, for `model ls/show` and the next start's warm start).
	OnFit func(Record)
	// OnFallback, when set, is told when no model could be fitted and the
	// forecast is the series' recent level instead.
	OnFallback func(error)
}

// Seed warm-starts the next fit from a stored record.
func (f *Forecaster) Seed(r Record) {
	if len(r.Params) > 0 {
		f.warm[r.Order.String()] = append([]float64(nil), r.Params...)
	}
}

// Resume forecasts from a stored fit without fitting, until RefitEvery after
// it was trained, so a restarted daemon plans from its models at once
// instead of re-fitting every policy in its first minute. A fit of other
// settings, of an order that is no longer a candidate, trained more than
// RefitEvery ago or after now (the clock went back) only warm-starts the
// next fit, as Seed does. It reports whether the fit was taken.
func (f *Forecaster) Resume(r Record) bool {
	f.Seed(r)
	now := f.now()
	if f.cfg.Settings == "" || r.Settings != f.cfg.Settings || len(r.Params) == 0 ||
		!slices.Contains(f.cfg.Orders, r.Order) || r.TrainedAt.After(now) || r.Stale(now, f.cfg.RefitEvery) {
		return false
	}
	// A resumed fit forecasts as fitted parameters do between refits: a
	// Kalman filter pass over the latest steps (and a fit after all when
	// they no longer fit the regressors).
	res, err := r.Result()
	if err != nil {
		return false
	}
	f.fitted, f.fittedAt, f.kept = res, r.TrainedAt, nil
	f.fittedSteps = MaxFitSteps
	if step := time.Duration(max(f.cfg.Step, 1)) * time.Second; r.Window.To.After(r.Window.From) {
		f.fittedSteps = int(r.Window.To.Sub(r.Window.From) / step)
	}
	return true
}

// Refit makes the next forecast re-estimate the parameters: the caller saw
// the forecast's errors say the model is wrong.
func (f *Forecaster) Refit() { f.refit = true }

// NewForecaster returns a forecaster that refits by the clock now.
func NewForecaster(cfg ForecastConfig, now func() time.Time) *Forecaster {
	return &Forecaster{cfg: cfg, now: now, warm: map[string][]float64{}}
}

// ErrShortHistory is returned while the history is too short to fit.
var ErrShortHistory = forecast.ErrShortHistory

// MinSteps is the fewest model steps of history a forecast needs.
const MinSteps = 30

// MaxFitSteps bounds the model steps a fit reads (the most recent ones):
// a fit's cost grows with them, and a month of 10-second steps says little
// more about the next minutes than a day does.
const MaxFitSteps = 10000

// LocalFitWindow is the most recent history a model without seasons or
// regressors is fitted on, whatever the policy's history_window. Such a
// model's few parameters describe the traffic's recent dynamics; fitted
// over a day they average the night's with the day's and forecast both
// worse. With a 1d (8h) history_window instead of 1h, the held-out
// ClarkNet week cost 2.6% more and EPA-HTTP left 2.2x the unmet requests;
// on the NASA week the 1d and 2d windows cost more than the 1h one at
// every startup delay and model step. Seasonal terms and regressors need
// the longer history, and keep it.
const LocalFitWindow = time.Hour

// LocalFitSteps is how many of the latest steps of step seconds a model
// without seasons or regressors is fitted on: LocalFitWindow of them, and
// never fewer than MinSteps.
func LocalFitSteps(step int) int {
	return max(MinSteps, int(LocalFitWindow.Seconds())/max(step, 1))
}

// filterSteps is how many of the latest steps a forecast from already
// fitted parameters filters: the state settles long before.
const filterSteps = 720

// bandZ is the width, in forecast standard deviations, of the band
// outside which observed demand means the forecast is wrong.
const bandZ = 2.5

// Forecast implements forecast.Forecaster: the mean plus Margin standard
// deviations, per second.
func (f *Forecaster) Forecast(ctx context.Context, h forecast.History, steps int) ([]float64, error) {
	b, err := f.ForecastBand(ctx, h, steps)
	return b.Plan, err
}

// ForecastBand implements forecast.BandForecaster: what to plan for (the
// mean plus Margin standard deviations) and a band of bandZ deviations
// around the mean, per second.
func (f *Forecaster) ForecastBand(ctx context.Context, h forecast.History, steps int) (forecast.Band, error) {
	B := max(f.cfg.Step, 1)
	n := len(h.Requests)
	nb := n / B
	if nb < MinSteps {
		return forecast.Band{}, fmt.Errorf("%d seconds of history: %w", n, ErrShortHistory)
	}
	nb = min(nb, MaxFitSteps)
	if len(f.cfg.Seasons) == 0 && len(h.Exog) < n {
		nb = min(nb, LocalFitSteps(B))
	}
	off := n - nb*B // drop the oldest seconds: a partial step, or beyond MaxFitSteps
	y := make([]float64, nb)
	for i := range y {
		sum := 0.0
		for _, v := range h.Requests[off+i*B : off+(i+1)*B] {
			sum += v
		}
		y[i] = sum / float64(B)
		if f.cfg.Sqrt {
			y[i] = math.Sqrt(math.Max(y[i], 0))
		}
	}
	ahead := (steps+B-1)/B + 1
	var exog, future [][]float64
	if len(h.Exog) >= n {
		exog = make([][]float64, nb)
		for i := range exog {
			exog[i] = h.Exog[off+i*B+B/2]
		}
		for j := 0; j < ahead && n+j*B+B/2 < len(h.Exog); j++ {
			future = append(future, h.Exog[n+j*B+B/2])
		}
	}

	fy, fexog, ffuture := y, exog, future
	if L := f.seasonalLag(nb, B, ahead); L > 0 {
		fy, fexog, ffuture = withSeasonalLag(y, exog, future, L, ahead)
	}
	mean, sd, err := f.steps(ctx, fy, fexog, ffuture, ahead, B)
	if err != nil {
		return forecast.Band{}, err
	}
	back := func(v float64) float64 {
		if f.cfg.Sqrt {
			v = math.Max(v, 0)
			return v * v
		}
		return v
	}
	// A plan is for seconds, not step means: the seconds of a step scatter
	// around its mean, and that scatter adds to the forecast's own
	// uncertainty (the band compares 5-second means, so a fifth of it).
	within := withinVariance(h.Requests[off:], B, f.cfg.Sqrt)
	// Step j's value holds at its middle second; seconds in between are
	// interpolated, starting from the last observed step.
	at := func(z, zw, wv float64) []float64 {
		value := func(j int) float64 {
			if j < 0 {
				return back(y[nb-1] + zw*math.Sqrt(wv))
			}
			return back(mean[j] + math.Copysign(math.Sqrt(z*z*sd[j]*sd[j]+zw*zw*wv), z))
		}
		out := make([]float64, steps)
		mid := float64(B-1) / 2
		for s := range out {
			pos := (float64(s) - mid) / float64(B)
			j := int(math.Floor(pos))
			w := pos - float64(j)
			a, b := value(j), value(min(j+1, ahead-1))
			out[s] = math.Max(0, a+(b-a)*w)
		}
		return out
	}
	zw := f.cfg.NoiseMargin
	if zw == 0 {
		zw = f.cfg.Margin
	}
	z := f.cfg.Margin
	if f.cfg.BurstQuantile > 0 {
		z = 0
	}
	plan := at(z, zw, within)
	// The forecast mean per second, made once for the cap's share and the
	// burst headroom, whichever needs it.
	var level []float64
	if f.cfg.NoiseCapShare > 0 || f.cfg.BurstQuantile > 0 {
		level = at(0, 0, 0)
	}
	if c := f.cfg.NoiseCap; c > 0 && f.cfg.NoiseQuantile < zw {
		for s, v := range at(z, f.cfg.NoiseQuantile, within) {
			limit := v + c
			if f.cfg.NoiseCapShare > 0 {
				limit = math.Max(limit, (1+f.cfg.NoiseCapShare)*level[s])
			}
			plan[s] = math.Min(plan[s], limit)
		}
	}
	var burst float64
	if q := f.cfg.BurstQuantile; q > 0 {
		burst = f.bursts.headroom(h.Requests, q, h.Lead)
		for s, m := range level {
			plan[s] = math.Max(plan[s], m+burst)
		}
	}
	return forecast.Band{Plan: plan, Lower: at(-bandZ, -bandZ, within/5), Upper: at(bandZ, bandZ, within/5), Burst: burst}, nil
}

// seasonalLag is the lag, in steps, of the seasonal regressor for a
// history of nb steps, or 0 while it has none: the longest season the
// history covers with MinSteps steps to spare (so the fit, which starts a
// cycle in, still has a fit's worth of steps), and no shorter than the
// forecast (its future values are observed ones, not forecasts).
func (f *Forecaster) seasonalLag(nb, B, ahead int) int {
	best := 0
	for _, d := range f.cfg.Seasons {
		L := SeasonSteps(d, B)
		if L >= ahead && L > best && nb-L >= MinSteps {
			best = L
		}
	}
	return best
}

// SeasonSteps is a season's length in model steps of step seconds, the
// lag of its last-cycle regressor: it enters a fit once the history holds
// SeasonSteps+MinSteps steps, so never for a season with more than
// MaxFitSteps-MinSteps (a fit reads at most MaxFitSteps).
func SeasonSteps(season time.Duration, step int) int {
	return int(math.Round(season.Seconds() / float64(max(step, 1))))
}

// withSeasonalLag is the series from its L-th step on, with each step's
// value L steps earlier appended to its regressors (and to those of the
// ahead future steps, which the history holds for L >= ahead).
func withSeasonalLag(y []float64, exog, future [][]float64, L, ahead int) ([]float64, [][]float64, [][]float64) {
	nb := len(y)
	row := func(base []float64, v float64) []float64 {
		return append(append(make([]float64, 0, len(base)+1), base...), v)
	}
	ex := make([][]float64, nb-L)
	for i := range ex {
		var base []float64
		if exog != nil {
			base = exog[L+i]
		}
		ex[i] = row(base, y[i])
	}
	fut := make([][]float64, ahead)
	for j := range fut {
		// Known rows past those given hold the last one, as the forecast
		// itself does.
		var base []float64
		switch {
		case j < len(future):
			base = future[j]
		case len(future) > 0:
			base = future[len(future)-1]
		case exog != nil:
			base = exog[nb-1]
		}
		fut[j] = row(base, y[nb-L+j])
	}
	return y[L:], ex, fut
}

// withinSteps is how many of the latest steps the within-step variance is
// estimated from.
const withinSteps = 360

// withinOutlier bounds one step's share of the within-step variance: a
// step whose seconds scatter by more than withinOutlier times the median
// step's sum of squares counts as that much. Under steady noise no step
// comes near it (for 10-second steps of normal seconds, a step 10 times
// the median is rarer than one in 10^12); a burst does. A 12-second burst
// that recurs once a cycle lifted the estimate several-fold for every
// second of the hour it was read over, and with it the noise headroom of
// every plan, although its own seconds are forecast (the season's last
// cycle is a regressor) or answered by the floor, not by headroom kept
// everywhere.
const withinOutlier = 10

// withinResolution is the finest step, in seconds, whose scatter the
// plan's noise headroom covers in full: the plan is re-made every 10 s
// (replan_interval) and the floor follows the latest seconds, so a longer
// step's drift is followed in pieces of about this length.
const withinResolution = 10

// withinVariance is the variance of single seconds around the mean of
// their step (in the model's space: of square roots when sqrt), from the
// latest withinSteps steps of x, which holds whole steps of b seconds,
// each step's part bounded by withinOutlier.
//
// A step longer than withinResolution is not drawn flat: the plan is a
// line through the step means, re-made every withinResolution seconds.
// Its seconds' scatter around their step's mean then counts the step's
// own drift as noise (on a smooth minute-long rate, most of it), so for
// such steps the variance is at most the larger of the scatter around
// that line (what the line misses: curvature and noise) and around
// withinResolution-second means (noise a finer step would see).
func withinVariance(x []float64, b int, sqrt bool) float64 {
	if b < 2 {
		return 0
	}
	n := len(x) / b
	from := max(0, n-withinSteps)
	if from >= n {
		return 0
	}
	vals := x[from*b : n*b]
	if sqrt {
		vals = make([]float64, (n-from)*b)
		for i, v := range x[from*b : n*b] {
			vals[i] = math.Sqrt(math.Max(v, 0))
		}
	}
	means := make([]float64, n-from)
	per := make([]float64, n-from)
	for i := range means {
		means[i], per[i] = meanScatter(vals[i*b : (i+1)*b])
	}
	flatVar := bounded(per, b-1)
	if b <= withinResolution {
		return flatVar
	}
	mid := float64(b-1) / 2
	subs := (b + withinResolution - 1) / withinResolution
	linePer := make([]float64, len(means))
	subPer := make([]float64, len(means))
	for i := range means {
		step := vals[i*b : (i+1)*b]
		ls, ss := 0.0, 0.0
		for lo := 0; lo < b; lo += withinResolution {
			sub := step[lo:min(lo+withinResolution, b)]
			_, s := meanScatter(sub)
			ss += s
			for k, v := range sub {
				line := means[i]
				if len(means) > 1 {
					pos := (float64(i*b+lo+k) - mid) / float64(b)
					j := min(max(int(math.Floor(pos)), 0), len(means)-2)
					line = means[j] + (means[j+1]-means[j])*(pos-float64(j))
				}
				ls += (v - line) * (v - line)
			}
		}
		linePer[i], subPer[i] = ls, ss
	}
	return math.Min(flatVar, math.Max(bounded(linePer, b), bounded(subPer, b-subs)))
}

// meanScatter is the mean of v and the sum of squares around it.
func meanScatter(v []float64) (mean, ss float64) {
	for _, x := range v {
		mean += x
	}
	mean /= float64(len(v))
	for _, x := range v {
		ss += (x - mean) * (x - mean)
	}
	return mean, ss
}

// bounded is the variance of the steps' sums of squares per, at dof
// degrees of freedom a step, each bounded by withinOutlier times the
// median step's. It sorts per.
func bounded(per []float64, dof int) float64 {
	// The sum below does not depend on the order: sort in place.
	slices.Sort(per)
	limit := withinOutlier * per[len(per)/2]
	if limit == 0 {
		// Most steps are silent (a request now and then): every step
		// that is not is the traffic, not an outlier.
		limit = math.Inf(1)
	}
	ss := 0.0
	for _, v := range per {
		ss += math.Min(v, limit)
	}
	return ss / float64(len(per)*max(dof, 1))
}

// steps forecasts ahead model steps: the mean and standard deviation of
// each. A series without variation forecasts as its level (no model can be
// fitted to it), and so does one no candidate order fits, with the spread of
// its recent changes as the deviation.
func (f *Forecaster) steps(ctx context.Context, y []float64, exog, future [][]float64, ahead, B int) (mean, sd []float64, err error) {
	if flat(y) {
		return level(y, ahead)
	}
	// A regressor constant over the history (an event that has not
	// happened within it) carries nothing a fit could estimate, and alone
	// it left no order fittable: it is left out of the fit and the
	// forecast until it varies.
	kept := varying(exog)
	if len(kept) < exogWidth(exog) {
		exog, future = columns(exog, kept), columns(future, kept)
	}
	now := f.now()
	var fc *Forecast
	// A young model is refitted whenever its history has doubled since
	// its fit: parameters estimated from a policy's first minutes (the
	// least history a fit takes) are poor, and a refit on a timer alone
	// would serve them, and the wide bands their errors give, for the
	// policy's whole first refit interval.
	due := f.fitted == nil || f.refit || now.Sub(f.fittedAt) >= f.cfg.RefitEvery || len(y) >= 2*f.fittedSteps ||
		(f.kept != nil && !slices.Equal(kept, f.kept))
	// After a selection that fitted nothing, the next waits for
	// failRetry or a doubled history: selecting again at every plan would
	// cost a full search each time for the same failure.
	if due && !f.failedAt.IsZero() && !f.refit && now.Sub(f.failedAt) < failRetry && len(y) < 2*f.failedSteps {
		if f.fitted == nil {
			return level(y, ahead)
		}
		due = false
	}
	if !due {
		from := max(0, len(y)-filterSteps)
		var ex [][]float64
		if exog != nil {
			ex = exog[from:]
		}
		fc, err = ForecastAt(f.fitted.Order, f.fitted.Params, y[from:], ex, future, ahead)
	}
	if due || err != nil {
		f.refit = false
		sel, serr := Select(ctx, y, exog, f.cfg.Orders, f.warm)
		if serr != nil {
			if ctx.Err() != nil {
				return nil, nil, ctx.Err()
			}
			f.failedAt, f.failedSteps = now, len(y)
			if f.OnFallback != nil {
				f.OnFallback(serr)
			}
			return level(y, ahead)
		}
		f.fitted, f.fittedAt, f.fittedSteps, f.kept = sel.Best, now, len(y), kept
		f.failedAt, f.failedSteps = time.Time{}, 0
		if f.OnFit != nil {
			// Named by their column in the policy's regressors, those left
			// out as constant skipped.
			names := make([]string, 0, len(kept))
			for _, j := range kept {
				names = append(names, fmt.Sprintf("x%d", j+1))
			}
			step := time.Duration(B) * time.Second
			rec := NewRecord(sel.Best, names, Window{From: now.Add(-time.Duration(len(y)) * step), To: now}, now)
			rec.Settings = f.cfg.Settings
			for _, c := range sel.Candidates {
				if c.Result != nil {
					rec.SelectDuration += c.Result.FitDuration
				}
			}
			f.OnFit(rec)
		}
		for _, c := range sel.Candidates {
			if c.Result != nil {
				f.warm[c.Order.String()] = c.Result.Params
			}
		}
		fc, err = f.fitted.Forecast(y, exog, future, ahead)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("forecast: %w", err)
	}
	sd = make([]float64, ahead)
	for j := range sd {
		sd[j] = math.Sqrt(math.Max(fc.Variance[j], 0))
		if math.IsNaN(fc.Mean[j]) || math.IsInf(fc.Mean[j], 0) || math.IsNaN(sd[j]) || math.IsInf(sd[j], 0) {
			return level(y, ahead)
		}
	}
	return fc.Mean, sd, nil
}

// failRetry is how long a forecaster whose selection fitted nothing
// forecasts the series' level before selecting again (sooner if its
// history doubles or a refit is asked for).
const failRetry = 5 * time.Minute

// varying is the indices of exog's columns that are not constant.
func varying(exog [][]float64) []int {
	w := exogWidth(exog)
	kept := make([]int, 0, w)
	for j := range w {
		for _, row := range exog[1:] {
			if row[j] != exog[0][j] {
				kept = append(kept, j)
				break
			}
		}
	}
	return kept
}

// columns is rows with only the columns at kept.
func columns(rows [][]float64, kept []int) [][]float64 {
	if rows == nil || len(kept) == 0 {
		return nil
	}
	out := make([][]float64, len(rows))
	for i, row := range rows {
		r := make([]float64, len(kept))
		for k, j := range kept {
			r[k] = row[j]
		}
		out[i] = r
	}
	return out
}

// flat reports a series with no variation worth modelling.
func flat(y []float64) bool {
	lo, hi := y[0], y[0]
	for _, v := range y {
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	return hi-lo <= 1e-9*math.Max(1, math.Abs(hi))
}

// level is the naive forecast: the mean of the latest steps, with the
// spread of the step-to-step changes as its deviation.
func level(y []float64, ahead int) (mean, sd []float64, err error) {
	k := min(len(y), 6)
	m := 0.0
	for _, v := range y[len(y)-k:] {
		m += v
	}
	m /= float64(k)
	ss := 0.0
	for i := 1; i < len(y); i++ {
		d := y[i] - y[i-1]
		ss += d * d
	}
	s := 0.0
	if len(y) > 1 {
		s = math.Sqrt(ss / float64(len(y)-1))
	}
	mean, sd = make([]float64, ahead), make([]float64, ahead)
	for j := range mean {
		mean[j], sd[j] = m, s
	}
	return mean, sd, nil
}
