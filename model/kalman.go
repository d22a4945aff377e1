package model

import (
	"errors"
	"math"
)

// initialVariance is statsmodels' approximate diffuse prior variance.
const initialVariance = 1e6

// steadyTolerance is statsmodels' steady-state test: the filter stops
// updating the covariance once the squared change of the predicted state
// covariance sums to less than this.
const steadyTolerance = 1e-19

// relSteadyTolerance is the looser-than-never test used when statsmodels
// itself never declares convergence (models with exog are time-varying for
// it): stop when the covariance change is negligible relative to its size.
const relSteadyTolerance = 1e-28

var errFilter = errors.New("kalman filter: non-positive forecast error variance")

// workspace holds the filter's scratch space so repeated likelihood
// evaluations do not allocate. One workspace per goroutine.
type workspace struct {
	k, m  int
	p, pf []float64 // predicted / filtered state covariance, k*k
	tp    []float64 // T*Pf, k*k
	zp, g []float64 // Z*P and gain P*Z'/F
	a     []float64 // state means, k*m, state-major: a[i*m+c]
	tmp   []float64 // k*m
	data  []float64 // n*m observations, row-major: data[t*m+c]
	vbuf  []float64 // steady-state innovations, column after column
	ac    []float64 // one column's state means, k
	gram  []float64 // m*m cross products of weighted innovations
	v     []float64 // innovations of the current step, per column
	logF  float64   // sum of log F over the counted steps
	nEff  int
	lastF float64
	endP  []float64 // predicted covariance after the last observation
	endA  []float64 // predicted means after the last observation
}

func newWorkspace(k, m int) *workspace {
	return &workspace{
		k: k, m: m,
		p: make([]float64, k*k), pf: make([]float64, k*k), tp: make([]float64, k*k),
		zp: make([]float64, k), g: make([]float64, k),
		a: make([]float64, k*m), tmp: make([]float64, k*m), ac: make([]float64, k),
		gram: make([]float64, m*m), v: make([]float64, m),
		endP: make([]float64, k*k), endA: make([]float64, k*m),
	}
}

// setData stores the m data columns (each of length n) row-major for run.
func (w *workspace) setData(cols [][]float64) {
	n := len(cols[0])
	if cap(w.data) < n*w.m {
		w.data = make([]float64, n*w.m)
	}
	w.data = w.data[:n*w.m]
	for c, col := range cols {
		for t, v := range col {
			w.data[t*w.m+c] = v
		}
	}
}

