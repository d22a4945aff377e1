package model

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"gonum.org/v1/gonum/optimize"
)

// Result is one fitted candidate.
type Result struct {
	Order         Order     `json:"order"`
	ParamNames    []string  `json:"param_names"`
	StartParams   []float64 `json:"start_params"`
	Params        []float64 `json:"params"`
	LLF           float64   `json:"llf"`
	AIC           float64   `json:"aic"`
	NObs          int       `json:"nobs"`
	NObsEffective int       `json:"nobs_effective"`
	Converged     bool      `json:"converged"`
	Iterations    int       `json:"iterations"`
	FitDuration   time.Duration
	spec          spec
}

// minObs is the shortest series a candidate is fitted to: enough for the
// burned diffuse steps and a handful of counted ones per parameter.
func (s spec) minObs() int { return s.kStates + s.nParams() + 3 }

// maxRestarts bounds the L-BFGS restarts of one fit.
const maxRestarts = 6

// ErrTooShort is returned when the series is too short for the order.
var ErrTooShort = errors.New("too few observations for the order")

// Fit estimates a SARIMAX model by maximum likelihood. exog holds one row per
// observation (nil or empty rows for none). start, when it has the model's
// parameter count, replaces statsmodels' starting parameters (a warm start
// from a previous fit of the same order).
//
// The optimiser works on the concentrated likelihood: for fixed ARMA
// parameters and variance, the exact maximising regression coefficients
// come from one weighted least squares on filtered innovations (the Kalman
// gains do not depend on the data). L-BFGS then searches only over the ARMA
// parameters and log sigma2, on -llf/nobs as statsmodels does.
func Fit(ctx context.Context, y []float64, exog [][]float64, o Order, start []float64) (*Result, error) {
	began := time.Now()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	kx := exogWidth(exog)
	if err := checkExog(exog, kx, len(y)); err != nil {
		return nil, err
	}
	s := newSpec(o, kx)
	if len(y) < s.minObs() {
		return nil, fmt.Errorf("order %s needs %d observations, have %d: %w", o, s.minObs(), len(y), ErrTooShort)
	}
	for i, v := range y {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("observation %d is not finite", i)
		}
	}
	computed := s.startParams(y, exog)
	sp := computed
	if usableStart(start, s.nParams()) {
		sp = append([]float64(nil), start...)
	}
	ev := newEvaluator(s, y, exog)
	narma := s.nARMA()
	toX := func(p []float64) []float64 {
		x := make([]float64, narma+1)
		copy(x, p[kx:kx+narma])
		x[narma] = math.Log(p[len(p)-1])
		return x
	}
	x0 := toX(sp)

	nobs := float64(len(y))
	best := struct {
		f float64
		x []float64
	}{f: math.Inf(1)}
	obj := func(x []float64) float64 {
		llf, ok := ev.profileLLF(x, nil)
		if !ok {
			return math.Inf(1)
		}
		f := -llf / nobs
		if f < best.f {
			best.f = f
			best.x = append(best.x[:0], x...)
		}
		return f
	}
	if f0 := obj(x0); math.IsInf(f0, 1) {
		// A warm start that no longer fits the data falls back to the
		// computed start.
		sp, x0 = computed, toX(computed)
		if f0 := obj(x0); math.IsInf(f0, 1) {
			return nil, fmt.Errorf("order %s: likelihood not finite at the starting parameters", o)
		}
	}
	grad := func(g, x []float64) {
		if !ev.gradient(g, x) {
			for i := range g {
				g[i] = math.NaN()
			}
			return
		}
		for i := range g {
			g[i] /= -nobs
		}
	}
	stop := func() (optimize.Status, error) {
		if ctx.Err() != nil {
			return optimize.Failure, ctx.Err()
		}
		return optimize.NotTerminated, nil
	}
	// L-BFGS can stop with a failed line search well before the optimum on
	// ridges (near-unit roots) or in the noise floor of the numerical
	// gradient. After such a stop it restarts from the best point with fresh
	// memory, until a restart no longer improves.
	var (
		converged bool
		iters     int
		x         = x0
	)
	for restart := 0; restart < maxRestarts; restart++ {
		before := best.f
		settings := &optimize.Settings{
			GradientThreshold: 1e-9,
			FuncEvaluations:   2000,
			MajorIterations:   500,
			Converger:         &optimize.FunctionConverge{Relative: 1e-11, Iterations: 2},
		}
		res, err := optimize.Minimize(optimize.Problem{Func: obj, Grad: grad, Status: stop}, x, settings, &optimize.LBFGS{Store: 10, Linesearcher: &optimize.Bisection{}})
		if cerr := ctx.Err(); cerr != nil {
			return nil, cerr
		}
		if res != nil {
			iters += res.MajorIterations
		}
		if best.x == nil {
			break
		}
		x = append([]float64(nil), best.x...)
		if err == nil && (res.Status == optimize.GradientThreshold || res.Status == optimize.FunctionConvergence) {
			converged = true
			break
		}
		// The run failed (typically its line search, on a ridge or in the
		// noise floor of the numerical gradient). A restart that gains
		// nothing measurable means the point is the optimum.
		if restart > 0 && before-best.f <= 1e-10*math.Abs(best.f) {
			converged = true
			break
		}
	}
	if best.x == nil {
		return nil, fmt.Errorf("order %s: optimisation found no finite point", o)
	}
	params, llf, ok := ev.fullParams(best.x)
	if !ok {
		return nil, fmt.Errorf("order %s: likelihood not finite at the optimum", o)
	}
	k := float64(s.nParams())
	return &Result{
		Order:         o,
		ParamNames:    s.paramNames(),
		StartParams:   sp,
		Params:        params,
		LLF:           llf,
		AIC:           -2*llf + 2*k,
		NObs:          len(y),
		NObsEffective: len(y) - s.burn(),
		Converged:     converged,
		Iterations:    iters,
		FitDuration:   time.Since(began),
		spec:          s,
	}, nil
}

