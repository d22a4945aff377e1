package backtest

import (
	"bytes"
	"compress/gzip"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// means averages x over consecutive windows of w seconds (a last partial
// window is dropped).
func means(x []float64, w int) []float64 {
	out := make([]float64, len(x)/w)
	for i := range out {
		s := 0.0
		for _, v := range x[i*w : (i+1)*w] {
			s += v
		}
		out[i] = s / float64(w)
	}
	return out
}

func meanOf(x []float64) float64 {
	s := 0.0
	for _, v := range x {
		s += v
	}
	return s / float64(len(x))
}

func TestSyntheticIsDeterministicPerSeedAndInRange(t *testing.T) {
	const seconds = 2 * 86400
	for _, kind := range SyntheticKinds {
		if kind == "demo" {
			continue // the demo load's rates, not Poisson counts: tested below
		}
		a, err := Synthetic(kind, seconds, 7)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := Synthetic(kind, seconds, 7)
		c, _ := Synthetic(kind, seconds, 8)
		if len(a) != seconds {
			t.Fatalf("%s: %d seconds, want %d", kind, len(a), seconds)
		}
		if !slices.Equal(a, b) {
			t.Errorf("%s: seed 7 drew two different traces", kind)
		}
		if slices.Equal(a, c) {
			t.Errorf("%s: seeds 7 and 8 drew the same trace", kind)
		}
		minute := means(a, 60)
		lo, hi := slices.Min(minute), slices.Max(minute)
		for _, v := range a {
			if v < 0 || v != math.Round(v) {
				t.Fatalf("%s: %v is not a request count", kind, v)
			}
		}
		// Minute means stay in the documented band: from about 20/s to
		// about 200/s (with a little room for the noise).
		if lo < 15 || hi > 230 || hi < 100 {
			t.Errorf("%s: minute means span [%.1f, %.1f], want within [15, 230] and reaching 100", kind, lo, hi)
		}
	}
}

func TestSyntheticDemoIsTheDemoLoadsTenMinuteDayWithItsBurst(t *testing.T) {
	a, err := Synthetic("demo", 1200, 7)
	if err != nil {
		t.Fatal(err)
	}
	b, errB := Synthetic("demo", 1200, 7)
	c, errC := Synthetic("demo", 1200, 8)
	if errB != nil || errC != nil {
		t.Fatal(errB, errC)
	}
	if !slices.Equal(a, b) || slices.Equal(a, c) {
		t.Fatal("the demo trace is not one draw per seed")
	}
	// Ten-second means of both days: night at 15/s, midday at 75/s, and
	// the burst (70-72% of the day) above midday.
	for day := range 2 {
		at := func(sec int) float64 { return meanOf(a[day*600+sec : day*600+sec+10]) }
		if v := at(0); math.Abs(v-15) > 1.5 {
			t.Errorf("day %d: night %.1f/s, want about 15", day, v)
		}
		if v := at(295); math.Abs(v-75) > 3 {
			t.Errorf("day %d: midday %.1f/s, want about 75", day, v)
		}
		want := DemoDayRate(0.71, 15, 75)
		if v := at(422); math.Abs(v-want) > 4 || want < 75 {
			t.Errorf("day %d: burst %.1f/s, want about %.1f (above midday)", day, v, want)
		}
	}
}

func TestSyntheticDailyPeaksAt16AndBottomsAt04(t *testing.T) {
	x, err := Synthetic("daily", 3*86400, 1)
	if err != nil {
		t.Fatal(err)
	}
	hourly := means(x, 3600)
	for day := range 3 {
		h := hourly[day*24 : (day+1)*24]
		// The daily harmonic's phase puts the peak (the top of the cycle is
		// flat enough for the noise to move the busiest single hour).
		var a, b float64
		for i, y := range h {
			w := 2 * math.Pi * (float64(i) + 0.5) / 24
			a, b = a+y*math.Cos(w), b+y*math.Sin(w)
		}
		peak := math.Mod(math.Atan2(b, a)*24/(2*math.Pi)+24, 24)
		if math.Abs(peak-16) > 0.5 {
			t.Errorf("day %d: the daily cycle peaks at %.2f h, want 16", day, peak)
		}
		if trough := argmin(h); trough != 3 && trough != 4 {
			t.Errorf("day %d: quietest hour starts at %02d:00, want 03:00 or 04:00", day, trough)
		}
		if r := slices.Max(h) / slices.Min(h); r < 6 || r > 12 {
			t.Errorf("day %d: busiest/quietest hour %.1f, want about 9 (180/20)", day, r)
		}
	}
}

func TestSyntheticFlashCrowdPeaksWhereItsCrowdsAre(t *testing.T) {
	for _, tt := range []struct {
		seconds int
		seed    int64
	}{{7 * 86400, 1}, {7 * 86400, 2}, {6 * 3600, 3}} {
		x, err := Synthetic("flash-crowd", tt.seconds, tt.seed)
		if err != nil {
			t.Fatal(err)
		}
		crowds := flashCrowds(tt.seconds, tt.seed)
		wantCrowds := max(1, (tt.seconds+86399)/86400)
		if len(crowds) > wantCrowds || len(crowds) < wantCrowds-1 {
			t.Fatalf("%d s: %d crowds, want one a day", tt.seconds, len(crowds))
		}
		minute := means(x, 60)
		base := meanOf(minute[:min(len(minute), 60*6)]) // 00:00-06:00 has no crowd
		if len(crowds) > 0 && crowds[0].Onset < 6*3600 {
			base = meanOf(minute[:crowds[0].Onset/60])
		}
		if math.Abs(base-flashBase) > 0.1*flashBase {
			t.Errorf("%d s seed %d: steady level %.1f, want about %v", tt.seconds, tt.seed, base, flashBase)
		}
		for _, c := range crowds {
			if c.Peak < 3 || c.Peak > 6 {
				t.Errorf("crowd at %d: peak %.2f×, want 3 to 6", c.Onset, c.Peak)
			}
			// Over its hold the crowd is at about Peak times the base (the
			// wobble moves it by up to about 15%).
			from := c.Onset / 60
			if hold := meanOf(minute[from+2 : min(from+6, len(minute))]); math.Abs(hold/flashBase-c.Peak) > 0.2*c.Peak {
				t.Errorf("crowd at %d: %.1f/s = %.2f× the base over the hold, want about %.2f×", c.Onset, hold, hold/flashBase, c.Peak)
			}
			// Nothing before the crowd comes near it.
			if pre := slices.Max(minute[max(0, from-60):from]); pre > 1.5*flashBase {
				t.Errorf("crowd at %d: a minute of %.1f/s in the hour before it", c.Onset, pre)
			}
			// Half an hour after the hold it has decayed to well under
			// half its height, and two hours after to about the base.
			after := (c.Onset + flashRamp + flashHold + 1800) / 60
			if after+5 <= len(minute) {
				extra := meanOf(minute[after:after+5]) - flashBase
				if want := (c.Peak - 1) * flashBase * math.Exp(-1800/flashDecay); math.Abs(extra-want) > 0.3*want+5 {
					t.Errorf("crowd at %d: %.1f/s above the base 30 min after the hold, want about %.1f", c.Onset, extra, want)
				}
			}
			if late := after + 90; late+10 <= len(minute) {
				if v := meanOf(minute[late : late+10]); v > 1.2*flashBase {
					t.Errorf("crowd at %d: still %.1f/s two hours after the hold", c.Onset, v)
				}
			}
		}
		// The trace's busiest minute belongs to one of the crowds.
		top := argmax(minute) * 60
		found := false
		for _, c := range crowds {
			found = found || (top >= c.Onset-60 && top <= c.Onset+flashRamp+flashHold)
		}
		if !found {
			t.Errorf("%d s seed %d: busiest minute at second %d is in no crowd %v", tt.seconds, tt.seed, top, crowds)
		}
	}
}

func TestSyntheticStepHoldsEachLevel(t *testing.T) {
	const seconds = 3 * 86400
	x, err := Synthetic("step", seconds, 5)
	if err != nil {
		t.Fatal(err)
	}
	segs := stepSegments(seconds, 5)
	if len(segs) < seconds/stepMaxLength || segs[0].Start != 0 || segs[len(segs)-1].End != seconds {
		t.Fatalf("segments %v do not cover the trace", segs)
	}
	ups, downs := 0, 0
	for i, s := range segs {
		if i > 0 {
			if s.Start != segs[i-1].End {
				t.Fatalf("segment %d starts at %d, the one before ends at %d", i, s.Start, segs[i-1].End)
			}
			if r := s.Level / segs[i-1].Level; r < 1.4-1e-9 && r > 1/1.4+1e-9 {
				t.Errorf("segment %d: level %.1f after %.1f, a step under 1.4×", i, s.Level, segs[i-1].Level)
			} else if r > 1 {
				ups++
			} else {
				downs++
			}
		}
		if i < len(segs)-1 && (s.End-s.Start < stepMinLength || s.End-s.Start > stepMaxLength) {
			t.Errorf("segment %d lasts %d s, want 2 to 6 hours", i, s.End-s.Start)
		}
		if s.Level < 20 || s.Level > 200 {
			t.Errorf("segment %d: level %.1f outside [20, 200]", i, s.Level)
		}
		// Away from its edges (the noise's wobble is ten minutes long), a
		// segment's mean is its level.
		if s.End-s.Start > 3600 {
			if m := meanOf(x[s.Start+600 : s.End-600]); math.Abs(m-s.Level) > 0.1*s.Level {
				t.Errorf("segment %d: mean %.1f, level %.1f", i, m, s.Level)
			}
		}
	}
	if ups == 0 || downs == 0 {
		t.Errorf("%d steps up and %d down: want both", ups, downs)
	}
}

func TestSyntheticTrendGrowsLinearly(t *testing.T) {
	const seconds = 7 * 86400
	x, err := Synthetic("trend", seconds, 3)
	if err != nil {
		t.Fatal(err)
	}
	hourly := means(x, 3600)
	// Least squares over the hourly means, time at each hour's middle.
	var sx, sy, sxx, sxy float64
	n := float64(len(hourly))
	for i, y := range hourly {
		tm := float64(i)*3600 + 1800
		sx, sy, sxx, sxy = sx+tm, sy+y, sxx+tm*tm, sxy+tm*y
	}
	slope := (n*sxy - sx*sy) / (n*sxx - sx*sx)
	intercept := (sy - slope*sx) / n
	wantSlope := (trendEnd - trendStart) / float64(seconds-1)
	if math.Abs(slope-wantSlope) > 0.05*wantSlope {
		t.Errorf("slope %.3g req/s per second, want %.3g", slope, wantSlope)
	}
	if math.Abs(intercept-trendStart) > 0.1*trendStart {
		t.Errorf("level at second 0 %.1f, want %v", intercept, trendStart)
	}
	// Noise, not only a line: hourly means scatter around it.
	resid := 0.0
	for i, y := range hourly {
		resid += math.Abs(y - (intercept + slope*(float64(i)*3600+1800)))
	}
	if resid/n < 0.1 {
		t.Errorf("hourly means sit on the line (mean |residual| %.3f): no noise", resid/n)
	}
}

func TestSyntheticRejectsUnknownKindsAndEmptyTraces(t *testing.T) {
	if _, err := Synthetic("sawtooth", 100, 1); err == nil {
		t.Error("unknown kind accepted")
	}
	if _, err := Synthetic("daily", 0, 1); err == nil {
		t.Error("zero seconds accepted")
	}
}

func TestLoadTraceReadsFilesAndSyntheticSpecs(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain.txt")
	if err := os.WriteFile(plain, []byte("1\n2\n3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var zipped bytes.Buffer
	zw := gzip.NewWriter(&zipped)
	zw.Write([]byte("4\n5\n"))
	zw.Close()
	gz := filepath.Join(dir, "zipped.txt.gz")
	if err := os.WriteFile(gz, zipped.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	for spec, want := range map[string][]float64{plain: {1, 2, 3}, gz: {4, 5}} {
		got, err := LoadTrace(spec)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("%s: %v, %v; want %v", spec, got, err, want)
		}
	}

	week, err := LoadTrace("synthetic:flash-crowd")
	if err != nil {
		t.Fatal(err)
	}
	direct, _ := Synthetic("flash-crowd", 7*86400, 1)
	if !slices.Equal(week, direct) {
		t.Error("synthetic:flash-crowd is not the 7-day seed-1 Synthetic trace")
	}
	for spec, seconds := range map[string]int{
		"synthetic:daily:2":      2 * 86400,
		"synthetic:step:0.5":     43200,
		"synthetic:trend:1:42":   86400,
		"synthetic:daily:0.0001": 9,
	} {
		got, err := LoadTrace(spec)
		if err != nil || len(got) != seconds {
			t.Errorf("%s: %d seconds, %v; want %d", spec, len(got), err, seconds)
		}
	}
	seeded, _ := LoadTrace("synthetic:trend:1:42")
	if direct, _ := Synthetic("trend", 86400, 42); !slices.Equal(seeded, direct) {
		t.Error("synthetic:trend:1:42 is not Synthetic(trend, 1 day, seed 42)")
	}

	for _, spec := range []string{
		"synthetic:", "synthetic:sawtooth", "synthetic:daily:0", "synthetic:daily:-1",
		"synthetic:daily:x", "synthetic:daily:1:x", "synthetic:daily:1:2:3", "synthetic:daily:400",
		filepath.Join(dir, "missing.txt"),
	} {
		if _, err := LoadTrace(spec); err == nil {
			t.Errorf("%q accepted", spec)
		} else if strings.HasPrefix(spec, "synthetic:") && !strings.Contains(err.Error(), spec) {
			t.Errorf("%q: error %q does not name the spec", spec, err)
		}
	}
}

func argmax(x []float64) int {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return best
}

func argmin(x []float64) int {
	best := 0
	for i, v := range x {
		if v < x[best] {
			best = i
		}
	}
	return best
}
