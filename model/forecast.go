package model

import (
	"fmt"
	"math"
)

// z975 is the standard normal 97.5% quantile (statsmodels' 95% interval).
const z975 = 1.959963984540054

// Forecast holds the h-step-ahead predictions: mean, variance of the mean
// prediction and the normal 95% interval.
type Forecast struct {
	Mean     []float64 `json:"mean"`
	Variance []float64 `json:"variance"`
	Lower95  []float64 `json:"lower95"`
	Upper95  []float64 `json:"upper95"`
}

// Forecast predicts steps values after the end of y, given the history the
// model was fitted on (y, exog) and the future exog rows. When future has
// fewer rows than steps (or none), the missing exog rows hold the last known
// row: the last future row, else the last history row. Holding the last value
// is the naive forecast of the regressors; callers with better exog forecasts
// should pass them.
func (r *Result) Forecast(y []float64, exog, future [][]float64, steps int) (*Forecast, error) {
	return forecastAt(r.spec, r.Params, y, exog, future, steps)
}

// ForecastAt forecasts from given parameters (statsmodels' layout) without
// fitting.
func ForecastAt(o Order, params []float64, y []float64, exog, future [][]float64, steps int) (*Forecast, error) {
	s := newSpec(o, exogWidth(exog))
	if len(params) != s.nParams() {
		return nil, fmt.Errorf("order %s takes %d parameters, got %d", o, s.nParams(), len(params))
	}
	return forecastAt(s, params, y, exog, future, steps)
}

func forecastAt(s spec, params []float64, y []float64, exog, future [][]float64, steps int) (*Forecast, error) {
	if steps < 1 {
		return nil, fmt.Errorf("forecast needs at least one step, got %d", steps)
	}
	kx := s.kExog
	if exogWidth(exog) != kx {
		return nil, fmt.Errorf("history exog has %d columns, the model %d", exogWidth(exog), kx)
	}
	if err := checkExog(exog, kx, len(y)); err != nil {
		return nil, err
	}
	for i, row := range future {
		if len(row) != kx {
			return nil, fmt.Errorf("future exog row %d has %d columns, model has %d", i, len(row), kx)
		}
	}
	beta := params[:kx]
	resid := make([]float64, len(y))
	for t := range y {
		v := y[t]
		for j := 0; j < kx; j++ {
			v -= beta[j] * exog[t][j]
		}
		resid[t] = v
	}
	narma := s.nARMA()
	sys := s.newSystem(params[kx:kx+narma], params[len(params)-1])
	w := newWorkspace(s.kStates, 1)
	w.setData([][]float64{resid})
	if err := w.run(sys, s.burn(), kx == 0); err != nil {
		return nil, fmt.Errorf("forecast: %w", err)
	}
	k := s.kStates
	a := append([]float64(nil), w.endA...)
	P := append([]float64(nil), w.endP...)
	tmpA := make([]float64, k)
	tp := make([]float64, k*k)
	next := make([]float64, k*k)
	fc := &Forecast{
		Mean: make([]float64, steps), Variance: make([]float64, steps),
		Lower95: make([]float64, steps), Upper95: make([]float64, steps),
	}
	var lastRow []float64
	if kx > 0 {
		lastRow = exog[len(exog)-1]
	}
	for h := 0; h < steps; h++ {
		row := lastRow
		if h < len(future) {
			row = future[h]
		} else if len(future) > 0 {
			row = future[len(future)-1]
		}
		mean := 0.0
		for _, zi := range sys.z {
			mean += a[zi]
		}
		for j := 0; j < kx; j++ {
			mean += beta[j] * row[j]
		}
		variance := 0.0
		for _, zi := range sys.z {
			for _, zj := range sys.z {
				variance += P[zi*k+zj]
			}
		}
		sd := math.Sqrt(math.Max(variance, 0))
		fc.Mean[h], fc.Variance[h] = mean, variance
		fc.Lower95[h], fc.Upper95[h] = mean-z975*sd, mean+z975*sd
		// a = T a; P = T P T' + sigma2 R R'
		clear(tmpA)
		for _, e := range sys.t {
			tmpA[e.i] += e.v * a[e.j]
		}
		copy(a, tmpA)
		clear(tp)
		for _, e := range sys.t {
			for j := 0; j < k; j++ {
				tp[e.i*k+j] += e.v * P[e.j*k+j]
			}
		}
		for i := 0; i < k; i++ {
			for j := 0; j < k; j++ {
				next[i*k+j] = sys.sigma2 * sys.r[i] * sys.r[j]
			}
		}
		for _, e := range sys.t {
			for i := 0; i < k; i++ {
				next[i*k+e.i] += tp[i*k+e.j] * e.v
			}
		}
		P, next = next, P
	}
	return fc, nil
}