// checkExog rejects ragged or non-finite exog rows.
func checkExog(exog [][]float64, kx, n int) error {
	if kx > 0 && len(exog) != n {
		return fmt.Errorf("exog has %d rows for %d observations", len(exog), n)
	}
	for i, row := range exog {
		if len(row) != kx {
			return fmt.Errorf("exog row %d has %d columns, row 0 has %d", i, len(row), kx)
		}
		for _, v := range row {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("exog row %d is not finite", i)
			}
		}
	}
	return nil
}

// usableStart reports whether warm-start parameters can seed a fit.
func usableStart(p []float64, n int) bool {
	if len(p) != n || !(p[n-1] > 0) {
		return false
	}
	for _, v := range p {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return false
		}
	}
	return true
}

func exogWidth(exog [][]float64) int {
	if len(exog) == 0 {
		return 0
	}
	return len(exog[0])
}

// evaluator computes the concentrated log-likelihood for one series.
type evaluator struct {
	s      spec
	cols   [][]float64 // y then the exog columns
	w      *workspace
	beta   []float64
	w1     *workspace // single column y - X*beta, for gradients
	resid  []float64
	xh     []float64
	lastX  []float64 // point of the last profileLLF into beta
	lastOK bool
}

func newEvaluator(s spec, y []float64, exog [][]float64) *evaluator {
	cols := [][]float64{y}
	for j := 0; j < s.kExog; j++ {
		c := make([]float64, len(y))
		for t := range y {
			c[t] = exog[t][j]
		}
		cols = append(cols, c)
	}
	w := newWorkspace(s.kStates, len(cols))
	w.setData(cols)
	return &evaluator{
		s: s, cols: cols, w: w, beta: make([]float64, s.kExog),
		w1: newWorkspace(s.kStates, 1), resid: make([]float64, len(y)),
	}
}

