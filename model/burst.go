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

// burstScratch is a policy's burst headroom: its buffers live between
// plans, so a plan allocates nothing for it.
type burstScratch struct{ prefix, devs []float64 }

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
	b.prefix = append(b.prefix[:0], 0)
	for i, v := range x {
		b.prefix = append(b.prefix, b.prefix[i]+v)
	}
	b.devs = b.devs[:0]
	for t := burstBase; t+ahead <= n; t += burstStride {
		base := (b.prefix[t] - b.prefix[t-burstBase]) / burstBase
		for k := 0; k < ahead; k += every {
			b.devs = append(b.devs, x[t+k]-base)
		}
	}
	k := int(math.Ceil(q*float64(len(b.devs)))) - 1
	return math.Max(0, selectKth(b.devs, min(max(k, 0), len(b.devs)-1)))
}

// selectKth is the k-th smallest of xs (0-based), reordering xs: Hoare's
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
