package model

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/nomadscalerd/nomadscalerd/optimize"
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
	// Sqrt fits and forecasts the square root of the rate and squares the
	// result back. Counts of requests vary about as the square root of
	// their level, so the margin then shrinks at night and grows at peaks
	// instead of being one width fitted over both.
	Sqrt bool
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

// Forecaster adapts the model package to optimize.Forecaster.
// Exogenous rows, when the history has them, are read at each step's
// middle second, so known covariates such as Fourier terms of the time of
// day (see FourierRows) enter the regression; rows past the history are the
// future ones.
type Forecaster struct {
	cfg ForecastConfig
	now func() time.Time

	fitted   *Result
	fittedAt time.Time
	warm     map[string][]float64

	// OnFit, when set, receives every new fit (the daemon stores it in
	// bbolt per policy, for `model ls/show` and the next start's warm start).
	OnFit func(Record)
}

// Seed warm-starts the next fit from a stored record.
func (f *Forecaster) Seed(r Record) {
	if len(r.Params) > 0 {
		f.warm[r.Order.String()] = append([]float64(nil), r.Params...)
	}
}

// NewForecaster returns a forecaster that refits by the clock now.
func NewForecaster(cfg ForecastConfig, now func() time.Time) *Forecaster {
	return &Forecaster{cfg: cfg, now: now, warm: map[string][]float64{}}
}

// ErrShortHistory is returned while the history is too short to fit.
var ErrShortHistory = errors.New("history too short to forecast")

// Forecast implements optimize.Forecaster.
func (f *Forecaster) Forecast(ctx context.Context, h optimize.History, steps int) ([]float64, error) {
	B := max(f.cfg.Step, 1)
	n := len(h.Requests)
	nb := n / B
	if nb < 30 {
		return nil, fmt.Errorf("%d seconds of history: %w", n, ErrShortHistory)
	}
	off := n - nb*B // drop the oldest partial step
	y := make([]float64, nb)
	for i := range y {
		sum := 0.0
		for _, v := range h.Requests[off+i*B : off+(i+1)*B] {
			sum += v
		}
		y[i] = sum / float64(B)
		if f.cfg.Sqrt {
			y[i] = math.Sqrt(y[i])
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

	now := f.now()
	var fc *Forecast
	var err error
	if f.fitted != nil && now.Sub(f.fittedAt) < f.cfg.RefitEvery {
		fc, err = ForecastAt(f.fitted.Order, f.fitted.Params, y, exog, future, ahead)
	}
	if f.fitted == nil || now.Sub(f.fittedAt) >= f.cfg.RefitEvery || err != nil {
		sel, serr := Select(ctx, y, exog, f.cfg.Orders, f.warm)
		if serr != nil {
			return nil, fmt.Errorf("fit: %w", serr)
		}
		f.fitted, f.fittedAt = sel.Best, now
		if f.OnFit != nil {
			names := make([]string, 0)
			if len(exog) > 0 {
				for i := range exog[0] {
					names = append(names, fmt.Sprintf("x%d", i+1))
				}
			}
			step := time.Duration(B) * time.Second
			f.OnFit(NewRecord(sel.Best, names, Window{From: now.Add(-time.Duration(nb) * step), To: now}, now))
		}
		for _, c := range sel.Candidates {
			if c.Result != nil {
				f.warm[c.Order.String()] = c.Result.Params
			}
		}
		fc, err = f.fitted.Forecast(y, exog, future, ahead)
	}
	if err != nil {
		return nil, fmt.Errorf("forecast: %w", err)
	}

	// Step j's value holds at its middle second; seconds in between are
	// interpolated, starting from the last observed step.
	value := func(j int) float64 {
		v := y[nb-1]
		if j >= 0 {
			v = fc.Mean[j] + f.cfg.Margin*math.Sqrt(math.Max(fc.Variance[j], 0))
		}
		if f.cfg.Sqrt {
			return math.Max(v, 0) * math.Max(v, 0)
		}
		return v
	}
	out := make([]float64, steps)
	mid := float64(B-1) / 2
	for s := range out {
		pos := (float64(s) - mid) / float64(B) // in steps after the first forecast step's middle
		j := int(math.Floor(pos))
		w := pos - float64(j)
		a, b := value(j), value(min(j+1, ahead-1))
		out[s] = math.Max(0, a+(b-a)*w)
	}
	return out, nil
}
