// Package chunk is the on-disk encoding of raw metric history: a run of
// samples of one series, compressed with the Gorilla
// encoding (delta-of-delta timestamps, XOR'd values) of Prometheus' tsdb.
// It has no knowledge of bbolt so that both the store and the schema
// migrations can use it.
package chunk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// WindowMillis is the span of a window, the unit in which the store keeps
// the newest samples open in memory and seals them into chunks: samples of
// [start, start+WindowMillis) for a start that is a multiple of it. Two
// minutes is 120 samples at the recorder's default 1 s interval.
const WindowMillis int64 = 2 * 60 * 1000

// MaxBytes caps a chunk value. A chunk is appended to, window after
// window, until it nears this; two such values with their 8-byte keys and
// bbolt's 16-byte element headers fill a 4 KiB page (2x2024+16 = 4064).
// Smaller chunks one per window leave pages less than half full: bbolt
// splits a node that grew by one entry per transaction near its middle.
const MaxBytes = 2000

// maxSampleBytes is the most one sample can add to a chunk: a 68-bit
// timestamp delta-of-delta and a 77-bit XOR'd value.
const maxSampleBytes = 19

// MaxSpanMillis caps the time a chunk covers, so retention, which drops
// whole chunks, keeps at most this much past its cut (a constant series
// compresses so well that MaxBytes would take hours).
const MaxSpanMillis int64 = 60 * 60 * 1000

// MaxSamples caps one chunk: the encoding counts samples in a uint16.
const MaxSamples = 1 << 14

// formatXOR is the first byte of a chunk value, so another encoding can be
// added later without guessing from the bytes.
const formatXOR = byte(chunkenc.EncXOR)

// ErrCorrupt is returned for a chunk value that does not decode.
var ErrCorrupt = errors.New("corrupt chunk")

// Sample is one timestamp in unix milliseconds and its value.
type Sample struct {
	T int64
	V float64
}

// WindowStart is the start of the window holding t (unix milliseconds),
// rounding down also for times before 1970.
func WindowStart(t int64) int64 {
	w := t / WindowMillis * WindowMillis
	if w > t {
		w -= WindowMillis
	}
	return w
}

// Key encodes t as 8 big-endian bytes, the same time keys as the rest of
// the store, so byte order is time order (for times after 1970) and a
// cursor Seek finds a time range.
func Key(t int64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], uint64(t))
	return k[:]
}

// KeyTime decodes Key.
func KeyTime(k []byte) (int64, error) {
	if len(k) != 8 {
		return 0, fmt.Errorf("time key has %d bytes, want 8", len(k))
	}
	return int64(binary.BigEndian.Uint64(k)), nil
}

// Encode compresses samples, which must be sorted by time without
// duplicates and number at most MaxSamples.
func Encode(s []Sample) ([]byte, error) {
	if len(s) == 0 || len(s) > MaxSamples {
		return nil, fmt.Errorf("chunk of %d samples, want 1 to %d", len(s), MaxSamples)
	}
	c := chunkenc.NewXORChunk()
	app, err := c.Appender()
	if err != nil {
		return nil, fmt.Errorf("chunk appender: %w", err)
	}
	for i, x := range s {
		if i > 0 && x.T <= s[i-1].T {
			return nil, fmt.Errorf("chunk sample %d at %d is not after %d", i, x.T, s[i-1].T)
		}
		app.Append(x.T, x.V)
	}
	b := c.Bytes()
	out := make([]byte, 1+len(b))
	out[0] = formatXOR
	copy(out[1:], b)
	return out, nil
}

// NumSamples reads the sample count from a chunk's header without decoding
// it.
func NumSamples(b []byte) (int, error) {
	if len(b) < 3 || b[0] != formatXOR {
		return 0, fmt.Errorf("%w: %d bytes, format %x", ErrCorrupt, len(b), firstByte(b))
	}
	return int(binary.BigEndian.Uint16(b[1:3])), nil
}

// Decode appends the samples of chunk b to dst. Garbage must give an
// error, not a panic, because db check decodes whatever is on disk.
func Decode(dst []Sample, b []byte) (out []Sample, err error) {
	return DecodeBetween(dst, b, math.MinInt64, math.MaxInt64)
}

