package reconciler

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the reconciler's Prometheus series. A nil *Metrics records
// nothing, so tests need not build one.
type Metrics struct {
	evaluations *prometheus.CounterVec
	actions     *prometheus.CounterVec
	duration    prometheus.Histogram
	eventLag    prometheus.Histogram
	policies    *prometheus.GaugeVec
	leader      prometheus.Gauge
	planErrors  *prometheus.CounterVec
	invalid     prometheus.Counter
	forecast    *prometheus.GaugeVec
	observed    *prometheus.GaugeVec
	planned     *prometheus.GaugeVec
	desired     *prometheus.GaugeVec
	fits        prometheus.Counter
	fitSeconds  prometheus.Counter
}

// NewMetrics registers the reconciler's metrics on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		evaluations: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "nomadscaler_policy_evaluation_total",
			Help: "Policy reconciles, by policy and outcome (none, scale, dry_run, cooldown, blocked, error, conservative)."}, []string{"policy", "outcome"}),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "nomadscaler_scaling_actions_total",
			Help: "Scaling calls to Nomad, by direction (up, down) and outcome (success, dry_run, blocked, error)."}, []string{"direction", "outcome"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "nomadscaler_policy_evaluation_duration_seconds",
			Help: "Time one policy reconcile takes.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
		eventLag: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "nomadscaler_event_lag_seconds",
			Help: "From a Nomad event's arrival to the start of the reconcile it triggers.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
		policies: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "nomadscaler_policies",
			Help: "Scaling policies known, by state (active, disabled, invalid)."}, []string{"state"}),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{Name: "nomadscaler_leader",
			Help: "1 when this replica leads and may scale."}),
		planErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "nomadscaler_plan_failures_total",
			Help: "Plans that could not be produced; the cached plan kept being served."}, []string{"policy"}),
		invalid: prometheus.NewCounter(prometheus.CounterOpts{Name: "nomadscaler_invalid_policies_total",
			Help: "Times a malformed policy was reported and skipped."}),
		forecast: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "nomadscaler_forecast_requests",
			Help: "The latest plan's forecast of the requests check for its first second."}, []string{"policy"}),
		observed: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "nomadscaler_observed_requests",
			Help: "The requests check's latest recorded value when the latest plan was made."}, []string{"policy"}),
		planned: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "nomadscaler_planned_replicas",
			Help: "The count the plan wants now (after bounds and conservative mode)."}, []string{"policy"}),
		desired: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "nomadscaler_desired_replicas",
			Help: "Nomad's desired count of the group at the latest reconcile."}, []string{"policy"}),
		fits: prometheus.NewCounter(prometheus.CounterOpts{Name: "nomadscaler_model_fits_total",
			Help: "Forecasting models fitted (each policy's first plan, every refit_interval, and when demand keeps leaving the forecast band)."}),
		fitSeconds: prometheus.NewCounter(prometheus.CounterOpts{Name: "nomadscaler_model_fit_seconds_total",
			Help: "Time spent fitting forecasting models: most of a busy daemon's CPU."}),
	}
	for _, c := range []prometheus.Collector{m.evaluations, m.actions, m.duration, m.eventLag, m.policies, m.leader, m.planErrors, m.invalid,
		m.forecast, m.observed, m.planned, m.desired, m.fits, m.fitSeconds} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Metrics) evaluated(policy, outcome string, d time.Duration) {
	if m == nil {
		return
	}
	m.evaluations.WithLabelValues(policy, outcome).Inc()
	m.duration.Observe(d.Seconds())
}

func (m *Metrics) action(direction, outcome string) {
	if m == nil {
		return
	}
	m.actions.WithLabelValues(direction, outcome).Inc()
}

func (m *Metrics) planFailed(policy string) {
	if m == nil {
		return
	}
	m.planErrors.WithLabelValues(policy).Inc()
}

// Fitted counts a model fit that took d.
func (m *Metrics) Fitted(d time.Duration) {
	if m == nil {
		return
	}
	m.fits.Inc()
	m.fitSeconds.Add(d.Seconds())
}

func (m *Metrics) lag(d time.Duration) {
	if m == nil {
		return
	}
	m.eventLag.Observe(d.Seconds())
}

func (m *Metrics) setPolicies(active, disabled, invalid int) {
	if m == nil {
		return
	}
	m.policies.WithLabelValues("active").Set(float64(active))
	m.policies.WithLabelValues("disabled").Set(float64(disabled))
	m.policies.WithLabelValues("invalid").Set(float64(invalid))
}

func (m *Metrics) invalidPolicy() {
	if m == nil {
		return
	}
	m.invalid.Inc()
}

// SetLeader records leadership.
func (m *Metrics) SetLeader(leader bool) {
	if m == nil {
		return
	}
	v := 0.0
	if leader {
		v = 1
	}
	m.leader.Set(v)
}

func (m *Metrics) counts(policy string, desired, planned int) {
	if m == nil {
		return
	}
	m.desired.WithLabelValues(policy).Set(float64(desired))
	m.planned.WithLabelValues(policy).Set(float64(planned))
}

func (m *Metrics) forecasted(policy string, next, observed float64) {
	if m == nil {
		return
	}
	m.forecast.WithLabelValues(policy).Set(next)
	m.observed.WithLabelValues(policy).Set(observed)
}

// forgetForecast drops a policy's forecast and observed gauges, the ones
// its plans set.
func (m *Metrics) forgetForecast(policy string) {
	if m == nil {
		return
	}
	m.forecast.DeleteLabelValues(policy)
	m.observed.DeleteLabelValues(policy)
}

// forget drops a removed policy's series, so /metrics stops reporting it.
func (m *Metrics) forget(policy string) {
	if m == nil {
		return
	}
	for _, g := range []*prometheus.GaugeVec{m.forecast, m.observed, m.planned, m.desired} {
		g.DeleteLabelValues(policy)
	}
	m.planErrors.DeleteLabelValues(policy)
	m.evaluations.DeletePartialMatch(prometheus.Labels{"policy": policy})
}
