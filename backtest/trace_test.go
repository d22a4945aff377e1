package backtest

import (
	"bytes"
	"compress/gzip"
	"errors"
	"math"
	"strings"
	"testing"
)

func TestReadTraceDetectsGzipByItsMagicBytes(t *testing.T) {
	plain := "3\n0\n\n1.5\n"
	var zipped bytes.Buffer
	zw := gzip.NewWriter(&zipped)
	zw.Write([]byte(plain))
	zw.Close()
	for name, in := range map[string][]byte{"plain": []byte(plain), "gzip": zipped.Bytes()} {
		got, err := ReadTrace(bytes.NewReader(in))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(got) != 3 || got[0] != 3 || got[1] != 0 || got[2] != 1.5 {
			t.Errorf("%s: read %v, want [3 0 1.5]", name, got)
		}
	}
}

func TestReadTraceRejectsNegativeAndNonNumericLines(t *testing.T) {
	for _, in := range []string{"1\n-2\n", "1\nabc\n", "NaN\n"} {
		if _, err := ReadTrace(strings.NewReader(in)); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

func TestATraceOfTimesAndCountsIsRefusedWithTheFormatItNeeds(t *testing.T) {
	for _, in := range []string{"time,count\n0,3\n", "1995-07-01 00:00:00,3\n", "800000000 3\n"} {
		_, err := ReadTrace(strings.NewReader(in))
		if !errors.Is(err, ErrTraceFormat) || !strings.Contains(err.Error(), "trace-convert") {
			t.Errorf("%q: err = %v, want ErrTraceFormat naming trace-convert", in, err)
		}
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
