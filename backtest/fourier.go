package backtest

import "github.com/nomadscalerd/nomadscalerd/model"

// FourierRows are the known covariates of the trace seconds from first on,
// one row per second for n seconds: model.Fourier's sin and cos of
// 2πk·t/period for k = 1..terms.
func FourierRows(first, n, period, terms int) [][]float64 {
	times := make([]int64, n)
	for i := range times {
		times[i] = int64(first + i)
	}
	return model.Fourier(times, []float64{float64(period)}, terms)
}
