package model

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/nomadscalerd/nomadscalerd/optimize"
)

func TestSelectKthIsTheKthOfTheSortedValuesWithNoneLargerBeforeItNorSmallerAfter(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		name string
		gen  func(i int) float64
	}{
		{"random", func(int) float64 { return rng.NormFloat64() }},
		{"few distinct values", func(int) float64 { return float64(rng.IntN(3)) }},
		{"constant", func(int) float64 { return 7 }},
		{"ascending", func(i int) float64 { return float64(i) }},
		{"descending", func(i int) float64 { return -float64(i) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, n := range []int{1, 2, 3, 10, 101, 1000} {
				xs := make([]float64, n)
				for i := range xs {
					xs[i] = tc.gen(i)
				}
				sorted := slices.Sorted(slices.Values(xs))
				for _, k := range []int{0, n / 3, n / 2, n - 1} {
					work := slices.Clone(xs)
					if got := selectKth(work, k); got != sorted[k] {
						t.Fatalf("n %d: %d-th smallest %v, want %v", n, k, got, sorted[k])
					}
					for i, v := range work {
						if (i < k && v > work[k]) || (i > k && v < work[k]) {
							t.Fatalf("n %d k %d: %v at %d is on the wrong side of %v", n, k, v, i, work[k])
						}
					}
				}
			}
		})
	}
}

// naiveHeadroom is the burst headroom as its definition reads: every
// deviation, sorted.
func naiveHeadroom(x []float64, q float64, ahead int) float64 {
	if ahead <= 0 {
		ahead = burstAhead
	}
	ahead = min(ahead, burstWindow/2)
	every := (ahead + burstPer - 1) / burstPer
	x = x[max(0, len(x)-burstWindow):]
	prefix := []float64{0}
	for i, v := range x {
		prefix = append(prefix, prefix[i]+v)
	}
	var devs []float64
	for t := burstBase; t+ahead <= len(x); t += burstStride {
		base := (prefix[t] - prefix[t-burstBase]) / burstBase
		for i := 0; i < ahead; i += every {
			devs = append(devs, x[t+i]-base)
		}
	}
	if len(devs) == 0 {
		return 0
	}
	slices.Sort(devs)
	k := min(max(int(math.Ceil(q*float64(len(devs))))-1, 0), len(devs)-1)
	return math.Max(0, devs[k])
}

func TestTheBurstHeadroomIsTheQuantileOfEveryDeviationSorted(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		name string
		gen  func(i int) float64
	}{
		{"noise", func(int) float64 { return 40 + 5*rng.NormFloat64() }},
		{"few distinct values", func(int) float64 { return float64(rng.IntN(3)) }},
		{"constant", func(int) float64 { return 7 }},
		{"rising", func(i int) float64 { return float64(i) / 10 }},
		{"bursts", func(i int) float64 { return bursty(i + 1)[i] }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, n := range []int{burstBase + 10, 700, 3600, 5000} {
				x := make([]float64, n)
				for i := range x {
					x[i] = tc.gen(i)
				}
				var b burstScratch // kept across calls, as a policy's is
				for _, q := range []float64{0, 0.1, 0.5, 0.9, 0.935, 0.999, 1} {
					for _, lead := range []int{0, 1, 10, 90} {
						got, want := b.headroom(x, q, lead), naiveHeadroom(x, q, lead)
						if got != want {
							t.Fatalf("n %d q %v lead %d: headroom %v, want %v", n, q, lead, got, want)
						}
					}
				}
			}
		})
	}
}

func TestTheBurstHeadroomKeepsOnlyItsQuantilesTailBetweenPlans(t *testing.T) {
	// At 1,000 policies what each keeps between plans is what a daemon
	// holds: every deviation of an hour kept was 256 KB a policy.
	x := bursty(2 * 3600)
	for _, tc := range []struct {
		q        float64
		maxBytes int
	}{
		{0.935, 20 << 10}, // the default: 6.5% of 28,000 deviations, and a quarter
		{0.5, 140 << 10},  // the most either tail can be: half
		{0.05, 20 << 10},  // a low quantile keeps the lower tail
	} {
		var b burstScratch
		for range 3 {
			if got, want := b.headroom(x, tc.q, 0), naiveHeadroom(x, tc.q, 0); got != want {
				t.Fatalf("q %v: headroom %v, want %v", tc.q, got, want)
			}
		}
		if bytes := cap(b.tail) * 8; bytes > tc.maxBytes {
			t.Errorf("q %v: %d bytes kept between plans, want at most %d", tc.q, bytes, tc.maxBytes)
		}
	}
}