// DecodeBetween appends the samples of chunk b with lo <= T < hi to dst:
// a read of the last minutes of a series decodes the whole chunk that
// holds them (XOR decodes in order), but keeps only what it asked for.
// The chunk is checked whole, as Decode checks it.
func DecodeBetween(dst []Sample, b []byte, lo, hi int64) (out []Sample, err error) {
	n, err := NumSamples(b)
	if err != nil {
		return dst, err
	}
	if n == 0 {
		// Encode never writes an empty chunk: zeroed count bytes are damage,
		// and every reader takes a decoded chunk's last sample.
		return dst, fmt.Errorf("%w: header says 0 samples", ErrCorrupt)
	}
	defer func() {
		if r := recover(); r != nil {
			out, err = dst, fmt.Errorf("%w: %v", ErrCorrupt, r)
		}
	}()
	c, err := chunkenc.FromData(chunkenc.EncXOR, b[1:])
	if err != nil {
		return dst, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	it := c.Iterator(nil)
	start, got := len(dst), 0
	for it.Next() == chunkenc.ValFloat {
		got++
		if t, v := it.At(); t >= lo && t < hi {
			dst = append(dst, Sample{T: t, V: v})
		}
	}
	if err := it.Err(); err != nil {
		return dst[:start], fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	if got != n {
		return dst[:start], fmt.Errorf("%w: decoded %d samples, header says %d", ErrCorrupt, got, n)
	}
	return dst, nil
}

// CountBefore counts a chunk's samples before cut, reading no further than
// the first one at or after it, whose time it returns too (ok false when
// every sample is before cut). Prune's bookkeeping of the points a
// retention cut hides calls it once per series.
func CountBefore(b []byte, cut int64) (n int, next int64, ok bool, err error) {
	if _, err := NumSamples(b); err != nil {
		return 0, 0, false, err
	}
	defer func() {
		if r := recover(); r != nil {
			n, next, ok, err = 0, 0, false, fmt.Errorf("%w: %v", ErrCorrupt, r)
		}
	}()
	c, err := chunkenc.FromData(chunkenc.EncXOR, b[1:])
	if err != nil {
		return 0, 0, false, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	it := c.Iterator(nil)
	for it.Next() == chunkenc.ValFloat {
		t, _ := it.At()
		if t >= cut {
			return n, t, true, nil
		}
		n++
	}
	if err := it.Err(); err != nil {
		return 0, 0, false, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return n, 0, false, nil
}

// Full says whether no sample would be appended to a chunk of this many
// bytes and samples spanning first to last: Split would start a new one.
func Full(size, n int, first, last int64) bool {
	return FullSpan(size, n, first, last, MaxSpanMillis)
}

// FullSpan is Full with another cap on the time a chunk covers.
func FullSpan(size, n int, first, last, maxSpan int64) bool {
	return size+maxSampleBytes > MaxBytes || n >= MaxSamples || last-first >= maxSpan
}

// RollupMaxSpanMillis caps the span of a chunk of 1-minute rollups: a day
// is 1,440 of them, so a chunk is cut at MaxBytes first unless they
// barely change.
const RollupMaxSpanMillis int64 = 24 * 60 * 60 * 1000

// Split encodes samples (sorted, unique) into chunks, each as full as Full
// allows, calling put with each chunk's first time and bytes. Cut points
// depend only on the samples from a chunk's first one, so splitting a run
// that starts with a full chunk's samples gives that chunk back unchanged.
func Split(s []Sample, put func(first int64, b []byte) error) error {
	return SplitSpan(s, MaxSpanMillis, put)
}

// SplitSpan is Split with another cap on the time a chunk covers.
func SplitSpan(s []Sample, maxSpan int64, put func(first int64, b []byte) error) error {
	for len(s) > 0 {
		c := chunkenc.NewXORChunk()
		app, err := c.Appender()
		if err != nil {
			return fmt.Errorf("chunk appender: %w", err)
		}
		n := 0
		for n < len(s) && (n == 0 || !FullSpan(1+len(c.Bytes()), n, s[0].T, s[n-1].T, maxSpan)) {
			if n > 0 && s[n].T <= s[n-1].T {
				return fmt.Errorf("chunk sample at %d is not after %d", s[n].T, s[n-1].T)
			}
			if s[n].T-s[0].T >= maxSpan {
				break
			}
			app.Append(s[n].T, s[n].V)
			n++
		}
		b := c.Bytes()
		out := make([]byte, 1+len(b))
		out[0] = formatXOR
		copy(out[1:], b)
		if err := put(s[0].T, out); err != nil {
			return err
		}
		s = s[n:]
	}
	return nil
}

// Merge returns the union of a and b, both sorted and unique, in time
// order; where both hold a time, b's value wins (it is the newer write).
func Merge(a, b []Sample) []Sample {
	out := make([]Sample, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i].T < b[j].T:
			out = append(out, a[i])
			i++
		case a[i].T > b[j].T:
			out = append(out, b[j])
			j++
		default:
			out = append(out, b[j])
			i++
			j++
		}
	}
	out = append(out, a[i:]...)
	return append(out, b[j:]...)
}

// Insert puts x into s (sorted, unique) and returns the result; a sample
// already at x.T is replaced. Appending in order, the common case, does
// not copy.
func Insert(s []Sample, x Sample) []Sample {
	if n := len(s); n == 0 || s[n-1].T < x.T {
		return append(s, x)
	}
	lo, hi := 0, len(s)
	for lo < hi {
		m := (lo + hi) / 2
		if s[m].T < x.T {
			lo = m + 1
		} else {
			hi = m
		}
	}
	// Copy rather than shift in place: s may be shared with a reader or
	// with state that stands if the caller's transaction fails.
	out := make([]Sample, 0, len(s)+1)
	out = append(out, s[:lo]...)
	out = append(out, x)
	if s[lo].T == x.T {
		lo++
	}
	return append(out, s[lo:]...)
}

func firstByte(b []byte) any {
	if len(b) == 0 {
		return "none"
	}
	return b[0]
}
