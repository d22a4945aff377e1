package model

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func TestParseOrdersReadsShortAndSeasonalFormsAndRejectsNonsense(t *testing.T) {
	cases := []struct {
		in      string
		want    []Order
		wantErr bool
	}{
		{in: "1,1,1;1,0,1", want: []Order{{P: 1, D: 1, Q: 1}, {P: 1, Q: 1}}},
		{in: " 2,1,1 ; ", want: []Order{{P: 2, D: 1, Q: 1}}},
		{in: "1,0,1,1,0,1,24", want: []Order{{P: 1, Q: 1, SP: 1, SQ: 1, S: 24}}},
		{in: "1,1", wantErr: true},
		{in: "a,1,1", wantErr: true},
		{in: "-1,0,0", wantErr: true},
		{in: "0,0,0,1,0,0,1", wantErr: true},
		{in: "", wantErr: true},
	}
	for _, c := range cases {
		got, err := ParseOrders(c.in)
		if c.wantErr {
			if err == nil {
				t.Errorf("%q: want error, got %v", c.in, got)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.in, err)
			continue
		}
		if len(got) != len(c.want) {
			t.Errorf("%q: got %v, want %v", c.in, got, c.want)
			continue
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("%q: got %v, want %v", c.in, got, c.want)
			}
			if back, _ := ParseOrders(got[i].String()); back[0] != got[i] {
				t.Errorf("%v does not round-trip through String", got[i])
			}
		}
	}
}

func TestReadCSVNamesTheLineOfBadInput(t *testing.T) {
	cases := []struct {
		name, in, want string
	}{
		{"missing y", "a,b\n1,2\n", "1: no column named y"},
		{"ragged row", "y,a\n1,2\n3\n", "3: 1 fields, header has 2"},
		{"not a number", "y,a\n1,2\n3,x\n", `3: column a: "x" is not a finite number`},
		{"nan", "y,a\n1,2\nNaN,1\n", "3: column y"},
		{"no rows", "y,a\n", "no data rows"},
		{"empty", "", "1: empty file"},
	}
	for _, c := range cases {
		_, err := ReadCSV(strings.NewReader(c.in), true)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", c.name, err, c.want)
		}
	}
	tb, err := ReadCSV(strings.NewReader("x1,y\n1,2\n3,4\n"), true)
	if err != nil {
		t.Fatal(err)
	}
	if tb.Names[0] != "x1" || tb.Y[1] != 4 || tb.Exog[1][0] != 3 {
		t.Errorf("parsed %+v", tb)
	}
}

// TestSeasonalStateSpaceMatchesStatsmodelsLayout checks the matrices of a
// SARIMA(2,1,1)(1,1,1,3) against the ones statsmodels 0.13.5 builds
// (printed from SARIMAX(...).ssm for the same parameters).
func TestSeasonalStateSpaceMatchesStatsmodelsLayout(t *testing.T) {
	s := newSpec(Order{P: 2, D: 1, Q: 1, SP: 1, SD: 1, SQ: 1, S: 3}, 0)
	if s.kStates != 9 || s.burn() != 9 {
		t.Fatalf("k_states %d, burn %d, statsmodels has 9 and 9", s.kStates, s.burn())
	}
	// ar.L1=0.5 ar.L2=-0.2 ma.L1=0.3 ar.S.L3=0.4 ma.S.L3=-0.6
	sys := s.newSystem([]float64{0.5, -0.2, 0.3, 0.4, -0.6}, 1)
	wantZ := []int{0, 3, 4}
	if len(sys.z) != len(wantZ) {
		t.Fatalf("design ones at %v, want %v", sys.z, wantZ)
	}
	for i := range wantZ {
		if sys.z[i] != wantZ[i] {
			t.Fatalf("design ones at %v, want %v", sys.z, wantZ)
		}
	}
	// Reduced AR: (1-0.5L+0.2L^2)(1-0.4L^3) = 1 -0.5L +0.2L^2 -0.4L^3 +0.2L^4 -0.08L^5
	want := [][]float64{
		{1, 0, 0, 1, 1, 0, 0, 0, 0},
		{0, 0, 0, 1, 1, 0, 0, 0, 0},
		{0, 1, 0, 0, 0, 0, 0, 0, 0},
		{0, 0, 1, 0, 0, 0, 0, 0, 0},
		{0, 0, 0, 0, 0.5, 1, 0, 0, 0},
		{0, 0, 0, 0, -0.2, 0, 1, 0, 0},
		{0, 0, 0, 0, 0.4, 0, 0, 1, 0},
		{0, 0, 0, 0, -0.2, 0, 0, 0, 1},
		{0, 0, 0, 0, 0.08, 0, 0, 0, 0},
	}
	T := sys.dense()
	for i := range want {
		for j := range want[i] {
			if math.Abs(T[i*9+j]-want[i][j]) > 1e-12 {
				t.Errorf("T[%d][%d] = %g, want %g", i, j, T[i*9+j], want[i][j])
			}
		}
	}
	// Reduced MA: (1+0.3L)(1-0.6L^3) = 1 +0.3L -0.6L^3 -0.18L^4
	wantR := []float64{0, 0, 0, 0, 1, 0.3, 0, -0.6, -0.18}
	for i := range wantR {
		if math.Abs(sys.r[i]-wantR[i]) > 1e-12 {
			t.Errorf("R[%d] = %g, want %g", i, sys.r[i], wantR[i])
		}
	}
}

