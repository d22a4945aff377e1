package history

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"

	nomadapi "github.com/hashicorp/nomad/api"
)

// ErrNoData means a source answered but had nothing to measure: an empty
// Prometheus result or a group without running allocations.
var ErrNoData = errors.New("no data")

// Query names one metric of one policy: which source answers it, the
// source-specific query text, and the task group it is about.
type Query struct {
	Source    string `json:"source"`
	Query     string `json:"query"`
	Namespace string `json:"namespace"`
	Job       string `json:"job"`
	Group     string `json:"group"`
}

// Source turns a query into the current value of a metric.
type Source interface {
	Sample(ctx context.Context, q Query) (float64, error)
}

// Source names used in policies.
const (
	SourceNomadAPM   = "nomad-apm"
	SourcePrometheus = "prometheus"
)

// Sources dispatches a query to the source its Source field names.
type Sources map[string]Source

// Sample asks the named source; an unknown name is an error, not a panic,
// because policies come from users.
func (s Sources) Sample(ctx context.Context, q Query) (float64, error) {
	src, ok := s[q.Source]
	if !ok || src == nil {
		if q.Source == SourcePrometheus || q.Source == SourceNomadAPM {
			return 0, fmt.Errorf("metric source %q is not configured", q.Source)
		}
		return 0, fmt.Errorf("unknown metric source %q", q.Source)
	}
	return src.Sample(ctx, q)
}

// NewSources builds the registry the daemon uses: nomad-apm through
// nomadClient, and prometheus at prometheusAddr when that is set.
func NewSources(nomadClient *nomadapi.Client, prometheusAddr string, log *slog.Logger) (Sources, error) {
	s := Sources{SourceNomadAPM: NewNomadAPM(nomadClient)}
	if prometheusAddr != "" {
		p, err := NewPrometheus(prometheusAddr, log)
		if err != nil {
			return nil, err
		}
		s[SourcePrometheus] = p
	}
	return s, nil
}

// finite rejects NaN and ±Inf: they would poison rollups and model fits.
func finite(v float64) (float64, error) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("value %v is not a finite number", v)
	}
	return v, nil
}
