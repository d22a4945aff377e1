package history

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/nomadscalerd/nomadscalerd/store"
)

// Result is one query's outcome in a batch.
type Result struct {
	V   float64
	Err error
}

// BatchSource samples many queries in one go, so a tick costs a number of
// requests that does not grow one for one with the checks. The recorder
// asks a source that implements it once per tick with every query.
type BatchSource interface {
	SampleBatch(ctx context.Context, qs []Query, concurrency int) []Result
}

var (
	_ BatchSource = Sources(nil)
	_ BatchSource = (*Prometheus)(nil)
	_ BatchSource = (*NomadAPM)(nil)
)

// SampleBatch hands each source its queries at once: batch-capable
// sources answer them together, the others one by one, at most
// concurrency at a time.
func (s Sources) SampleBatch(ctx context.Context, qs []Query, concurrency int) []Result {
	out := make([]Result, len(qs))
	bySource := map[string][]int{}
	for i, q := range qs {
		bySource[q.Source] = append(bySource[q.Source], i)
	}
	var wg sync.WaitGroup
	for name, idx := range bySource {
		sub := make([]Query, len(idx))
		for j, i := range idx {
			sub[j] = qs[i]
		}
		wg.Go(func() {
			var res []Result
			if bs, ok := s[name].(BatchSource); ok {
				res = bs.SampleBatch(ctx, sub, concurrency)
			} else {
				res = sampleEach(ctx, s, sub, concurrency)
			}
			for j, i := range idx {
				out[i] = res[j]
			}
		})
	}
	wg.Wait()
	return out
}

// sampleEach samples one query at a time per goroutine, at most
// concurrency at once.
func sampleEach(ctx context.Context, src Source, qs []Query, concurrency int) []Result {
	out := make([]Result, len(qs))
	var g errgroup.Group
	g.SetLimit(max(concurrency, 1))
	for i, q := range qs {
		g.Go(func() error {
			v, err := src.Sample(ctx, q)
			out[i] = Result{V: v, Err: err}
			return nil
		})
	}
	_ = g.Wait()
	return out
}

// RangeResult is one query's points over a range.
type RangeResult struct {
	Points []store.Sample
	Err    error
}

// RangeSource evaluates queries over a past range at a fixed step: what
// the recorder back-fills missed samples from.
type RangeSource interface {
	SampleRange(ctx context.Context, qs []Query, from, to time.Time, step time.Duration) []RangeResult
}

var (
	_ RangeSource = Sources(nil)
	_ RangeSource = (*Prometheus)(nil)
)

// SampleRange hands range queries to the sources that answer them; the
// others (nomad-apm has no past) fail with ErrNoRange.
func (s Sources) SampleRange(ctx context.Context, qs []Query, from, to time.Time, step time.Duration) []RangeResult {
	out := make([]RangeResult, len(qs))
	bySource := map[string][]int{}
	for i, q := range qs {
		bySource[q.Source] = append(bySource[q.Source], i)
	}
	for name, idx := range bySource {
		rs, ok := s[name].(RangeSource)
		if !ok {
			for _, i := range idx {
				out[i].Err = fmt.Errorf("source %q: %w", name, ErrNoRange)
			}
			continue
		}
		sub := make([]Query, len(idx))
		for j, i := range idx {
			sub[j] = qs[i]
		}
		for j, r := range rs.SampleRange(ctx, sub, from, to, step) {
			out[idx[j]] = r
		}
	}
	return out
}

// ErrNoRange means a source cannot say what a metric was in the past.
var ErrNoRange = errors.New("source cannot evaluate past ranges")
