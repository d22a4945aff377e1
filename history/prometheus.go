package history

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// Prometheus answers PromQL instant queries evaluated at the time of the
// call.
type Prometheus struct {
	api promv1.API
	log *slog.Logger
	now func() time.Time
}

// NewPrometheus connects to the Prometheus HTTP API at address
// (e.g. http://127.0.0.1:9090).
func NewPrometheus(address string, log *slog.Logger) (*Prometheus, error) {
	if address == "" {
		return nil, fmt.Errorf("prometheus address is empty")
	}
	c, err := promapi.NewClient(promapi.Config{Address: address})
	if err != nil {
		return nil, fmt.Errorf("prometheus client: %w", err)
	}
	if log == nil {
		log = slog.Default()
	}
	return &Prometheus{api: promv1.NewAPI(c), log: log, now: time.Now}, nil
}

// Sample evaluates q.Query at now. A scalar or a one-element vector is the
// value; an empty vector is ErrNoData; several elements are an error, as in
// nomad-autoscaler's prometheus plugin, because silently summing or picking
// one would hide a query that matches more series than its author meant
// (wrap it in sum() to aggregate).
func (p *Prometheus) Sample(ctx context.Context, q Query) (float64, error) {
	if q.Query == "" {
		return 0, fmt.Errorf("prometheus: empty query")
	}
	res, warnings, err := p.api.Query(ctx, q.Query, p.now())
	if err != nil {
		return 0, fmt.Errorf("prometheus query %q: %w", q.Query, err)
	}
	for _, w := range warnings {
		p.log.Debug("prometheus query warning", "query", q.Query, "warning", w)
	}
	v, err := promValue(res)
	if err != nil {
		return 0, fmt.Errorf("prometheus query %q: %w", q.Query, err)
	}
	return v, nil
}

// promValue reduces an instant-query result to one number.
func promValue(res model.Value) (float64, error) {
	switch r := res.(type) {
	case *model.Scalar:
		if r == nil {
			return 0, ErrNoData
		}
		return finite(float64(r.Value))
	case model.Vector:
		switch len(r) {
		case 0:
			return 0, ErrNoData
		case 1:
			return finite(float64(r[0].Value))
		default:
			return 0, fmt.Errorf("result has %d series, want 1 (aggregate with sum or avg)", len(r))
		}
	case nil:
		return 0, ErrNoData
	default:
		return 0, fmt.Errorf("result type %s is not supported, want a scalar or an instant vector", res.Type())
	}
}
