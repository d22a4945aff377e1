package model

import (
	"fmt"
	"time"
)

// Window is the span of history a model was fitted on.
type Window struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

// Record is the persistent, JSON-serialisable form of a fitted model: enough
// to forecast again (with the history) and to warm-start the next fit.
type Record struct {
	Order         Order     `json:"order"`
	ParamNames    []string  `json:"param_names"`
	Params        []float64 `json:"params"`
	LLF           float64   `json:"llf"`
	AIC           float64   `json:"aic"`
	NObs          int       `json:"nobs"`
	NObsEffective int       `json:"nobs_effective"`
	Converged     bool      `json:"converged"`
	ExogNames     []string  `json:"exog_names"`
	FourierK      int       `json:"fourier_k,omitempty"`
	FourierPeriod []float64 `json:"fourier_periods,omitempty"`
	Window        Window    `json:"window"`
	TrainedAt     time.Time `json:"trained_at"`
	// Settings is what the parameters mean, as the forecaster's
	// ForecastConfig.Settings described its model when it fitted them: a
	// record resumes only a forecaster of the same settings.
	Settings    string        `json:"settings,omitempty"`
	FitDuration time.Duration `json:"fit_duration_ns"`
	// SelectDuration is the time every candidate order's fit took
	// together (they run concurrently: CPU time, not wall time).
	SelectDuration time.Duration `json:"select_duration_ns,omitempty"`
}

// NewRecord captures a fitted result. exogNames names the exog columns the
// result was fitted with (including any Fourier columns).
func NewRecord(r *Result, exogNames []string, w Window, trainedAt time.Time) Record {
	return Record{
		Order:         r.Order,
		ParamNames:    append([]string(nil), r.ParamNames...),
		Params:        append([]float64(nil), r.Params...),
		LLF:           r.LLF,
		AIC:           r.AIC,
		NObs:          r.NObs,
		NObsEffective: r.NObsEffective,
		Converged:     r.Converged,
		ExogNames:     append([]string(nil), exogNames...),
		Window:        w,
		TrainedAt:     trainedAt,
		FitDuration:   r.FitDuration,
	}
}

// Stale reports whether the record is older than maxAge at now, or was
// never trained. A non-positive maxAge means records never go stale.
func (r Record) Stale(now time.Time, maxAge time.Duration) bool {
	if r.TrainedAt.IsZero() {
		return true
	}
	if maxAge <= 0 {
		return false
	}
	return now.Sub(r.TrainedAt) > maxAge
}

// WarmStart returns the record's parameters keyed for Select's warm map,
// when they fit the given order and exog columns; nil otherwise.
func (r Record) WarmStart(o Order, exogNames []string) map[string][]float64 {
	if r.Order != o || len(exogNames) != len(r.ExogNames) {
		return nil
	}
	for i := range exogNames {
		if exogNames[i] != r.ExogNames[i] {
			return nil
		}
	}
	return map[string][]float64{o.String(): append([]float64(nil), r.Params...)}
}

// Result rebuilds a forecasting-capable result from the record.
func (r Record) Result() (*Result, error) {
	s := newSpec(r.Order, len(r.ExogNames))
	if len(r.Params) != s.nParams() {
		return nil, fmt.Errorf("record for order %s with %d exog columns has %d parameters, want %d", r.Order, len(r.ExogNames), len(r.Params), s.nParams())
	}
	return &Result{
		Order: r.Order, ParamNames: r.ParamNames, Params: r.Params,
		LLF: r.LLF, AIC: r.AIC, NObs: r.NObs, NObsEffective: r.NObsEffective,
		Converged: r.Converged, FitDuration: r.FitDuration, spec: s,
	}, nil
}
