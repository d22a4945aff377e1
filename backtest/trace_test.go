package backtest

import (
	"bytes"
	"compress/gzip"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestReadTraceDetectsGzipByItsMagicBytes(t *testing.T) {
	plain := "3\n0\n\n1.5\n"
	for name, in := range map[string][]byte{"plain": []byte(plain), "gzip": gzipped(t, plain)} {
		got, err := ReadTrace(bytes.NewReader(in))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(got) != 3 || got[0] != 3 || got[1] != 0 || got[2] != 1.5 {
			t.Errorf("%s: read %v, want [3 0 1.5]", name, got)
		}
	}
}

// gzipped is s compressed as a .gz file holds it.
func gzipped(t *testing.T, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestReadTraceRejectsNegativeAndNonNumericLines(t *testing.T) {
	for _, in := range []string{"1\n-2\n", "1\nabc\n", "NaN\n"} {
		if _, err := ReadTrace(strings.NewReader(in)); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

func TestTimedRowsAreLaidOntoTheSecondsTheyCountWithAHeaderSkippedAndAMissingRowZero(t *testing.T) {
	// Per-minute counts, the third minute missing, gzip-compressed.
	csv := "time,requests\n1998-06-22 00:00,120\n1998-06-22 00:01,7\n1998-06-22 00:03,60\n"
	got, info, err := ReadTraceInfo(bytes.NewReader(gzipped(t, csv)))
	if err != nil {
		t.Fatal(err)
	}
	if info == nil || info.Step != 60 || info.Rows != 3 || info.MissingRows != 1 || len(got) != 240 {
		t.Fatalf("info %+v, %d seconds; want step 60, 3 rows, 1 missing, 240 seconds", info, len(got))
	}
	sum := func(a, b int) (s float64) {
		for _, v := range got[a:b] {
			s += v
		}
		return s
	}
	if sum(0, 60) != 120 || got[0] != 2 || got[59] != 2 || sum(60, 120) != 7 || sum(120, 180) != 0 || sum(180, 240) != 60 {
		t.Errorf("minutes sum to %v, %v, %v, %v (first second %v); want 120 (2 a second), 7, 0, 60", sum(0, 60), sum(60, 120), sum(120, 180), sum(180, 240), got[0])
	}
	for i, v := range got[60:120] {
		if v != 0 && v != 1 {
			t.Fatalf("second %d of the minute of 7 holds %v: whole requests differ by at most one", i, v)
		}
	}
}

func TestTimedRowsInEveryLayoutReadAsTheSameTrace(t *testing.T) {
	want := []float64{3, 0, 5}
	for _, in := range []string{
		"898473605,3\n898473607,5\n898473606,0\n",
		"898473605000,3\n898473606000,0\n898473607000,5\n",
		"1998-06-22 00:00:05,3\n1998-06-22 00:00:06,0\n1998-06-22 00:00:07,5\n",
		"1998-06-22T02:00:05+02:00;3\n1998-06-22T02:00:06+02:00;0\n1998-06-22T02:00:07+02:00;5\n",
		"1998-06-22 00:00:05 3\n1998-06-22 00:00:06 0\n1998-06-22 00:00:07 5\n",
		"ts\tcount\textra\n898473605\t3\tx\n898473606\t0\tx\n898473607\t5.0\tx\n",
	} {
		got, info, err := ReadTraceInfo(strings.NewReader(in))
		if err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		if !slices.Equal(got, want) || info.Step != 1 || !info.First.Equal(time.Date(1998, 6, 22, 0, 0, 5, 0, time.UTC)) {
			t.Errorf("%q: %v from %v, step %d; want %v from 1998-06-22 00:00:05 UTC, step 1", in, got, info.First, info.Step, want)
		}
	}
}

func TestRowsForTheSameTimeAreSummedAndAFractionalCountLaidOnAsARate(t *testing.T) {
	got, info, err := ReadTraceInfo(strings.NewReader("0,1.5\n10,4\n0,2.5\n"))
	if err != nil {
		t.Fatal(err)
	}
	var second float64
	for _, v := range got[10:] {
		second += v
	}
	if len(got) != 20 || got[0] != 0.4 || got[9] != 0.4 || second != 4 || !info.FractionalRow {
		t.Errorf("%v, info %+v: want 4 requests over the first 10 s (0.4 each; 1.5 and 2.5 summed) and 4 over the next, fractional noted", got, info)
	}
}

func TestATraceMixingCountsAndRowsIsRefusedNamingItsLine(t *testing.T) {
	for in, line := range map[string]string{
		"3\n4\n1995-07-01 00:00:00,3\n": "line 3",
		"0,3\n1,4\n5\n":                 "line 3",
		"0,3\nyesterday,4\n":            "line 2",
		"0,3\n1,-4\n":                   "line 2",
	} {
		_, err := ReadTrace(strings.NewReader(in))
		if !errors.Is(err, ErrTraceFormat) || !strings.Contains(err.Error(), line) {
			t.Errorf("%q: err = %v, want ErrTraceFormat naming %s", in, err, line)
		}
	}
}

func TestAOneWordHeaderOverCountsIsSkipped(t *testing.T) {
	got, err := ReadTrace(strings.NewReader("requests\n3\n4\n"))
	if err != nil || !slices.Equal(got, []float64{3, 4}) {
		t.Errorf("%v, %v; want [3 4]", got, err)
	}
	if _, err := ReadTrace(strings.NewReader("requests\n3\nfour\n")); err == nil {
		t.Error("a word after the first line was accepted")
	}
}

func TestDemandIsTheScaledCentredMean(t *testing.T) {
	trace := []float64{0, 3, 6, 9, 12, 15}
	tests := []struct {
		start, duration, window int
		scale                   float64
		want                    []float64
	}{
		{start: 0, duration: 0, window: 1, scale: 2, want: []float64{0, 6, 12, 18, 24, 30}},
		// Window 3 centred: second 2 averages 3, 6, 9. It reads seconds
		// outside the replay (1 and 4) but not outside the trace.
		{start: 2, duration: 2, window: 3, scale: 1, want: []float64{6, 9}},
		{start: 4, duration: 10, window: 3, scale: 1, want: []float64{12, 13.5}},
		// Even window: second t averages [t-2, t+2).
		{start: 2, duration: 1, window: 4, scale: 10, want: []float64{45}},
	}
	for _, tt := range tests {
		got, err := Demand(trace, tt.start, tt.duration, tt.scale, tt.window)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(tt.want) {
			t.Fatalf("start %d duration %d window %d: %v, want %v", tt.start, tt.duration, tt.window, got, tt.want)
		}
		for i := range got {
			if math.Abs(got[i]-tt.want[i]) > 1e-12 {
				t.Errorf("start %d duration %d window %d: %v, want %v", tt.start, tt.duration, tt.window, got, tt.want)
				break
			}
		}
	}
	if _, err := Demand(trace, 6, 1, 1, 1); err == nil {
		t.Error("start past the end accepted")
	}
}

func TestParseSecondsAcceptsSecondsGoDurationsAndDays(t *testing.T) {
	for in, want := range map[string]int{"86400": 86400, "90m": 5400, "7d": 604800, "1d12h": 129600, "0.5d": 43200} {
		got, err := ParseSeconds(in)
		if err != nil || got != want {
			t.Errorf("%q: %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-5", "7x", "d"} {
		if _, err := ParseSeconds(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}
