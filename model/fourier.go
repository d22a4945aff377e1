package model

import (
	"context"
	"fmt"
	"math"
)

// Fourier returns K harmonics of each period as exog columns, one row per
// time: sin(2*pi*j*t/P), cos(2*pi*j*t/P) for j = 1..k and each period P in
// seconds, in that order. t is absolute unix time in seconds, so the same
// call on future timestamps continues the waves seamlessly.
func Fourier(times []int64, periods []float64, k int) [][]float64 {
	rows := make([][]float64, len(times))
	for i, t := range times {
		row := make([]float64, 0, 2*k*len(periods))
		for _, p := range periods {
			// Reduce the time modulo the period first: unix seconds are
			// ~1.7e9, and the phase must keep its precision.
			phase := math.Mod(float64(t), p) / p
			for j := 1; j <= k; j++ {
				a := 2 * math.Pi * float64(j) * phase
				row = append(row, math.Sin(a), math.Cos(a))
			}
		}
		rows[i] = row
	}
	return rows
}

// FourierNames names Fourier's columns: "sin86400_1", "cos86400_1", ...
func FourierNames(periods []float64, k int) []string {
	var names []string
	for _, p := range periods {
		for j := 1; j <= k; j++ {
			names = append(names, fmt.Sprintf("sin%g_%d", p, j), fmt.Sprintf("cos%g_%d", p, j))
		}
	}
	return names
}

// SeasonalChoice is the outcome of choosing the number of harmonics.
type SeasonalChoice struct {
	K         int // harmonics per period; 0 means no Fourier terms
	Selection *Selection
}

// SelectFourier chooses the number of harmonics K in 0..maxK jointly with
// the order: for each K it appends Fourier(times, periods, K) to exog, runs
// Select over the candidate orders, and keeps the K whose best model has the
// lowest AIC. Each harmonic adds two parameters per period, which AIC
// charges for. The returned Selection's models expect exog with the Fourier
// columns appended (use AppendFourier for history and future rows).
func SelectFourier(ctx context.Context, y []float64, exog [][]float64, times []int64, periods []float64, maxK int, cands []Order, warm map[string][]float64) (*SeasonalChoice, error) {
	if len(times) != len(y) {
		return nil, fmt.Errorf("have %d timestamps for %d observations", len(times), len(y))
	}
	var best *SeasonalChoice
	var lastErr error
	for k := 0; k <= maxK; k++ {
		x := AppendFourier(exog, times, periods, k)
		sel, err := Select(ctx, y, x, cands, nil)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			lastErr = err
			continue
		}
		if best == nil || sel.Best.AIC < best.Selection.Best.AIC {
			best = &SeasonalChoice{K: k, Selection: sel}
		}
	}
	if best == nil {
		return nil, fmt.Errorf("no harmonic count could be fitted: %w", lastErr)
	}
	return best, nil
}

// AppendFourier returns exog rows with Fourier(times, periods, k) columns
// appended (exog may be nil).
func AppendFourier(exog [][]float64, times []int64, periods []float64, k int) [][]float64 {
	if k == 0 || len(periods) == 0 {
		return exog
	}
	f := Fourier(times, periods, k)
	out := make([][]float64, len(times))
	for i := range times {
		var row []float64
		if i < len(exog) {
			row = append(row, exog[i]...)
		}
		out[i] = append(row, f[i]...)
	}
	return out
}
