package nodepool

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the pool controller's Prometheus series. A nil *Metrics
// records nothing.
type Metrics struct {
	nodes    *prometheus.GaugeVec
	headroom *prometheus.GaugeVec
	drains   *prometheus.CounterVec
	scaleOut *prometheus.CounterVec
}

// NewMetrics registers the series on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		nodes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "nomadscaler_pool_nodes", Help: "Nodes in the pool that are not down.",
		}, []string{"pool"}),
		headroom: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "nomadscaler_pool_headroom_units", Help: "Headroom units of the pool: free on schedulable nodes, and required.",
		}, []string{"pool", "kind"}),
		drains: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nomadscaler_node_drains_total", Help: "Node drains started by nomadscalerd.",
		}, []string{"pool"}),
		scaleOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nomadscaler_pool_scale_out_total", Help: "Nodes requested from the provider, by reason (headroom, min, blocked).",
		}, []string{"pool", "reason"}),
	}
	for _, c := range []prometheus.Collector{m.nodes, m.headroom, m.drains, m.scaleOut} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register nodepool metrics: %w", err)
		}
	}
	return m, nil
}

func (m *Metrics) observe(d Decision) {
	if m == nil {
		return
	}
	m.nodes.WithLabelValues(d.Pool).Set(float64(d.Nodes))
	m.headroom.WithLabelValues(d.Pool, "free").Set(float64(d.Headroom.Free))
	m.headroom.WithLabelValues(d.Pool, "required").Set(float64(d.Headroom.Required))
}

func (m *Metrics) drained(pool string) {
	if m != nil {
		m.drains.WithLabelValues(pool).Inc()
	}
}

func (m *Metrics) scaledOut(pool, reason string, n int) {
	if m != nil {
		m.scaleOut.WithLabelValues(pool, reason).Add(float64(n))
	}
}
