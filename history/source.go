package history

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

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
	// TimesCount asks for the group's total of a per-replica metric: the
	// value times the group's current count (see GroupTotals).
	TimesCount bool `json:"times_count,omitempty"`
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

// GroupCounter reads a task group's current count, the count
// nomad-autoscaler hands its strategies.
type GroupCounter interface {
	GroupCount(ctx context.Context, namespace, job, group string) (int, error)
}

// GroupTotals answers a query with TimesCount as Inner's value times the
// group's current count, and any other query as Inner does. A count of 0
// counts as 1, as nomad-autoscaler's target-value plugin does: it then
// reads the metric as one replica's.
type GroupTotals struct {
	Inner  Source
	Counts GroupCounter
}

// Sample implements Source.
func (g GroupTotals) Sample(ctx context.Context, q Query) (float64, error) {
	v, err := g.Inner.Sample(ctx, q)
	if err != nil || !q.TimesCount {
		return v, err
	}
	n, err := g.factor(ctx, q)
	return v * n, err
}

// factor is what a marked query's values are multiplied by: the group's
// count, 0 read as 1.
func (g GroupTotals) factor(ctx context.Context, q Query) (float64, error) {
	n, err := g.Counts.GroupCount(ctx, q.Namespace, q.Job, q.Group)
	if err != nil {
		return 0, fmt.Errorf("count of %s/%s: %w", q.Job, q.Group, err)
	}
	return float64(max(n, 1)), nil
}

var (
	_ BatchSource = GroupTotals{}
	_ RangeSource = GroupTotals{}
)

// SampleBatch implements BatchSource through Inner's batching (or one
// Sample per query when Inner cannot batch), then multiplies the marked
// queries' values by their group's count: wrapping a batching source must
// not undo its batching.
func (g GroupTotals) SampleBatch(ctx context.Context, qs []Query, concurrency int) []Result {
	var res []Result
	if bs, ok := g.Inner.(BatchSource); ok {
		res = bs.SampleBatch(ctx, qs, concurrency)
	} else {
		res = make([]Result, len(qs))
		for i, q := range qs {
			res[i].V, res[i].Err = g.Inner.Sample(ctx, q)
		}
	}
	for i, q := range qs {
		if res[i].Err != nil || !q.TimesCount {
			continue
		}
		n, err := g.factor(ctx, q)
		if err != nil {
			res[i] = Result{Err: err}
			continue
		}
		res[i].V *= n
	}
	return res
}

// SampleRange implements RangeSource through Inner's, so missed samples
// and gained series' windows are back-filled. A marked query's past
// values are multiplied by the group's count now: the count at each past
// second is not recorded, so a gained target-value check's back-filled
// window has today's count throughout.
func (g GroupTotals) SampleRange(ctx context.Context, qs []Query, from, to time.Time, step time.Duration) []RangeResult {
	rs, ok := g.Inner.(RangeSource)
	if !ok {
		out := make([]RangeResult, len(qs))
		for i := range out {
			out[i].Err = ErrNoRange
		}
		return out
	}
	res := rs.SampleRange(ctx, qs, from, to, step)
	for i, q := range qs {
		if res[i].Err != nil || !q.TimesCount {
			continue
		}
		n, err := g.factor(ctx, q)
		if err != nil {
			res[i] = RangeResult{Err: err}
			continue
		}
		for j := range res[i].Points {
			res[i].Points[j].V *= n
		}
	}
	return res
}
