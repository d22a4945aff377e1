package model

import "fmt"

// spec is the shape of one SARIMAX model in statsmodels' state-space form
// (Harvey representation, differencing kept in the state vector as
// statsmodels does with simple_differencing=False).
type spec struct {
	o       Order
	kExog   int
	kAR     int // degree of the reduced AR polynomial, p + s*P
	kMA     int // degree of the reduced MA polynomial, q + s*Q
	kOrder  int // ARMA block size, max(kAR, kMA+1)
	kDiff   int // differencing states, d + s*D
	kStates int
}

func newSpec(o Order, kExog int) spec {
	s := spec{o: o, kExog: kExog}
	s.kAR = o.P + o.S*o.SP
	s.kMA = o.Q + o.S*o.SQ
	s.kOrder = max(s.kAR, s.kMA+1)
	s.kDiff = o.D + o.S*o.SD
	s.kStates = s.kOrder + s.kDiff
	return s
}

// Parameter layout, as statsmodels orders it: exog betas, AR, MA, seasonal
// AR, seasonal MA, sigma2.
func (s spec) nParams() int { return s.kExog + s.nARMA() + 1 }
func (s spec) nARMA() int   { return s.o.P + s.o.Q + s.o.SP + s.o.SQ }

// burn is the number of leading log-likelihood terms statsmodels drops under
// approximate diffuse initialisation without enforced stationarity.
func (s spec) burn() int { return s.kStates }

func (s spec) paramNames() []string {
	names := make([]string, 0, s.nParams())
	for i := 1; i <= s.kExog; i++ {
		names = append(names, fmt.Sprintf("x%d", i))
	}
	for i := 1; i <= s.o.P; i++ {
		names = append(names, fmt.Sprintf("ar.L%d", i))
	}
	for i := 1; i <= s.o.Q; i++ {
		names = append(names, fmt.Sprintf("ma.L%d", i))
	}
	for i := 1; i <= s.o.SP; i++ {
		names = append(names, fmt.Sprintf("ar.S.L%d", i*s.o.S))
	}
	for i := 1; i <= s.o.SQ; i++ {
		names = append(names, fmt.Sprintf("ma.S.L%d", i*s.o.S))
	}
	return append(names, "sigma2")
}

// reducedPolys multiplies the regular and seasonal lag polynomials and
// returns the state-space coefficients: ar[i] multiplies y_{t-1-i} (the
// negated reduced AR polynomial), ma[i] the shock at lag i+1.
func (s spec) reducedPolys(arma []float64) (ar, ma []float64) {
	o := s.o
	phi, theta := arma[:o.P], arma[o.P:o.P+o.Q]
	sphi, stheta := arma[o.P+o.Q:o.P+o.Q+o.SP], arma[o.P+o.Q+o.SP:]
	// AR polynomial 1 - phi(L) times 1 - Phi(L^s); the state uses its negation.
	a := make([]float64, o.P+1)
	a[0] = 1
	for i, v := range phi {
		a[i+1] = -v
	}
	sa := make([]float64, o.S*o.SP+1)
	sa[0] = 1
	for i, v := range sphi {
		sa[(i+1)*o.S] = -v
	}
	ra := polymul(a, sa)
	ar = make([]float64, s.kAR)
	for i := range ar {
		ar[i] = -ra[i+1]
	}
	m := make([]float64, o.Q+1)
	m[0] = 1
	copy(m[1:], theta)
	sm := make([]float64, o.S*o.SQ+1)
	sm[0] = 1
	for i, v := range stheta {
		sm[(i+1)*o.S] = v
	}
	rm := polymul(m, sm)
	ma = make([]float64, s.kMA)
	copy(ma, rm[1:])
	return ar, ma
}

func polymul(a, b []float64) []float64 {
	out := make([]float64, len(a)+len(b)-1)
	for i, x := range a {
		for j, y := range b {
			out[i+j] += x * y
		}
	}
	return out
}

// entry is one nonzero of the transition matrix.
type entry struct {
	i, j int
	v    float64
}

// system holds the state-space matrices for one parameter vector. The design
// row is all zeros and ones, so it is kept as the list of its ones.
type system struct {
	k      int
	z      []int   // indices where the design row is 1
	t      []entry // nonzeros of the transition matrix, row by row
	rowEnd []int   // t[rowEnd[i-1]:rowEnd[i]] are row i's nonzeros
	r      []float64
	sigma2 float64
}

// newSystem builds the matrices the way statsmodels' SARIMAX lays them out:
// differencing states first, then the ARMA companion block.
func (s spec) newSystem(arma []float64, sigma2 float64) *system {
	k := s.kStates
	o := s.o
	sys := &system{k: k, r: make([]float64, k), sigma2: sigma2}
	T := make([]float64, k*k)
	set := func(i, j int, v float64) { T[i*k+j] = v }
	// Design: ones for the simple-differencing states, the last state of each
	// seasonal-differencing block, and the first ARMA state.
	for i := 0; i < o.D; i++ {
		sys.z = append(sys.z, i)
	}
	for dd := 0; dd < o.SD; dd++ {
		sys.z = append(sys.z, o.D+dd*o.S+o.S-1)
	}
	sys.z = append(sys.z, s.kDiff)

	ar, ma := s.reducedPolys(arma)
	b := s.kDiff
	for i := 0; i < s.kOrder-1; i++ {
		set(b+i, b+i+1, 1)
	}
	for i, v := range ar {
		set(b+i, b, v)
	}
	for dd := 0; dd < o.SD; dd++ {
		start := o.D + dd*o.S
		end := start + o.S
		set(start, end-1, 1)
		for i := 1; i < o.S; i++ {
			set(start+i, start+i-1, 1)
		}
		// statsmodels links each seasonal block to the last state of the
		// next one (the same cell whatever the number of blocks after it).
		if dd+1 < o.SD {
			set(start, end+o.S-1, 1)
		}
		set(start, b, 1)
	}
	for i := 0; i < o.D; i++ {
		for j := i; j < o.D; j++ {
			set(i, j, 1)
		}
		for dd := 0; dd < o.SD; dd++ {
			set(i, o.D+dd*o.S+o.S-1, 1)
		}
		set(i, b, 1)
	}
	for i := 0; i < k; i++ {
		for j := 0; j < k; j++ {
			if v := T[i*k+j]; v != 0 {
				sys.t = append(sys.t, entry{i, j, v})
			}
		}
	}
	sys.rowEnd = make([]int, k)
	for i := 0; i < k; i++ {
		end := 0
		if i > 0 {
			end = sys.rowEnd[i-1]
		}
		for end < len(sys.t) && sys.t[end].i == i {
			end++
		}
		sys.rowEnd[i] = end
	}
	sys.r[b] = 1
	for i, v := range ma {
		sys.r[b+1+i] = v
	}
	return sys
}

// dense returns the transition matrix as a row-major slice (for tests).
func (sys *system) dense() []float64 {
	T := make([]float64, sys.k*sys.k)
	for _, e := range sys.t {
		T[e.i*sys.k+e.j] = e.v
	}
	return T
}
