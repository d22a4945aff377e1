package backtest

import "math"

// FourierRows are the known covariates of the times from first on, one row
// per second for n seconds: sin and cos of 2πk·t/period for k = 1..terms.
func FourierRows(first, n, period, terms int) [][]float64 {
	flat := make([]float64, n*2*terms)
	rows := make([][]float64, n)
	for i := range rows {
		row := flat[i*2*terms : (i+1)*2*terms : (i+1)*2*terms]
		phase := 2 * math.Pi * float64((first+i)%period) / float64(period)
		for k := 1; k <= terms; k++ {
			s, c := math.Sincos(float64(k) * phase)
			row[2*(k-1)], row[2*(k-1)+1] = s, c
		}
		rows[i] = row
	}
	return rows
}
