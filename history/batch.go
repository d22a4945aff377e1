package history

import (
	"context"
	"sync"

	"golang.org/x/sync/errgroup"
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