// run filters the m data columns (set by setData) through one shared
// covariance recursion. Under approximate diffuse initialisation the
// covariances do not depend on the data, and the innovations are linear in
// it, so filtering y and each exog column separately gives the innovations
// of y - X*beta for every beta at once. The first burn steps are left out of
// the sums, as statsmodels does. statsmodelsSteady selects statsmodels'
// absolute steady-state rule (used when it applies it: no exog); otherwise a
// tight relative rule is used.
func (w *workspace) run(sys *system, burn int, statsmodelsSteady bool) error {
	k, m := w.k, w.m
	n := len(w.data) / m
	p, pf, tp, zp, g := w.p, w.pf, w.tp, w.zp, w.g
	clear(p)
	for i := 0; i < k; i++ {
		p[i*k+i] = initialVariance
	}
	clear(w.a)
	clear(w.gram)
	w.logF, w.nEff = 0, 0
	converged := false
	var F, lf, sq float64
	lfT := -1 // step at which log F was last computed after convergence
	a, tmp := w.a, w.tmp
	data := w.data
	t := 0
	for ; t < n; t++ {
		if converged && lfT >= 0 && t > burn {
			break // the rest runs in the steady-state loops below
		}
		if !converged {
			// zp = Z P (P symmetric, so also P Z').
			clear(zp)
			for _, zi := range sys.z {
				row := p[zi*k : zi*k+k]
				for j, v := range row {
					zp[j] += v
				}
			}
			F = 0
			for _, zi := range sys.z {
				F += zp[zi]
			}
			if !(F > 0) || math.IsInf(F, 0) {
				return errFilter
			}
			inv := 1 / F
			for j := range g {
				g[j] = zp[j] * inv
			}
			// Pf = P - zp zp' / F
			for i := 0; i < k; i++ {
				gi := g[i]
				for j := 0; j < k; j++ {
					pf[i*k+j] = p[i*k+j] - gi*zp[j]
				}
			}
			// tp = T Pf
			clear(tp)
			for _, e := range sys.t {
				src := pf[e.j*k : e.j*k+k]
				dst := tp[e.i*k : e.i*k+k]
				for j, v := range src {
					dst[j] += e.v * v
				}
			}
			// new P = tp T' + sigma2 R R', symmetrised; track the change.
			var diff float64
			for i := 0; i < k; i++ {
				ri := sys.r[i] * sys.sigma2
				for j := 0; j < k; j++ {
					pf[i*k+j] = ri * sys.r[j]
				}
			}
			for _, e := range sys.t {
				// (tp T')[i][e.i] += tp[i][e.j] * e.v
				for i := 0; i < k; i++ {
					pf[i*k+e.i] += tp[i*k+e.j] * e.v
				}
			}
			var scale float64
			for i := 0; i < k; i++ {
				for j := i; j < k; j++ {
					v := 0.5 * (pf[i*k+j] + pf[j*k+i])
					d := v - p[i*k+j]
					if i == j {
						diff += d * d
						scale += v * v
					} else {
						diff += 2 * d * d
						scale += 2 * v * v
					}
					pf[i*k+j], pf[j*k+i] = v, v
				}
			}
			// pf now holds the next predicted covariance; keep this step's
			// quantities (F, g) for the mean update below.
			p, pf = pf, p
			if t >= 1 {
				if statsmodelsSteady {
					converged = diff < steadyTolerance
				} else {
					converged = diff <= relSteadyTolerance*scale
				}
			}
		}
		if !converged || lfT < 0 {
			lf = math.Log(F)
			sq = 1 / math.Sqrt(F)
			if converged {
				lfT = t
			}
		}
		if t >= burn {
			w.logF += lf
			w.nEff++
		}
		// Mean update for all columns at once; the state means are stored
		// state-major (a[i*m+c]) so the inner loops run over columns.
		row := data[t*m : t*m+m]
		v := w.v[:m]
		copy(v, row)
		for _, zi := range sys.z {
			az := a[zi*m : zi*m+m]
			for c := range v {
				v[c] -= az[c]
			}
		}
		for j := 0; j < k; j++ {
			gj := g[j]
			aj := a[j*m : j*m+m]
			tj := tmp[j*m : j*m+m]
			for c := range tj {
				tj[c] = aj[c] + gj*v[c]
			}
		}
		clear(a)
		for _, e := range sys.t {
			ai := a[e.i*m : e.i*m+m]
			tj := tmp[e.j*m : e.j*m+m]
			ev := e.v
			for c := range ai {
				ai[c] += ev * tj[c]
			}
		}
		if t >= burn {
			for c := range v {
				v[c] *= sq
			}
			for i := 0; i < m; i++ {
				vi := v[i]
				gr := w.gram[i*m : i*m+m]
				for j := i; j < m; j++ {
					gr[j] += vi * v[j]
				}
			}
		}
	}
	if t < n {
		w.steady(sys, t, n, F, g)
	}
	w.lastF = F
	copy(w.endP, p)
	copy(w.endA, w.a)
	// restore buffer identity for the next run
	w.p, w.pf = p, pf
	return nil
}

// steady runs steps t0..n-1 once the covariance has converged: F and the
// gain are constant, so log F is added once per step count and the squared
// innovations are scaled by 1/F at the end.
func (w *workspace) steady(sys *system, t0, n int, F float64, g []float64) {
	k, m := w.k, w.m
	steps := n - t0
	w.logF += float64(steps) * math.Log(F)
	w.nEff += steps
	inv := 1 / F
	a, tmp, data := w.a, w.tmp, w.data
	// In the steady state the columns no longer share any work, so each is
	// filtered on its own in a tight loop and the cross products of the
	// stored innovations are taken afterwards.
	if cap(w.vbuf) < steps*m {
		w.vbuf = make([]float64, steps*m)
	}
	vbuf := w.vbuf[:steps*m]
	ac := w.ac[:k]
	tmp = tmp[:k]
	g = g[:k]
	ents, rowEnd := sys.t, sys.rowEnd[:k]
	for c := 0; c < m; c++ {
		for i := 0; i < k; i++ {
			ac[i] = a[i*m+c]
		}
		vs := vbuf[c*steps : (c+1)*steps]
		if k <= 4 {
			steady4(sys, g, ac, data, vs, t0, n, m, c)
			for i := 0; i < k; i++ {
				a[i*m+c] = ac[i]
			}
			continue
		}
		for t := t0; t < n; t++ {
			v := data[t*m+c]
			for _, zi := range sys.z {
				v -= ac[zi]
			}
			vs[t-t0] = v
			for j := range tmp {
				tmp[j] = ac[j] + g[j]*v
			}
			// Row by row, so each new state is summed in a register.
			start := 0
			for i, end := range rowEnd {
				var sum float64
				for _, e := range ents[start:end] {
					sum += e.v * tmp[e.j]
				}
				ac[i] = sum
				start = end
			}
		}
		for i := 0; i < k; i++ {
			a[i*m+c] = ac[i]
		}
	}
	for i := 0; i < m; i++ {
		vi := vbuf[i*steps : (i+1)*steps]
		for j := i; j < m; j++ {
			vj := vbuf[j*steps : (j+1)*steps]
			var d float64
			for t, x := range vi {
				d += x * vj[t]
			}
			w.gram[i*m+j] += d * inv
		}
	}
}

