package model

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
)

// Candidate is the outcome of fitting one order.
type Candidate struct {
	Order  Order
	Result *Result // nil when the fit failed
	Err    error
}

// Selection is the outcome of fitting all candidate orders.
type Selection struct {
	Best       *Result
	Candidates []Candidate // in the order given
}

// Select fits every candidate order concurrently and picks the minimum AIC
// (the earlier candidate wins an exact tie). A candidate that fails is
// recorded and skipped; Select fails only when none fits. warm maps
// Order.String() to starting parameters from a previous fit of that order.
func Select(ctx context.Context, y []float64, exog [][]float64, cands []Order, warm map[string][]float64) (*Selection, error) {
	if len(cands) == 0 {
		cands = DefaultOrders()
	}
	sel := &Selection{Candidates: make([]Candidate, len(cands))}
	sem := make(chan struct{}, max(1, runtime.GOMAXPROCS(0)))
	var wg sync.WaitGroup
	for i, o := range cands {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				sel.Candidates[i] = Candidate{Order: o, Err: ctx.Err()}
				return
			}
			defer func() { <-sem }()
			r, err := Fit(ctx, y, exog, o, warm[o.String()])
			sel.Candidates[i] = Candidate{Order: o, Result: r, Err: err}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var errs []error
	for _, c := range sel.Candidates {
		if c.Err != nil {
			errs = append(errs, fmt.Errorf("order %s: %w", c.Order, c.Err))
			continue
		}
		if sel.Best == nil || c.Result.AIC < sel.Best.AIC {
			sel.Best = c.Result
		}
	}
	if sel.Best == nil {
		return nil, fmt.Errorf("no candidate order could be fitted: %w", errors.Join(errs...))
	}
	return sel, nil
}
