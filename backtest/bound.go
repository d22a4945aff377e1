package backtest

import (
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"

	"gonum.org/v1/gonum/stat/distuv"
)

// RateBound is what no strategy can beat on a trace drawn, second by
// second, from a known rate (the synthetic traces): a strategy that knew
// every future second's rate, though not the count drawn from it, and
// asked for each second's replicas in time. Any real strategy knows less
// (a forecast, a window of the past), and whatever count it asks for is
// fixed before the second's count is drawn, so its expected unmet
// requests in that second are the draw's expected shortfall below the
// count's capacity. Summed over seconds, for every price y >= 0 of an
// unmet request,
//
//	E[replica-seconds] + y E[unmet] >= sum over t of min over k of (k + y s_t(k))
//
// where s_t(k) is second t's expected shortfall with k replicas. Scaling
// actions only add to a real strategy's cost, so the bounds below hold for
// every strategy in expectation; one replay's draws scatter around them.
type RateBound struct {
	cost CostModel
	min  int         // the fewest replicas (the policy's min)
	s    [][]float64 // s[t][i]: expected shortfall with min+i replicas
	busy []float64   // P(a request in second t): what an empty second costs
}

// NewRateBound tabulates the expected shortfalls of rate's seconds, drawn
// as the synthetic traces draw them (see poisson) and multiplied by scale,
// for counts between cfg's Min and Max of cfg.Capacity requests/s each,
// priced by cfg.Cost.
func NewRateBound(rate []float64, scale float64, cfg Config) (*RateBound, error) {
	if cfg.Capacity <= 0 || scale <= 0 || cfg.Min < 0 || cfg.Max < cfg.Min || cfg.Max < 1 {
		return nil, fmt.Errorf("rate bound: capacity %g, scale %g, replicas %d-%d: want capacity and scale above 0 and 0 <= min <= max, max >= 1",
			cfg.Capacity, scale, cfg.Min, cfg.Max)
	}
	// Each second holds a shortfall for every count from Min up to the
	// first that leaves none: bound the whole before allocating it.
	states := 0
	for _, l := range rate {
		top := (math.Max(l, 0) + 9*math.Sqrt(math.Max(l, 0)) + 2) * scale / cfg.Capacity
		states += min(cfg.Max, int(math.Ceil(top))+1) - cfg.Min + 1
		if states > maxBoundStates {
			return nil, fmt.Errorf("rate bound: over %d counts to tabulate for %d seconds up to %d replicas: %w", maxBoundStates, len(rate), cfg.Max, ErrBoundTooLarge)
		}
	}
	b := &RateBound{cost: cfg.Cost, min: cfg.Min, s: make([][]float64, len(rate)), busy: make([]float64, len(rate))}
	var pmf, tail, mass []float64
	for t, l := range rate {
		pmf = drawPMF(pmf[:0], l)
		// tail[j] and mass[j]: P(X >= j) and E[X; X >= j], X the draw.
		n := len(pmf)
		tail, mass = slices.Grow(tail[:0], n+1)[:n+1], slices.Grow(mass[:0], n+1)[:n+1]
		tail[n], mass[n] = 0, 0
		for j := n - 1; j >= 0; j-- {
			tail[j] = tail[j+1] + pmf[j]
			mass[j] = mass[j+1] + float64(j)*pmf[j]
		}
		b.busy[t] = 1 - pmf[0]
		var row []float64
		for k := cfg.Min; k <= cfg.Max; k++ {
			// Scaled demand scale*X is short of capacity c while X is
			// short of c/scale.
			c := float64(k) * cfg.Capacity / scale
			j := int(math.Floor(c)) + 1
			if j >= n {
				row = append(row, 0)
				break
			}
			row = append(row, scale*math.Max(0, mass[j]-c*tail[j]))
		}
		b.s[t] = row
	}
	return b, nil
}

// maxBoundStates bounds a RateBound's table (8 bytes a count and second):
// a week at 20 counts a second is 12 M.
const maxBoundStates = 25_000_000

// ErrBoundTooLarge is returned by NewRateBound for a replay whose table
// would exceed maxBoundStates: a long replay, a large scale or a high max.
var ErrBoundTooLarge = errors.New("the bound's table would be too large")

// drawPMF is the distribution of poisson(rng, lambda) over 0, 1, ...,
// until what is left is negligible (below 1e-15): Poisson up to a mean of 30,
// the rounded normal above, as the generator draws them.
func drawPMF(out []float64, lambda float64) []float64 {
	switch {
	case lambda <= 0:
		return append(out, 1)
	case lambda <= 30:
		p := math.Exp(-lambda)
		for j := 0; ; j++ {
			if j > 0 {
				p *= lambda / float64(j)
			}
			out = append(out, p)
			// Past the mean the terms fall faster than geometrically, so
			// a negligible term ends a negligible tail (a sum's rounding
			// may never bring 1-cum under any bound).
			if float64(j) > lambda && p < 1e-16 {
				return out
			}
		}
	}
	sd := math.Sqrt(lambda)
	n := distuv.Normal{Mu: lambda, Sigma: sd}
	prev := 0.0
	// Nine standard deviations above the mean the tail is below 1e-18.
	for j := 0; float64(j) <= lambda+9*sd; j++ {
		f := n.CDF(float64(j) + 0.5)
		out = append(out, f-prev)
		prev = f
	}
	return out
}