func synth(n int, seed uint64) ([]float64, [][]float64) {
	rng := rand.New(rand.NewPCG(seed, 1))
	y := make([]float64, n)
	x := make([][]float64, n)
	var u, e float64
	for t := range y {
		x[t] = []float64{10 + rng.NormFloat64()}
		ne := rng.NormFloat64()
		u = 0.6*u + ne + 0.3*e
		e = ne
		y[t] = 2*x[t][0] + u
	}
	return y, x
}

func TestFitRecoversTheGeneratingCoefficients(t *testing.T) {
	y, x := synth(2000, 7)
	r, err := Fit(context.Background(), y, x, Order{P: 1, Q: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{2, 0.6, 0.3, 1}
	for i, w := range want {
		if math.Abs(r.Params[i]-w) > 0.1 {
			t.Errorf("%s = %.3f, generated with %.1f", r.ParamNames[i], r.Params[i], w)
		}
	}
}

func TestWarmStartFromAStoredFitReachesTheSameOptimumFaster(t *testing.T) {
	y, x := synth(1500, 3)
	ctx := context.Background()
	o := Order{P: 1, D: 1, Q: 1}
	cold, err := Fit(ctx, y, x, o, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := NewRecord(cold, []string{"x"}, Window{}, time.Now())
	sel, err := Select(ctx, y, x, []Order{o}, rec.WarmStart(o, []string{"x"}))
	if err != nil {
		t.Fatal(err)
	}
	warm := sel.Best
	if math.Abs(warm.LLF-cold.LLF) > 1e-6*math.Abs(cold.LLF) {
		t.Errorf("warm llf %.9g, cold %.9g", warm.LLF, cold.LLF)
	}
	if warm.Iterations >= cold.Iterations {
		t.Errorf("warm start took %d iterations, cold %d", warm.Iterations, cold.Iterations)
	}
	if warm.StartParams[0] != cold.Params[0] {
		t.Errorf("warm fit did not start from the stored parameters")
	}
}

func TestSelectSkipsACandidateThatCannotBeFitted(t *testing.T) {
	y, x := synth(40, 5)
	// (20,0,0) needs more observations than there are: it fails, (1,0,1) fits.
	sel, err := Select(context.Background(), y, x, []Order{{P: 20}, {P: 1, Q: 1}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if sel.Best.Order != (Order{P: 1, Q: 1}) {
		t.Errorf("best %s", sel.Best.Order)
	}
	if !errors.Is(sel.Candidates[0].Err, ErrTooShort) {
		t.Errorf("first candidate error %v, want ErrTooShort", sel.Candidates[0].Err)
	}
	if _, err := Select(context.Background(), y[:5], x[:5], []Order{{P: 20}}, nil); err == nil {
		t.Error("want an error when no candidate fits")
	}
}

func TestSelectStopsWhenTheContextIsCancelled(t *testing.T) {
	y, x := synth(500, 5)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Select(ctx, y, x, nil, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
}

func TestForecastHoldsTheLastExogRowWhenTheFutureIsUnknown(t *testing.T) {
	y, x := synth(300, 9)
	r, err := Fit(context.Background(), y, x, Order{P: 1, Q: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	last := x[len(x)-1]
	held := [][]float64{last, last, last, last, last}
	want, err := r.Forecast(y, x, held, 5)
	if err != nil {
		t.Fatal(err)
	}
	for _, future := range [][][]float64{nil, held[:2]} {
		got, err := r.Forecast(y, x, future, 5)
		if err != nil {
			t.Fatal(err)
		}
		for h := range want.Mean {
			if got.Mean[h] != want.Mean[h] {
				t.Errorf("future %d rows, h=%d: mean %g, want %g", len(future), h+1, got.Mean[h], want.Mean[h])
			}
		}
	}
	for h := 1; h < 5; h++ {
		if want.Variance[h] < want.Variance[h-1] {
			t.Errorf("variance shrinks with the horizon: %v", want.Variance)
		}
		if w := want.Upper95[h] - want.Lower95[h]; math.Abs(w-2*z975*math.Sqrt(want.Variance[h])) > 1e-9 {
			t.Errorf("interval width %g does not match variance %g", w, want.Variance[h])
		}
	}
}

func TestFourierColumnsContinueAcrossTheForecastBoundary(t *testing.T) {
	periods := []float64{86400, 604800}
	const start = int64(1_763_900_000)
	times := []int64{start, start + 3600, start + 86400}
	f := Fourier(times, periods, 2)
	if len(f[0]) != 8 || len(FourierNames(periods, 2)) != 8 {
		t.Fatalf("want 8 columns, got %d", len(f[0]))
	}
	// One day later the daily terms repeat; the weekly ones do not.
	for j := 0; j < 4; j++ {
		if math.Abs(f[0][j]-f[2][j]) > 1e-9 {
			t.Errorf("daily column %d: %g then %g a day later", j, f[0][j], f[2][j])
		}
	}
	if math.Abs(f[0][4]-f[2][4]) < 1e-3 {
		t.Errorf("weekly sine unchanged after a day")
	}
	// Computing the future alone gives the same values as computing it with
	// the history: the columns depend on absolute time only.
	alone := Fourier(times[1:], periods, 2)
	for j := range alone[0] {
		if alone[0][j] != f[1][j] {
			t.Errorf("column %d differs when computed separately", j)
		}
	}
	// sin^2 + cos^2 = 1 for every harmonic.
	for j := 0; j < 8; j += 2 {
		if s := f[1][j]*f[1][j] + f[1][j+1]*f[1][j+1]; math.Abs(s-1) > 1e-12 {
			t.Errorf("harmonic pair %d has norm %g", j/2, s)
		}
	}
}

func TestSelectFourierPicksHarmonicsForADailyCycle(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 2))
	n := 600
	times := make([]int64, n)
	y := make([]float64, n)
	var u float64
	for i := range y {
		times[i] = 1_763_900_000 + int64(i)*600 // 10-minute steps, about four days
		u = 0.5*u + rng.NormFloat64()
		phase := 2 * math.Pi * float64(times[i]%86400) / 86400
		y[i] = 50 + 10*math.Sin(phase) + 4*math.Cos(2*phase) + u
	}
	x := make([][]float64, n)
	for i := range x {
		x[i] = []float64{1} // intercept column, since the model has no trend term
	}
	ch, err := SelectFourier(context.Background(), y, x, times, []float64{86400}, 3, []Order{{P: 1}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ch.K < 2 {
		t.Errorf("chose K=%d for a cycle with two harmonics", ch.K)
	}
}

func TestDemandAppliesTheSeedFormula(t *testing.T) {
	exog := map[string][]float64{
		ExogAvgResponseTime:             {0.2, 0.4},
		ExogQueueWaiting:                {10, 0},
		ExogAuthenticationAwaitingUsers: {5},
	}
	cases := []struct {
		c    DemandCoeffs
		want []float64
	}{
		{DefaultDemandCoeffs(), []float64{100*0.2*0.05 + 10*0.1 + 5*0.2, 50 * 0.4 * 0.05}},
		{DemandCoeffs{ResponseTime: 1}, []float64{20, 20}},
		{DemandCoeffs{Queue: 1, AuthWaiting: 1}, []float64{15, 0}},
	}
	for _, c := range cases {
		got := Demand([]float64{100, 50}, exog, c.c)
		for i := range got {
			if math.Abs(got[i]-c.want[i]) > 1e-12 {
				t.Errorf("%+v: demand %v, want %v", c.c, got, c.want)
			}
		}
	}
}

func TestRecordIsStaleOnlyAfterMaxAge(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		trained time.Time
		maxAge  time.Duration
		want    bool
	}{
		{time.Time{}, time.Hour, true},
		{now.Add(-30 * time.Minute), time.Hour, false},
		{now.Add(-2 * time.Hour), time.Hour, true},
		{now.Add(-2 * time.Hour), 0, false},
	}
	for _, c := range cases {
		if got := (Record{TrainedAt: c.trained}).Stale(now, c.maxAge); got != c.want {
			t.Errorf("trained %v, max age %v: stale %v, want %v", c.trained, c.maxAge, got, c.want)
		}
	}
}

func TestRecordRoundTripsToAForecastingResult(t *testing.T) {
	y, x := synth(300, 13)
	r, err := Fit(context.Background(), y, x, Order{P: 1, D: 1, Q: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := NewRecord(r, []string{"x"}, Window{From: time.Unix(0, 0), To: time.Unix(300, 0)}, time.Now())
	back, err := rec.Result()
	if err != nil {
		t.Fatal(err)
	}
	a, _ := r.Forecast(y, x, nil, 3)
	b, _ := back.Forecast(y, x, nil, 3)
	for h := range a.Mean {
		if a.Mean[h] != b.Mean[h] || a.Variance[h] != b.Variance[h] {
			t.Errorf("h=%d: restored forecast differs", h+1)
		}
	}
	if rec.WarmStart(Order{P: 1, Q: 1}, []string{"x"}) != nil || rec.WarmStart(r.Order, []string{"z"}) != nil {
		t.Error("warm start offered for a different order or exog")
	}
}

func TestFitIgnoresUnusableWarmStarts(t *testing.T) {
	y, x := synth(400, 21)
	ctx := context.Background()
	o := Order{P: 1, Q: 1}
	cold, err := Fit(ctx, y, x, o, nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, start := range map[string][]float64{
		"wrong length":    {2, 0.5},
		"NaN":             {2, math.NaN(), 0.1, 1},
		"negative sigma2": {2, 0.5, 0.1, -1},
		"overflowing AR":  {2, 1e200, 0.1, 1},
	} {
		r, err := Fit(ctx, y, x, o, start)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if math.Abs(r.LLF-cold.LLF) > 1e-6*math.Abs(cold.LLF) {
			t.Errorf("%s: llf %.9g, cold start %.9g", name, r.LLF, cold.LLF)
		}
	}
}

func TestACSVHeaderNamingAColumnTwiceIsRefused(t *testing.T) {
	for _, in := range []string{"y,y\n1,2\n", "y,x,x\n1,2,3\n", "y, x,x \n1,2,3\n"} {
		if _, err := ReadCSV(strings.NewReader(in), true); err == nil || !strings.Contains(err.Error(), "appears twice") {
			t.Errorf("%q: err %v, want the repeated column named", in, err)
		}
	}
	if _, err := ReadCSV(strings.NewReader("y,x,z\n1,2,3\n"), true); err != nil {
		t.Errorf("distinct columns: %v", err)
	}
}