// bursty is a level of 40 requests/s with unit noise and, every 5
// minutes, a 30-second burst of +30: a tenth of the seconds.
func bursty(seconds int) []float64 {
	rng := rand.New(rand.NewPCG(4, 4))
	x := make([]float64, seconds)
	for s := range x {
		x[s] = 40 + rng.NormFloat64()
		if s%300 >= 200 && s%300 < 230 {
			x[s] += 30
		}
	}
	return x
}

func TestTheBurstHeadroomIsTheQuantileOfWhatFollowedEachMinutesLevel(t *testing.T) {
	x := bursty(2 * 3600)
	for _, tc := range []struct {
		q        float64
		min, max float64
	}{
		// A tenth of the seconds are bursts 30 above the level: above
		// the 0.9 quantile the headroom holds a burst, below it the
		// noise alone.
		{0.95, 28, 33},
		{0.8, 0, 3},
	} {
		got := new(burstScratch).headroom(x, tc.q, 0)
		if got < tc.min || got > tc.max {
			t.Errorf("q %.2f: headroom %.1f, want %.0f..%.0f", tc.q, got, tc.min, tc.max)
		}
	}
}

func TestTheBurstHeadroomReadsOnlyTheLatestHour(t *testing.T) {
	// Bursts an hour and more ago, calm since: nothing to hold.
	x := append(bursty(3*3600), make([]float64, burstWindow)...)
	for s := len(x) - burstWindow; s < len(x); s++ {
		x[s] = 40
	}
	if got := new(burstScratch).headroom(x, 0.95, 0); got != 0 {
		t.Errorf("headroom %.1f after a calm hour, want 0", got)
	}
}

func TestTheBurstHeadroomIsZeroWithoutAFullSampleOrForFallingTraffic(t *testing.T) {
	if got := new(burstScratch).headroom(make([]float64, burstBase+burstAhead-1), 0.9, 0); got != 0 {
		t.Errorf("headroom %.1f from a history shorter than one sample, want 0", got)
	}
	falling := make([]float64, 3600)
	for s := range falling {
		falling[s] = 100 - float64(s)/60
	}
	if got := new(burstScratch).headroom(falling, 0.99, 0); got != 0 {
		t.Errorf("headroom %.1f on steadily falling traffic, want 0 (never negative)", got)
	}
}

func TestABurstQuantilePlanHoldsTheBurstsAGaussianBandMisses(t *testing.T) {
	h := bursty(3*3600 + 100) // ends calm, 100 s before the next burst
	cfg := DefaultForecastConfig()
	cfg.Step, cfg.Sqrt, cfg.Margin, cfg.NoiseMargin = 10, false, 1.15, 3
	gauss, err := NewForecaster(cfg, time.Now).ForecastBand(context.Background(), optimize.History{Requests: h}, 60)
	if err != nil {
		t.Fatal(err)
	}
	cfg.BurstQuantile = 0.95
	burst, err := NewForecaster(cfg, time.Now).ForecastBand(context.Background(), optimize.History{Requests: h}, 60)
	if err != nil {
		t.Fatal(err)
	}
	if burst.Burst < 28 || burst.Burst > 33 {
		t.Errorf("band's burst headroom %.1f, want a burst's 30 (28..33)", burst.Burst)
	}
	if gauss.Burst != 0 {
		t.Errorf("Gaussian band's burst headroom %.1f, want 0", gauss.Burst)
	}
	if got := burst.Plan[30]; got < 65 {
		t.Errorf("burst plan %.1f, want the level (about 40) plus a burst (30)", got)
	}
	if got := gauss.Plan[30]; got > 65 {
		t.Errorf("Gaussian plan %.1f already holds a burst: the test shows nothing", got)
	}
}

func TestTheBurstHeadroomCoversThePlansLeadOnARisingRate(t *testing.T) {
	// A rate rising by 0.1 requests/s every second, no noise: a second k
	// seconds after a moment lies 0.1*(k + 30.5) above the minute before.
	x := make([]float64, 2*3600)
	for s := range x {
		x[s] = 0.1 * float64(s)
	}
	for _, c := range []struct{ lead int }{{10}, {40}, {120}} {
		var b burstScratch
		got := b.headroom(x, 1, c.lead)
		// The largest deviation read: the last second of the lead (or
		// the last one its stride reaches).
		every := (c.lead + burstPer - 1) / burstPer
		last := (c.lead - 1) / every * every
		if want := 0.1 * (float64(last) + 30.5); math.Abs(got-want) > 1e-9 {
			t.Errorf("lead %d s: headroom %.3f, want %.3f", c.lead, got, want)
		}
	}
	// No lead given: the default's.
	if a := new(burstScratch).headroom(x, 1, 0); math.Abs(a-0.1*(burstAhead-1+30.5)) > 1e-9 {
		t.Errorf("no lead: headroom %.3f, want %.3f", a, 0.1*(burstAhead-1+30.5))
	}
}