// gradient stores the gradient of the concentrated log-likelihood at x in g.
// By the envelope theorem it equals the partial gradient of the full
// log-likelihood with beta held at its maximiser, so the central differences
// filter the single column y - X*beta instead of y and every exog column.
func (e *evaluator) gradient(g, x []float64) bool {
	// gonum asks for the gradient at the point whose value it just had, so
	// the maximising beta is usually cached.
	if !e.lastOK || !slices.Equal(x, e.lastX) {
		if _, ok := e.profileLLF(x, nil); !ok {
			return false
		}
	}
	copy(e.resid, e.cols[0])
	for j, b := range e.beta {
		c := e.cols[j+1]
		for t := range e.resid {
			e.resid[t] -= b * c[t]
		}
	}
	e.w1.setData([][]float64{e.resid})
	e.xh = append(e.xh[:0], x...)
	xh := e.xh
	narma := e.s.nARMA()
	llf := func() (float64, bool) {
		sigma2 := math.Exp(xh[narma])
		if !(sigma2 > 0) || math.IsInf(sigma2, 0) {
			return 0, false
		}
		if err := e.w1.run(e.s.newSystem(xh[:narma], sigma2), e.s.burn(), e.s.kExog == 0); err != nil {
			return 0, false
		}
		v, ok := e.w1.profile(nil)
		return v, ok && !math.IsNaN(v) && !math.IsInf(v, 0)
	}
	for i := range x {
		h := 1e-6 * math.Max(1, math.Abs(x[i]))
		xh[i] = x[i] + h
		fp, ok1 := llf()
		xh[i] = x[i] - h
		fm, ok2 := llf()
		xh[i] = x[i]
		if !ok1 || !ok2 {
			return false
		}
		g[i] = (fp - fm) / (2 * h)
	}
	return true
}

// profileLLF evaluates x = (ARMA params, log sigma2), maximising over beta.
func (e *evaluator) profileLLF(x []float64, beta []float64) (float64, bool) {
	narma := e.s.nARMA()
	sigma2 := math.Exp(x[narma])
	if !(sigma2 > 0) || math.IsInf(sigma2, 0) {
		return 0, false
	}
	sys := e.s.newSystem(x[:narma], sigma2)
	if err := e.w.run(sys, e.s.burn(), e.s.kExog == 0); err != nil {
		return 0, false
	}
	cache := beta == nil
	if cache {
		beta = e.beta
		e.lastOK = false
	}
	llf, ok := e.w.profile(beta)
	if !ok || math.IsNaN(llf) || math.IsInf(llf, 0) {
		return 0, false
	}
	if cache {
		e.lastX = append(e.lastX[:0], x...)
		e.lastOK = true
	}
	return llf, true
}

// fullParams expands an optimiser point into statsmodels' parameter vector
// and evaluates the plain (not concentrated) log-likelihood there.
func (e *evaluator) fullParams(x []float64) ([]float64, float64, bool) {
	beta := make([]float64, e.s.kExog)
	if _, ok := e.profileLLF(x, beta); !ok {
		return nil, 0, false
	}
	narma := e.s.nARMA()
	params := append(append(append([]float64{}, beta...), x[:narma]...), math.Exp(x[narma]))
	llf, ok := loglike(e.s, e.cols[0], e.cols[1:], params)
	return params, llf, ok
}

// loglike is the log-likelihood at a full parameter vector, computed exactly
// as statsmodels does (one filter over y - X beta).
func loglike(s spec, y []float64, xcols [][]float64, params []float64) (float64, bool) {
	r := make([]float64, len(y))
	copy(r, y)
	for j, c := range xcols {
		b := params[j]
		for t := range r {
			r[t] -= b * c[t]
		}
	}
	narma := s.nARMA()
	sys := s.newSystem(params[s.kExog:s.kExog+narma], params[len(params)-1])
	w := newWorkspace(s.kStates, 1)
	w.setData([][]float64{r})
	if err := w.run(sys, s.burn(), s.kExog == 0); err != nil {
		return 0, false
	}
	llf, ok := w.profile(nil)
	return llf, ok && !math.IsNaN(llf) && !math.IsInf(llf, 0)
}

// LogLikelihood evaluates the log-likelihood of a SARIMAX model at the given
// parameters (statsmodels' layout), without fitting.
func LogLikelihood(y []float64, exog [][]float64, o Order, params []float64) (float64, error) {
	kx := exogWidth(exog)
	s := newSpec(o, kx)
	if len(params) != s.nParams() {
		return 0, fmt.Errorf("order %s with %d exog columns takes %d parameters, got %d", o, kx, s.nParams(), len(params))
	}
	cols := make([][]float64, kx)
	for j := range cols {
		cols[j] = make([]float64, len(y))
		for t := range y {
			cols[j][t] = exog[t][j]
		}
	}
	llf, ok := loglike(s, y, cols, params)
	if !ok {
		return 0, errFilter
	}
	return llf, nil
}
