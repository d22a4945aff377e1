package model

import (
	"context"
	"math"
	"testing"
)

func TestSelectNeverPanicsOnDegenerateSeries(t *testing.T) {
	n := 120
	constant := make([]float64, n)
	ramp := make([]float64, n)
	huge := make([]float64, n)
	collinear := make([][]float64, n)
	zeros := make([][]float64, n)
	for i := range constant {
		constant[i] = 5
		ramp[i] = float64(i)
		huge[i] = 1e12 + 1e9*math.Sin(float64(i))
		collinear[i] = []float64{float64(i % 7), 2 * float64(i%7)}
		zeros[i] = []float64{0}
	}
	cases := []struct {
		name string
		y    []float64
		x    [][]float64
	}{
		{"constant", constant, nil},
		{"ramp", ramp, nil},
		{"huge", huge, nil},
		{"collinear exog", ramp, collinear},
		{"all-zero exog", huge, zeros},
	}
	for _, c := range cases {
		sel, err := Select(context.Background(), c.y, c.x, nil, nil)
		if err != nil {
			continue // failing is allowed, panicking is not
		}
		fc, err := sel.Best.Forecast(c.y, c.x, nil, 3)
		if err != nil {
			t.Errorf("%s: forecast: %v", c.name, err)
			continue
		}
		for _, v := range fc.Mean {
			if math.IsNaN(v) {
				t.Errorf("%s: NaN forecast from a fitted model", c.name)
			}
		}
	}
}
