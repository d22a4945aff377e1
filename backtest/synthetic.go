package backtest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
)

// SyntheticKinds are the shapes Synthetic draws.
var SyntheticKinds = []string{"daily", "flash-crowd", "step", "trend", "demo"}

// The shapes' levels in requests per second: between about 20 and 200, so
// at 10 requests/s a replica they need from 2 to about 20 replicas.
const (
	dailyTrough   = 20.0  // at 04:00 of every day
	dailyPeak     = 180.0 // at 16:00
	flashBase     = 30.0  // the steady level a flash crowd rises from
	flashRamp     = 60    // seconds from onset to the crowd's peak
	flashHold     = 300   // seconds the peak holds
	flashDecay    = 900.0 // seconds: time constant of the decay after the hold
	stepMinLength = 2 * 3600
	stepMaxLength = 6 * 3600
	trendStart    = 30.0  // the trend's level at second 0
	trendEnd      = 150.0 // and at the last second
)

// Synthetic draws a request-rate trace: one request count per second for
// seconds seconds, the same for the same kind, length and seed. Every kind
// is a level in requests/s, multiplied by a slow random wobble (about 5%,
// correlated over about ten minutes) and then drawn as a Poisson count per
// second, as a real server's counts would be:
//
//   - daily: a daily cycle, lowest (20/s) at 04:00 and highest (180/s) at
//     16:00 of every day, second 0 being midnight.
//   - flash-crowd: a steady 30/s with one crowd a day at a random time (see
//     flashCrowds): the level ramps over a minute to 3 to 6 times the base,
//     holds five minutes, then decays back with a 15-minute time constant.
//   - step: levels between 20/s and 200/s that change every 2 to 6 hours
//     (see stepSegments), each at least 40% above or below the one before.
//   - trend: a linear growth from 30/s at second 0 to 150/s at the last
//     second.
//   - demo: the load `make run` and `make bench-live` offer (`nomadscalerd
//     demo load --pattern day --period 10m --low 15 --high 75 --noise
//     0.08`): DemoDayRate over a 10-minute day, each 100 ms drawn with 8%
//     normal noise, counted per second; no wobble and no Poisson draw (the
//     demo adds rates, not requests). Replayed with --rate-window 10 it is
//     what a policy on the demo's `rate(...[10s])` sees, so a live
//     comparison can be tried in seconds before it is run for 20 minutes.
func Synthetic(kind string, seconds int, seed int64) ([]float64, error) {
	counts, _, err := synthesize(kind, seconds, seed)
	return counts, err
}

// SyntheticRate is the request rate each second of Synthetic(kind, seconds,
// seed) was drawn from (its level times its wobble): what a strategy that
// knew the traffic's future perfectly, short of its Poisson draws, would
// know. The demo kind, drawn without a rate per second, has none.
func SyntheticRate(kind string, seconds int, seed int64) ([]float64, error) {
	if kind == "demo" {
		return nil, fmt.Errorf("synthetic demo trace: not drawn from a rate per second")
	}
	_, rate, err := synthesize(kind, seconds, seed)
	return rate, err
}

// synthesize draws a synthetic trace and the rate each second was drawn
// from (nil for the demo).
func synthesize(kind string, seconds int, seed int64) (counts, rate []float64, err error) {
	if seconds < 1 {
		return nil, nil, fmt.Errorf("synthetic trace of %d seconds: need at least 1", seconds)
	}
	if kind == "demo" {
		return demoTrace(seconds, seed), nil, nil
	}
	level := make([]float64, seconds)
	switch kind {
	case "daily":
		for t := range level {
			level[t] = dailyLevel(t)
		}
	case "flash-crowd":
		for t := range level {
			level[t] = flashBase
		}
		for _, c := range flashCrowds(seconds, seed) {
			for t := c.Onset; t < seconds; t++ {
				extra := c.extra(t)
				if extra < 1e-3*flashBase {
					break
				}
				level[t] += extra
			}
		}
	case "step":
		for _, s := range stepSegments(seconds, seed) {
			for t := s.Start; t < s.End; t++ {
				level[t] = s.Level
			}
		}
	case "trend":
		for t := range level {
			level[t] = trendLevel(t, seconds)
		}
	default:
		return nil, nil, fmt.Errorf("unknown synthetic trace kind %q (known: %s)", kind, strings.Join(SyntheticKinds, ", "))
	}
	// The noise has its own stream, so the shapes' own draws (crowd times,
	// step levels) do not shift it.
	rng := rand.New(rand.NewPCG(uint64(seed), 0x6e6f697365))
	const corr = 600.0 // seconds
	phi := math.Exp(-1 / corr)
	innov := 0.05 * math.Sqrt(1-phi*phi)
	wobble := 0.0
	counts, rate = make([]float64, seconds), level
	for t, l := range level {
		wobble = phi*wobble + innov*rng.NormFloat64()
		rate[t] = l * math.Exp(wobble)
		counts[t] = poisson(rng, rate[t])
	}
	return counts, rate, nil
}