// lagrange is sum over t of min over k of (a k + y s_t(k) + e [k = 0]
// P(X_t > 0)) and, at each second's minimiser, the replica-seconds and
// expected unmet requests.
func (b *RateBound) lagrange(a, y, e float64) (value, replicaSeconds, unmet float64) {
	for t, row := range b.s {
		best, bk, bs := math.Inf(1), 0, 0.0
		for i, s := range row {
			k := b.min + i
			v := a*float64(k) + y*s
			if k == 0 {
				v += e * b.busy[t]
			}
			if v < best {
				best, bk, bs = v, k, s
			}
		}
		value += best
		replicaSeconds += float64(bk)
		unmet += bs
	}
	return value, replicaSeconds, unmet
}

// MinCost is the least expected cost of any strategy under the cost
// model (scaling actions cost it nothing).
func (b *RateBound) MinCost() float64 {
	v, _, _ := b.lagrange(b.cost.ReplicaCost, b.cost.UnmetPenalty, b.cost.EmptyPenalty)
	return v
}

// MinUnmet is the least expected number of unmet requests of any strategy
// that runs at most replicaSeconds replica-seconds: the best of the dual
// bounds sum_t min_k (s_t(k) + v k) - v replicaSeconds over prices v of a
// replica-second.
func (b *RateBound) MinUnmet(replicaSeconds float64) float64 {
	return b.dual(func(v float64) float64 {
		l, _, _ := b.lagrange(v, 1, 0)
		return l - v*replicaSeconds
	})
}

// MinReplicaSeconds is the least expected replica-seconds of any strategy
// that leaves at most unmet requests unmet: the best of the dual bounds
// over prices y of an unmet request.
func (b *RateBound) MinReplicaSeconds(unmet float64) float64 {
	return b.dual(func(y float64) float64 {
		l, _, _ := b.lagrange(1, y, 0)
		return l - y*unmet
	})
}

// MinCostWithin is the least expected cost of any strategy that leaves at
// most unmet requests unmet: the best of the dual bounds over prices y of
// an unmet request beyond the cost model's own.
func (b *RateBound) MinCostWithin(unmet float64) float64 {
	return b.dual(func(y float64) float64 {
		l, _, _ := b.lagrange(b.cost.ReplicaCost, b.cost.UnmetPenalty+y, b.cost.EmptyPenalty)
		return l - y*unmet
	})
}

// dual maximises a concave function of a price over [0, inf): a coarse
// scan over powers of two, then a golden-section search around the best.
func (b *RateBound) dual(f func(float64) float64) float64 {
	best, at := f(0), 0.0
	for e := -20; e <= 20; e++ {
		if v := f(math.Ldexp(1, e)); v > best {
			best, at = v, math.Ldexp(1, e)
		}
	}
	if at == 0 {
		return best
	}
	lo, hi := at/2, at*2
	const phi = 0.6180339887498949
	x1, x2 := hi-phi*(hi-lo), lo+phi*(hi-lo)
	f1, f2 := f(x1), f(x2)
	for range 40 {
		if f1 < f2 {
			lo, x1, f1 = x1, x2, f2
			x2 = lo + phi*(hi-lo)
			f2 = f(x2)
		} else {
			hi, x2, f2 = x2, x1, f1
			x1 = hi - phi*(hi-lo)
			f1 = f(x1)
		}
	}
	return math.Max(best, math.Max(f1, f2))
}

// FrontierRatio is one strategy's replica-seconds over the least any
// strategy could expect to run while leaving no more requests unmet: 1 is
// as good as knowing every second's rate. The oracle, which knows each
// second's draw too, can run under 1.
type FrontierRatio struct {
	Strategy            string  `json:"strategy"`
	LeastReplicaSeconds float64 `json:"least_replica_seconds"`
	Ratio               float64 `json:"ratio"`
}

// Frontier measures each result against the bound: how far from the best
// trade of replica-seconds for unmet requests, on this traffic, each
// strategy's lies. It tells a forecast that falls short from a goal no
// forecast reaches.
func Frontier(results []Result, bound *RateBound) []FrontierRatio {
	if bound == nil {
		return nil
	}
	out := make([]FrontierRatio, 0, len(results))
	for _, r := range results {
		least := bound.MinReplicaSeconds(r.UnmetRequests)
		out = append(out, FrontierRatio{Strategy: r.Strategy, LeastReplicaSeconds: least, Ratio: float64(r.ReplicaSeconds) / least})
	}
	return out
}

func writeFrontier(w io.Writer, f []FrontierRatio) {
	if len(f) == 0 {
		return
	}
	parts := make([]string, len(f))
	for i, r := range f {
		parts[i] = fmt.Sprintf("%s %.3fx", r.Strategy, r.Ratio)
	}
	fmt.Fprintf(w, "replica-seconds over the least any strategy could expect with as many unmet requests: %s\n", strings.Join(parts, ", "))
}
