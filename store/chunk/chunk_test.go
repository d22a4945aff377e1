package chunk

import (
	"errors"
	"math"
	"testing"
)

func TestEncodeThenDecodeGivesBackEveryBitIncludingNaNAndInfinities(t *testing.T) {
	in := []Sample{{1000, 1.5}, {2000, math.NaN()}, {3000, math.Inf(1)}, {3500, math.Inf(-1)}, {9000, -0.0}, {9001, 42}}
	b, err := Encode(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := Decode(nil, b)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(in) {
		t.Fatalf("decoded %d samples, want %d", len(out), len(in))
	}
	for i := range in {
		if out[i].T != in[i].T || math.Float64bits(out[i].V) != math.Float64bits(in[i].V) {
			t.Errorf("sample %d = %+v, want %+v", i, out[i], in[i])
		}
	}
	if n, err := NumSamples(b); err != nil || n != len(in) {
		t.Errorf("NumSamples = %d, %v; want %d", n, err, len(in))
	}
}

func TestEncodeRefusesSamplesOutOfOrderOrDuplicated(t *testing.T) {
	for _, in := range [][]Sample{{{2, 1}, {1, 1}}, {{1, 1}, {1, 2}}, nil} {
		if _, err := Encode(in); err == nil {
			t.Errorf("Encode(%v) succeeded", in)
		}
	}
}

func TestDecodeOfTruncatedOrForeignBytesIsAnErrorNotAPanic(t *testing.T) {
	b, err := Encode([]Sample{{1, 1}, {2, 2}, {3, 3.25}, {4, 7.125}})
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]byte{b[:len(b)-2], {1}, {9, 0, 1, 2}, {}} {
		if _, err := Decode(nil, bad); !errors.Is(err, ErrCorrupt) {
			t.Errorf("Decode(%x) = %v, want ErrCorrupt", bad, err)
		}
	}
}

func TestDecodeBetweenKeepsTheSamplesInItsBoundsAndStillChecksTheWholeChunk(t *testing.T) {
	b, err := Encode([]Sample{{1, 1}, {2, 2}, {3, 3.25}, {4, 7.125}})
	if err != nil {
		t.Fatal(err)
	}
	out, err := DecodeBetween([]Sample{{0, 9}}, b, 2, 4)
	if err != nil || len(out) != 3 || out[0] != (Sample{0, 9}) || out[1] != (Sample{2, 2}) || out[2] != (Sample{3, 3.25}) {
		t.Fatalf("DecodeBetween [2, 4) after one sample = %v, %v; want that sample, then 2 and 3", out, err)
	}
	if _, err := DecodeBetween(nil, b[:len(b)-2], 1, 2); !errors.Is(err, ErrCorrupt) {
		t.Errorf("a truncated chunk read for its first sample only: %v, want ErrCorrupt", err)
	}
}

func TestSplitCutsChunksNearMaxBytesOrAtMaxSpanAndCutsTheSameWayAgain(t *testing.T) {
	for _, c := range []struct {
		name string
		v    func(i int) float64
	}{
		{"noisy", func(i int) float64 { return 100 * (1 + math.Sin(float64(i)*1.7)) }},
		{"constant", func(int) float64 { return 5 }},
	} {
		s := make([]Sample, 20000)
		for i := range s {
			s[i] = Sample{T: int64(i) * 1000, V: c.v(i)}
		}
		var firsts []int64
		var sizes []int
		total := 0
		err := Split(s, func(first int64, b []byte) error {
			firsts = append(firsts, first)
			sizes = append(sizes, len(b))
			n, err := NumSamples(b)
			total += n
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if total != len(s) || len(firsts) < 2 {
			t.Fatalf("%s: %d chunks holding %d samples, want several holding %d", c.name, len(firsts), total, len(s))
		}
		for i, size := range sizes {
			if size > MaxBytes {
				t.Errorf("%s: chunk %d has %d bytes, more than %d", c.name, i, size, MaxBytes)
			}
			if i+1 < len(firsts) && firsts[i+1]-firsts[i] > MaxSpanMillis {
				t.Errorf("%s: chunk %d spans %d ms", c.name, i, firsts[i+1]-firsts[i])
			}
			if c.name == "noisy" && i+1 < len(sizes) && size < MaxBytes-2*maxSampleBytes {
				t.Errorf("noisy: chunk %d was cut at %d bytes", i, size)
			}
		}
		// Splitting again from the second chunk's first sample gives the
		// same cuts: a full chunk is rewritten unchanged.
		var again []int64
		from := int(firsts[1] / 1000)
		if err := Split(s[from:], func(first int64, _ []byte) error { again = append(again, first); return nil }); err != nil {
			t.Fatal(err)
		}
		if len(again) != len(firsts)-1 || again[0] != firsts[1] || again[len(again)-1] != firsts[len(firsts)-1] {
			t.Errorf("%s: cut again at %v, first time at %v", c.name, again, firsts[1:])
		}
	}
}

func TestMergeKeepsTimeOrderAndTheNewerValueOfADuplicate(t *testing.T) {
	got := Merge([]Sample{{1, 1}, {3, 3}, {5, 5}}, []Sample{{2, 20}, {3, 30}, {6, 60}})
	want := []Sample{{1, 1}, {2, 20}, {3, 30}, {5, 5}, {6, 60}}
	if len(got) != len(want) {
		t.Fatalf("merge = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("merge = %v, want %v", got, want)
		}
	}
}

func TestInsertPlacesALateSampleAndReplacesADuplicateWithoutTouchingTheOriginal(t *testing.T) {
	orig := []Sample{{1, 1}, {3, 3}}
	got := Insert(orig, Sample{2, 2})
	got = Insert(got, Sample{3, 33})
	got = Insert(got, Sample{4, 4})
	want := []Sample{{1, 1}, {2, 2}, {3, 33}, {4, 4}}
	if len(got) != len(want) {
		t.Fatalf("insert = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("insert = %v, want %v", got, want)
		}
	}
	if orig[1] != (Sample{3, 3}) {
		t.Errorf("the original slice changed: %v", orig)
	}
}

func TestWindowStartRoundsDownToTheWindowIncludingBefore1970(t *testing.T) {
	for _, c := range []struct{ t, want int64 }{{0, 0}, {WindowMillis - 1, 0}, {WindowMillis, WindowMillis}, {-1, -WindowMillis}} {
		if got := WindowStart(c.t); got != c.want {
			t.Errorf("WindowStart(%d) = %d, want %d", c.t, got, c.want)
		}
	}
}

func TestCountBeforeCountsTheSamplesBeforeACutAndNamesTheFirstAfter(t *testing.T) {
	var s []Sample
	for i := range 100 {
		s = append(s, Sample{T: int64(i) * 1000, V: float64(i)})
	}
	b, err := Encode(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		cut  int64
		n    int
		next int64
		ok   bool
	}{{-5, 0, 0, true}, {0, 0, 0, true}, {1, 1, 1000, true}, {50_500, 51, 51_000, true}, {99_000, 99, 99_000, true}, {99_001, 100, 0, false}} {
		n, next, ok, err := CountBefore(b, c.cut)
		if err != nil || n != c.n || next != c.next || ok != c.ok {
			t.Errorf("cut %d: %d before, next %d (%v), %v; want %d, %d (%v)", c.cut, n, next, ok, err, c.n, c.next, c.ok)
		}
	}
	if _, _, _, err := CountBefore(b[:len(b)/2], 50_000); err == nil {
		t.Error("a truncated chunk counted without an error")
	}
}