// The demo load's day, as make bench-live runs it.
const (
	demoPeriod = 600.0 // seconds: a day compressed into 10 minutes
	demoLow    = 15.0  // requests/s at night
	demoHigh   = 75.0  // at midday
	demoNoise  = 0.08  // relative, per 100 ms
)

// DemoDayRate is the demo load's request rate at phase x (0 <= x < 1) of
// its compressed day: a night trough at low, a cosine ramp to high at
// midday, and one burst of 0.8 times the swing from 70% to 72% of the day.
func DemoDayRate(x, low, high float64) float64 {
	r := low + (high-low)*0.5*(1-math.Cos(2*math.Pi*x))
	if x > 0.70 && x < 0.72 {
		r += (high - low) * 0.8
	}
	return r
}

// demoTrace counts the demo load's requests per second as its generator
// adds them: every 100 ms a tenth of the rate times 1 plus 8% normal noise.
func demoTrace(seconds int, seed int64) []float64 {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x64656d6f))
	out := make([]float64, seconds)
	for t := range out {
		for k := range 10 {
			at := float64(t) + float64(k)/10
			r := DemoDayRate(math.Mod(at, demoPeriod)/demoPeriod, demoLow, demoHigh)
			out[t] += math.Max(0, r*(1+demoNoise*rng.NormFloat64())) / 10
		}
	}
	return out
}

func dailyLevel(t int) float64 {
	const day = 86400.0
	mid, amp := (dailyPeak+dailyTrough)/2, (dailyPeak-dailyTrough)/2
	return mid - amp*math.Cos(2*math.Pi*(float64(t)-4*3600)/day)
}

func trendLevel(t, seconds int) float64 {
	if seconds == 1 {
		return trendStart
	}
	return trendStart + (trendEnd-trendStart)*float64(t)/float64(seconds-1)
}

// flashCrowd is one crowd of a flash-crowd trace: from Onset the level
// rises linearly to Peak times the base over flashRamp seconds, holds for
// flashHold seconds, then decays exponentially.
type flashCrowd struct {
	Onset int
	Peak  float64
}

// extra is the crowd's addition to the base level at second t >= Onset.
func (c flashCrowd) extra(t int) float64 {
	top := (c.Peak - 1) * flashBase
	dt := t - c.Onset
	switch {
	case dt < flashRamp:
		return top * float64(dt+1) / flashRamp
	case dt < flashRamp+flashHold:
		return top
	}
	return top * math.Exp(-float64(dt-flashRamp-flashHold)/flashDecay)
}

// flashCrowds are the crowds of a flash-crowd trace: one in each whole or
// partial day, its onset drawn uniformly between 06:00 and 20:00 of that
// day (for a trace shorter than a day, between 10% and 70% of it), its peak
// between 3 and 6 times the base (90 to 180 requests/s).
func flashCrowds(seconds int, seed int64) []flashCrowd {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x666c617368))
	const day = 86400
	if seconds < day {
		lo := seconds / 10
		return []flashCrowd{{Onset: lo + rng.IntN(max(seconds*6/10, 1)), Peak: 3 + 3*rng.Float64()}}
	}
	var out []flashCrowd
	for start := 0; start < seconds; start += day {
		onset := start + 6*3600 + rng.IntN(14*3600)
		peak := 3 + 3*rng.Float64()
		if onset < seconds {
			out = append(out, flashCrowd{Onset: onset, Peak: peak})
		}
	}
	return out
}

// stepSegment is one level of a step trace, over seconds [Start, End).
type stepSegment struct {
	Start, End int
	Level      float64
}

