package model

import (
	"math"

	"gonum.org/v1/gonum/mat"
)

// startParams computes statsmodels' SARIMAX starting parameters: OLS of the
// differenced series on the differenced exog, then conditional sum of
// squares fits of the (seasonal) ARMA part on the OLS residuals.
func (s spec) startParams(y []float64, exog [][]float64) []float64 {
	o := s.o
	yd := difference(y, o.D, o.SD, o.S)
	out := make([]float64, 0, s.nParams())
	e := yd
	if s.kExog > 0 {
		xd := make([][]float64, s.kExog)
		for j := 0; j < s.kExog; j++ {
			col := make([]float64, len(y))
			for t := range y {
				col[t] = exog[t][j]
			}
			xd[j] = difference(col, o.D, o.SD, o.S)
		}
		beta := lstsq(xd, yd)
		e = make([]float64, len(yd))
		for t := range yd {
			v := yd[t]
			for j := range beta {
				v -= xd[j][t] * beta[j]
			}
			e[t] = v
		}
		out = append(out, beta...)
	}
	arLags := func(n, step int) []int {
		l := make([]int, n)
		for i := range l {
			l[i] = (i + 1) * step
		}
		return l
	}
	ar, ma, v, ok := css(e, o.P, arLags(o.P, 1), o.Q, arLags(o.Q, 1))
	sar, sma, sv, sok := css(e, o.S*o.SP, arLags(o.SP, o.S), o.S*o.SQ, arLags(o.SQ, o.S))
	out = append(out, ar...)
	out = append(out, ma...)
	out = append(out, sar...)
	out = append(out, sma...)
	if !ok {
		switch {
		case sok:
			v = sv
		case s.kExog > 0:
			v = dot(e, e)
		default:
			v = dot(e, e) / float64(len(y))
		}
	}
	return append(out, math.Max(v, 1e-10))
}

// css is statsmodels' conditional-sum-of-squares start: a long AR fit gives
// residuals standing in for the shocks, then y is regressed on its own lags
// and the lagged residuals. kAR/kMA are the largest lags, arLags/maLags the
// lags that carry parameters. ok is false when there is no ARMA part (no
// variance estimate).
func css(e []float64, kAR int, arLags []int, kMA int, maLags []int) (ar, ma []float64, variance float64, ok bool) {
	ar = make([]float64, len(arLags))
	ma = make([]float64, len(maLags))
	if kAR+kMA == 0 {
		return ar, ma, 0, false
	}
	n := len(e)
	k := 2 * kMA
	r := max(k+kMA, kAR)
	var resid []float64
	// statsmodels falls back to zeros when a lag matrix cannot be formed.
	if (kMA > 0 && k >= n) || (kAR > 0 && kAR >= n) || r >= n || (kMA > 0 && kMA >= n-k) {
		mean := 0.0
		for _, v := range e {
			mean += v
		}
		mean /= float64(max(n, 1))
		resid = make([]float64, 2*len(maLags), 2*len(maLags)+n)
		for _, v := range e {
			resid = append(resid, v-mean)
		}
	} else {
		var long []float64
		if kMA > 0 {
			cols := make([][]float64, k)
			for j := range cols {
				c := make([]float64, n-k)
				for i := range c {
					c[i] = e[k+i-1-j]
				}
				cols[j] = c
			}
			b := lstsq(cols, e[k:])
			long = residuals(cols, e[k:], b)
		}
		Y := e[r:]
		var cols [][]float64
		for _, l := range arLags {
			c := make([]float64, len(Y))
			for i := range c {
				c[i] = e[r+i-l]
			}
			cols = append(cols, c)
		}
		for _, l := range maLags {
			c := make([]float64, len(Y))
			for i := range c {
				// long[j] is the residual at time k+j.
				c[i] = long[r+i-l-k]
			}
			cols = append(cols, c)
		}
		b := lstsq(cols, Y)
		copy(ar, b[:len(arLags)])
		copy(ma, b[len(arLags):])
		resid = residuals(cols, Y, b)
	}
	if len(resid) > 1 {
		tail := resid[len(maLags):]
		return ar, ma, dot(tail, tail) / float64(len(tail)), true
	}
	return ar, ma, variance1(e), true
}

func variance1(e []float64) float64 {
	var m float64
	for _, v := range e {
		m += v
	}
	m /= float64(len(e))
	var s float64
	for _, v := range e {
		s += (v - m) * (v - m)
	}
	return s / float64(len(e))
}

func dot(a, b []float64) float64 {
	var s float64
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

func residuals(cols [][]float64, y, b []float64) []float64 {
	out := make([]float64, len(y))
	for i := range y {
		v := y[i]
		for j, c := range cols {
			v -= c[i] * b[j]
		}
		out[i] = v
	}
	return out
}

// lstsq is the minimum-norm least-squares solution (numpy's pinv(X).dot(y))
// for X given as columns.
func lstsq(cols [][]float64, y []float64) []float64 {
	p := len(cols)
	n := len(y)
	if p == 0 || n == 0 {
		return make([]float64, p)
	}
	X := mat.NewDense(n, p, nil)
	for j, c := range cols {
		for i, v := range c {
			X.Set(i, j, v)
		}
	}
	var svd mat.SVD
	if !svd.Factorize(X, mat.SVDThin) {
		return make([]float64, p)
	}
	vals := svd.Values(nil)
	rank := 0
	for _, v := range vals {
		if v > 1e-15*vals[0] {
			rank++
		}
	}
	var b mat.Dense
	svd.SolveTo(&b, mat.NewDense(n, 1, append([]float64(nil), y...)), max(rank, 1))
	out := make([]float64, p)
	for j := range out {
		out[j] = b.At(j, 0)
	}
	return out
}

// difference applies D seasonal differences of period s, then d simple ones.
func difference(y []float64, d, D, s int) []float64 {
	out := append([]float64(nil), y...)
	for i := 0; i < D; i++ {
		if len(out) <= s {
			return nil
		}
		next := make([]float64, len(out)-s)
		for t := range next {
			next[t] = out[t+s] - out[t]
		}
		out = next
	}
	for i := 0; i < d; i++ {
		if len(out) <= 1 {
			return nil
		}
		next := make([]float64, len(out)-1)
		for t := range next {
			next[t] = out[t+1] - out[t]
		}
		out = next
	}
	return out
}