// steady4 is the steady-state loop for one column when the state has at
// most four entries: the matrices are padded to 4x4 and held in locals, so
// the loop has no bounds checks or index lists.
func steady4(sys *system, g, ac, data, vs []float64, t0, n, m, c int) {
	var T [4][4]float64
	for _, e := range sys.t {
		T[e.i][e.j] = e.v
	}
	var z, gg, a [4]float64
	for _, zi := range sys.z {
		z[zi] = 1
	}
	copy(gg[:], g)
	copy(a[:], ac)
	z0, z1, z2, z3 := z[0], z[1], z[2], z[3]
	g0, g1, g2, g3 := gg[0], gg[1], gg[2], gg[3]
	a0, a1, a2, a3 := a[0], a[1], a[2], a[3]
	vs = vs[:n-t0]
	for t := range vs {
		v := data[(t0+t)*m+c] - (z0*a0 + z1*a1 + z2*a2 + z3*a3)
		vs[t] = v
		b0, b1, b2, b3 := a0+g0*v, a1+g1*v, a2+g2*v, a3+g3*v
		a0 = T[0][0]*b0 + T[0][1]*b1 + T[0][2]*b2 + T[0][3]*b3
		a1 = T[1][0]*b0 + T[1][1]*b1 + T[1][2]*b2 + T[1][3]*b3
		a2 = T[2][0]*b0 + T[2][1]*b1 + T[2][2]*b2 + T[2][3]*b3
		a3 = T[3][0]*b0 + T[3][1]*b1 + T[3][2]*b2 + T[3][3]*b3
	}
	a = [4]float64{a0, a1, a2, a3}
	copy(ac, a[:len(ac)])
}

// profile returns the log-likelihood maximised over the exog coefficients
// (the columns after the first are exog, the first is y) and the maximising
// coefficients. With no exog columns it is the plain log-likelihood.
func (w *workspace) profile(beta []float64) (float64, bool) {
	m := w.m
	g := w.gram
	// Columns are y, x1..xk; the weighted least squares of y on x solves
	// Gxx beta = Gxy and leaves Syy - Gxy' beta.
	ssr := g[0]
	if m > 1 {
		kx := m - 1
		// Cholesky of Gxx, scaled by its diagonal for conditioning.
		a := make([]float64, kx*kx)
		b := make([]float64, kx)
		d := make([]float64, kx)
		for i := 0; i < kx; i++ {
			d[i] = math.Sqrt(g[(i+1)*m+i+1])
			if d[i] == 0 {
				d[i] = 1
			}
		}
		for i := 0; i < kx; i++ {
			for j := i; j < kx; j++ {
				v := g[(i+1)*m+j+1] / (d[i] * d[j])
				a[i*kx+j], a[j*kx+i] = v, v
			}
			b[i] = g[i+1] / d[i]
		}
		if !cholSolve(a, b, kx) {
			return math.NaN(), false
		}
		for i := range b {
			b[i] /= d[i]
		}
		// ssr = Syy - 2 b'Gxy + b'Gxx b, evaluated in the stable form.
		var cross, quad float64
		for i := 0; i < kx; i++ {
			cross += b[i] * g[i+1]
			for j := 0; j < kx; j++ {
				gij := g[(min(i, j)+1)*m+max(i, j)+1]
				quad += b[i] * gij * b[j]
			}
		}
		ssr = g[0] - 2*cross + quad
		copy(beta, b)
	}
	llf := -0.5 * (float64(w.nEff)*math.Log(2*math.Pi) + w.logF + ssr)
	return llf, true
}

// cholSolve solves a x = b in place for symmetric positive definite a (k*k),
// treating numerically singular directions as absent (zero coefficient).
func cholSolve(a, b []float64, k int) bool {
	l := a
	skip := make([]bool, k)
	for j := 0; j < k; j++ {
		s := l[j*k+j]
		for p := 0; p < j; p++ {
			s -= l[j*k+p] * l[j*k+p]
		}
		if s <= 1e-12 {
			skip[j] = true
			for i := j; i < k; i++ {
				l[i*k+j] = 0
			}
			continue
		}
		ljj := math.Sqrt(s)
		l[j*k+j] = ljj
		for i := j + 1; i < k; i++ {
			s := l[i*k+j]
			for p := 0; p < j; p++ {
				s -= l[i*k+p] * l[j*k+p]
			}
			l[i*k+j] = s / ljj
		}
	}
	for i := 0; i < k; i++ {
		if skip[i] {
			b[i] = 0
			continue
		}
		s := b[i]
		for p := 0; p < i; p++ {
			s -= l[i*k+p] * b[p]
		}
		b[i] = s / l[i*k+i]
	}
	for i := k - 1; i >= 0; i-- {
		if skip[i] {
			b[i] = 0
			continue
		}
		s := b[i]
		for p := i + 1; p < k; p++ {
			s -= l[p*k+i] * b[p]
		}
		b[i] = s / l[i*k+i]
	}
	for _, v := range b {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return false
		}
	}
	return true
}
