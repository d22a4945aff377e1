package model

import "math"

// The burst headroom's sampling (see burstScratch.headroom).
const (
	// burstWindow is how much of the latest history the bursts are read
	// from: the daemon's default history_window, long enough to hold
	// hundreds of bursts, short enough to follow a change of regime.
	burstWindow = 3600
	// burstBase is the span of the level a burst is measured above: the
	// reactive floor's window, the level a plan starts from.
	burstBase = 60
	// burstAhead is how many seconds after each moment count as its
	// burst when the history does not say (forecast.History.Lead): what
	// a plan must hold before the next one can act on what it sees, a
	// re-plan interval and a replica's start (10 s and 30 s by default).
	burstAhead = 40
	// burstStride is the spacing of the moments sampled, and burstPer the
	// most seconds read after each, which bound the work: at most
	// burstWindow/burstStride*burstPer = 28,800 deviations a plan.
	burstStride = 5
	burstPer    = 40
)

// The base of each moment is read from the sums kept at earlier moments,
// so it must span whole strides.
var _ [0]struct{} = [burstBase % burstStride]struct{}{}

// burstScratch is a policy's burst headroom: its one buffer lives between
// plans, so a plan allocates nothing for it, and holds only the quantile's
// tail, not every deviation (at the default quantile about 2,300 values,
// 18 KB; with every deviation kept a forecaster held 320 KB, and make
// bench-scale's daemon 170 MiB more anonymous memory at 1,000 policies).
type burstScratch struct{ tail []float64 }

// headroom is the q-quantile, over the latest burstWindow seconds of x,
// of how far each of the ahead seconds after a moment lay above the mean
// of the burstBase seconds before it, sampled every burstStride seconds
// (and, past burstPer seconds ahead, every ahead/burstPer-th second); 0
// when x holds no full sample. It is headroom measured on the traffic
// itself: a Gaussian band of the forecast's deviation is too narrow for
// bursts that are rare but long (a crawler, a flash crowd's first
// minutes) and too wide for seconds that scatter symmetrically. ahead is
// the plan's lead: replicas that start at once need headroom for the next
// plan's few seconds, slow ones for the minute they take.
func (b *burstScratch) headroom(x []float64, q float64, ahead int) float64 {
	if ahead <= 0 {
		ahead = burstAhead
	}
	ahead = min(ahead, burstWindow/2)
	every := (ahead + burstPer - 1) / burstPer
	x = x[max(0, len(x)-burstWindow):]
	n := len(x)
	if n < burstBase+ahead {
		return 0
	}
	moments := (n-ahead-burstBase)/burstStride + 1
	total := moments * ((ahead + every - 1) / every)
	// The quantile is the k-th smallest deviation (0-based): the least of
	// the total-k largest, or the greatest of the k+1 smallest. Only the
	// shorter of the two tails is kept (the smallest negated, so that both
	// are a largest), in a buffer a quarter longer than the tail: when it
	// fills, one selection keeps the tail and raises the threshold below
	// which a deviation cannot be in it. A heap would keep less but costs
	// 7 times as much on bursty traffic, whose deviations keep rising past
	// the least kept.
	k := min(max(int(math.Ceil(q*float64(total)))-1, 0), total-1)
	size, sign := total-k, 1.0
	if k+1 < size {
		size, sign = k+1, -1
	}
	if c := size + size/4 + 64; cap(b.tail) < c {
		b.tail = make([]float64, 0, c) // exactly: append would overshoot
	}
	tail, least := b.tail[:0], math.Inf(-1)
	// The sum of x up to each moment, and at the last burstBase/burstStride
	// moments before it: the base is their difference, with no buffer the
	// length of the window (and no add per second of every base).
	var sum float64
	var marks [burstBase / burstStride]float64
	i := 0
	for t := burstBase; t+ahead <= n; t += burstStride {
		for ; i < t; i++ {
			if i%burstStride == 0 {
				marks[i/burstStride%len(marks)] = sum
			}
			sum += x[i]
		}
		base := (sum - marks[(t-burstBase)/burstStride%len(marks)]) / burstBase
		for j := 0; j < ahead; j += every {
			v := sign * (x[t+j] - base)
			if v <= least {
				// At most the size-th largest so far: what is kept holds
				// size values at least as large.
				continue
			}
			if len(tail) == cap(tail) {
				least = selectKth(tail, len(tail)-size)
				tail = append(tail[:0], tail[len(tail)-size:]...)
				if v <= least {
					continue
				}
			}
			tail = append(tail, v)
		}
	}
	b.tail = tail
	return math.Max(0, sign*selectKth(tail, len(tail)-size))
}

// selectKth is the k-th smallest of xs (0-based), reordering xs so that
// no value before index k is larger and none after it smaller: Hoare's
// selection, linear on average, where a sort would be n log n on every
// plan of every policy (neither the standard library nor gonum selects
// without sorting).
func selectKth(xs []float64, k int) float64 {
	lo, hi := 0, len(xs)-1
	for lo < hi {
		// The median of three keeps sorted or constant runs from the
		// quadratic case.
		mid := lo + (hi-lo)/2
		if xs[mid] < xs[lo] {
			xs[mid], xs[lo] = xs[lo], xs[mid]
		}
		if xs[hi] < xs[lo] {
			xs[hi], xs[lo] = xs[lo], xs[hi]
		}
		if xs[hi] < xs[mid] {
			xs[hi], xs[mid] = xs[mid], xs[hi]
		}
		pivot := xs[mid]
		i, j := lo, hi
		for i <= j {
			for xs[i] < pivot {
				i++
			}
			for xs[j] > pivot {
				j--
			}
			if i <= j {
				xs[i], xs[j] = xs[j], xs[i]
				i++
				j--
			}
		}
		switch {
		case k <= j:
			hi = j
		case k >= i:
			lo = i
		default:
			return xs[k]
		}
	}
	return xs[k]
}