// stepSegments cut a step trace into levels: each segment lasts 2 to 6
// hours (the last one what is left), its level is drawn from 20 to 200
// requests/s and differs from the one before by a factor of at least 1.4,
// up or down.
func stepSegments(seconds int, seed int64) []stepSegment {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x73746570))
	const lo, hi, minRatio = 20.0, 200.0, 1.4
	var out []stepSegment
	level := lo + (hi-lo)*rng.Float64()
	for start := 0; start < seconds; {
		end := min(start+stepMinLength+rng.IntN(stepMaxLength-stepMinLength+1), seconds)
		out = append(out, stepSegment{Start: start, End: end, Level: level})
		start = end
		// The next level: up or down, whichever has room, by at least
		// minRatio.
		up := level*minRatio <= hi && (level/minRatio < lo || rng.IntN(2) == 0)
		if up {
			level = level*minRatio + (hi-level*minRatio)*rng.Float64()
		} else {
			level = lo + (level/minRatio-lo)*rng.Float64()
		}
	}
	return out
}

// poisson draws a Poisson count with mean lambda: Knuth's product of
// uniforms for small means, the rounded normal approximation above 30.
func poisson(rng *rand.Rand, lambda float64) float64 {
	if lambda <= 0 {
		return 0
	}
	if lambda > 30 {
		return math.Max(0, math.Round(lambda+math.Sqrt(lambda)*rng.NormFloat64()))
	}
	limit, p, k := math.Exp(-lambda), 1.0, 0
	for {
		p *= rng.Float64()
		if p <= limit {
			return float64(k)
		}
		k++
	}
}

// SyntheticPrefix starts a LoadTrace spec that draws a synthetic trace.
const SyntheticPrefix = "synthetic:"

// LoadTrace loads a request-rate trace (one request count per second) from
// spec, which is either a file (plain or gzip; see ReadTraceFile) or
// "synthetic:KIND[:DAYS[:SEED]]", a Synthetic trace of KIND, DAYS days long
// (a decimal number; default 7), drawn with SEED (default 1).
func LoadTrace(spec string) ([]float64, error) {
	out, _, err := LoadTraceInfo(spec)
	return out, err
}

// LoadTraceInfo is LoadTrace that also says how a file's timed rows were
// laid onto seconds (nil for a synthetic trace or one count a line).
func LoadTraceInfo(spec string) ([]float64, *RowsInfo, error) {
	rest, ok := strings.CutPrefix(spec, SyntheticPrefix)
	if !ok {
		return ReadTraceFileInfo(spec)
	}
	out, err := loadSynthetic(spec, rest)
	return out, nil, err
}

func loadSynthetic(spec, rest string) ([]float64, error) {
	kind, seconds, seed, err := parseSynthetic(spec, rest)
	if err != nil {
		return nil, err
	}
	return Synthetic(kind, seconds, seed)
}

// LoadTraceRate is the rate each second of LoadTrace(spec) was drawn from
// (see SyntheticRate): nil for a file and for the demo, whose seconds are
// not drawn from one.
func LoadTraceRate(spec string) ([]float64, error) {
	rest, ok := strings.CutPrefix(spec, SyntheticPrefix)
	if !ok {
		return nil, nil
	}
	kind, seconds, seed, err := parseSynthetic(spec, rest)
	if err != nil || kind == "demo" {
		return nil, err
	}
	return SyntheticRate(kind, seconds, seed)
}

func parseSynthetic(spec, rest string) (kind string, seconds int, seed int64, err error) {
	parts := strings.Split(rest, ":")
	if len(parts) > 3 || parts[0] == "" {
		return "", 0, 0, fmt.Errorf("trace %q: want %sKIND[:DAYS[:SEED]] with KIND one of %s", spec, SyntheticPrefix, strings.Join(SyntheticKinds, ", "))
	}
	kind = parts[0]
	if !slices.Contains(SyntheticKinds, kind) {
		return "", 0, 0, fmt.Errorf("trace %q: unknown synthetic kind %q (known: %s)", spec, kind, strings.Join(SyntheticKinds, ", "))
	}
	days := 7.0
	seed = 1
	if len(parts) > 1 {
		d, err := strconv.ParseFloat(parts[1], 64)
		if err != nil || !(d > 0) || d > 366 {
			return "", 0, 0, fmt.Errorf("trace %q: days %q: want a number of days above 0 and at most 366", spec, parts[1])
		}
		days = d
	}
	if len(parts) > 2 {
		s, err := strconv.ParseInt(parts[2], 10, 64)
		if err != nil {
			return "", 0, 0, fmt.Errorf("trace %q: seed %q: %w", spec, parts[2], err)
		}
		seed = s
	}
	seconds = int(math.Round(days * 86400))
	if seconds < 1 {
		return "", 0, 0, fmt.Errorf("trace %q: %v days is under a second", spec, days)
	}
	return kind, seconds, seed, nil
}
