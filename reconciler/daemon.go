package reconciler

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/nomadscalerd/nomadscalerd/history"
	"github.com/nomadscalerd/nomadscalerd/migrations"
	"github.com/nomadscalerd/nomadscalerd/model"
	"github.com/nomadscalerd/nomadscalerd/optimize"
	"github.com/nomadscalerd/nomadscalerd/store"
)

// This file builds what the daemon hands the reconciler and the recorder
// for each policy: its demand, its stored forecaster, the recorder's
// targets and the freshness of its metrics.

// SeedDemand applies the seed's demand formula when the policy records
// avg_response_time; the exogenous checks are unknown in the future, so
// their latest values are held over the horizon. Without that check the
// demand is the request-rate forecast itself.
func SeedDemand(p Policy, requests []float64, latest map[string]float64) []float64 {
	if _, ok := latest[model.ExogAvgResponseTime]; !ok {
		return requests
	}
	exog := map[string][]float64{}
	for _, name := range model.ExogNames() {
		if v, ok := latest[name]; ok {
			col := make([]float64, len(requests))
			for i := range col {
				col[i] = v
			}
			exog[name] = col
		}
	}
	return model.Demand(requests, exog, model.DemandCoeffs{ResponseTime: p.Target.DemandResponseTime, Queue: p.Target.DemandQueue, AuthWaiting: p.Target.DemandAuthWaiting})
}

// RecordTargets lists every check of every active policy for the recorder.
func RecordTargets(ps []Policy) []history.Target {
	var out []history.Target
	for _, p := range ps {
		for _, c := range p.Checks {
			out = append(out, history.Target{Series: store.SeriesName(p.Key, c.Name),
				Query:  history.Query{Source: c.Source, Query: c.Query, Namespace: p.Namespace, Job: p.Job, Group: p.Group, TimesCount: c.TargetValue > 0},
				Window: p.Target.HistoryWindow})
		}
	}
	return out
}

// RecorderFreshness answers from the recorder, and before its first tick after a
// restart from the last stored point, so a restart is not mistaken for
// stale metrics.
type RecorderFreshness struct {
	Recorder *history.Recorder
	DB       *store.DB
}

var _ Freshness = RecorderFreshness{}

// LastSample implements Freshness.
func (f RecorderFreshness) LastSample(series string) (time.Time, bool) {
	if t, _, ok := f.Recorder.LastSample(series); ok {
		return t, true
	}
	pts, err := f.DB.Range(series, time.Now().Add(-time.Hour), time.Time{})
	if err != nil || len(pts) == 0 {
		return time.Time{}, false
	}
	return pts[len(pts)-1].T, true
}

// NewStoredForecaster is the policy's SARIMAX forecaster with its settings: the
// same model.Forecaster the backtest measures. Each fit is stored per policy
// in bbolt; after a restart a stored fit of the same model settings younger
// than refit_interval forecasts at once (no fit), and an older one
// warm-starts the first fit.
func NewStoredForecaster(p Policy, db *store.DB, m *Metrics, log *slog.Logger) optimize.Forecaster {
	cfg := p.ForecastConfig()
	cfg.Settings = p.modelSettings()
	f := model.NewForecaster(cfg, time.Now)
	f.OnFallback = func(err error) {
		log.Debug("no model fits the history; forecasting its recent level", "policy", p.Key, "err", err)
	}
	var stored model.Record
	if err := db.GetJSON(migrations.BucketFits, p.Key, &stored); err == nil && f.Resume(stored) {
		log.Debug("forecasting from the stored model fit", "policy", p.Key, "order", stored.Order.String(), "trained_at", stored.TrainedAt)
	}
	f.OnFit = func(r model.Record) {
		m.Fitted(r.SelectDuration)
		if err := db.PutJSON(migrations.BucketFits, p.Key, r); err != nil {
			log.Error("store model fit", "policy", p.Key, "err", err)
		}
		log.Info("model fitted", "policy", p.Key, "order", r.Order.String(), "aic", r.AIC, "nobs", r.NObs, "took", r.FitDuration)
	}
	return f
}

// modelSettings names what a fit of p's model means: the series it reads
// and the model's form (a fit of another model_step, query or set of
// regressors must not be resumed). Self-tuning changes model_step, so a
// tuned policy resumes only a fit of its tuned step.
func (p Policy) modelSettings() string {
	t := p.Target
	var source, query string
	for _, c := range p.Checks {
		if c.Name == t.RequestsCheck {
			source, query = c.Source, c.Query
		}
	}
	events := make([]string, 0, len(t.Events))
	for _, e := range t.Events {
		events = append(events, fmt.Sprintf("%q %q %s", e.Name, e.Cron, e.Duration))
	}
	return fmt.Sprintf("v1 check=%q %q %q step=%s sqrt=%t orders=%q seasonality=%v fourier=%d events=%q",
		t.RequestsCheck, source, query, t.ModelStep, t.SqrtTransform, t.Orders, t.Seasonality, t.FourierTerms, events)
}
