package reconciler

import (
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
// in bbolt, and a stored fit warm-starts the first fit after a restart.
func NewStoredForecaster(p Policy, db *store.DB, m *Metrics, log *slog.Logger) optimize.Forecaster {
	f := model.NewForecaster(p.Target.ForecastConfig(), time.Now)
	f.OnFallback = func(err error) {
		log.Debug("no model fits the history; forecasting its recent level", "policy", p.Key, "err", err)
	}
	var stored model.Record
	if err := db.GetJSON(migrations.BucketFits, p.Key, &stored); err == nil {
		f.Seed(stored)
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
