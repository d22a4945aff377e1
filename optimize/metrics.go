package optimize

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the optimizer's Prometheus series, under the seed's names.
// A nil *Metrics records nothing, so tests and offline tools can pass nil.
type Metrics struct {
	predictions         prometheus.Counter
	forecastLatency     prometheus.Histogram
	optimizationLatency prometheus.Histogram
	errors              prometheus.Counter
	fallbacks           *prometheus.CounterVec
}

// Fallback reasons, the values of optimizer_fallbacks_total{reason}.
const (
	FallbackIncumbent     = "highs_incumbent" // HiGHS hit its time limit; its best feasible plan is used
	FallbackDP            = "dp"              // HiGHS gave no plan; the dynamic program is used
	FallbackInterpolation = "interpolation"   // no exact solver gave a plan; the seed's straight line is used
)

// NewMetrics creates the optimizer's metrics and registers them on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	// Latencies span sub-millisecond DP solves to multi-second MILPs.
	buckets := prometheus.ExponentialBuckets(0.0001, 4, 10)
	m := &Metrics{
		predictions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "optimizer_predictions_total",
			Help: "Plans produced by the optimizer.",
		}),
		forecastLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "optimizer_forecast_latency_seconds",
			Help:    "Time spent forecasting demand for one plan.",
			Buckets: buckets,
		}),
		optimizationLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "optimizer_optimization_latency_seconds",
			Help:    "Time spent solving for one plan, fallbacks included.",
			Buckets: buckets,
		}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "optimizer_errors_total",
			Help: "Plan requests that failed.",
		}),
		fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "optimizer_fallbacks_total",
			Help: "Plans produced by a fallback instead of the primary solver, by fallback used.",
		}, []string{"reason"}),
	}
	for _, c := range []prometheus.Collector{m.predictions, m.forecastLatency, m.optimizationLatency, m.errors, m.fallbacks} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register optimizer metrics: %w", err)
		}
	}
	// Pre-create every reason so dashboards see zeros rather than gaps.
	for _, r := range []string{FallbackIncumbent, FallbackDP, FallbackInterpolation} {
		m.fallbacks.WithLabelValues(r)
	}
	return m, nil
}

func (m *Metrics) prediction() {
	if m != nil {
		m.predictions.Inc()
	}
}

func (m *Metrics) failed() {
	if m != nil {
		m.errors.Inc()
	}
}

func (m *Metrics) fallback(reason string) {
	if m != nil {
		m.fallbacks.WithLabelValues(reason).Inc()
	}
}

func (m *Metrics) forecastTook(seconds float64) {
	if m != nil {
		m.forecastLatency.Observe(seconds)
	}
}

func (m *Metrics) optimizationTook(seconds float64) {
	if m != nil {
		m.optimizationLatency.Observe(seconds)
	}
}
