package store

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/nomadscalerd/nomadscalerd/migrations"
	"github.com/nomadscalerd/nomadscalerd/store/chunk"
)

// headState is the part of raw history not yet in chunks: the samples of
// the open window per series, kept sorted in memory and logged write by
// write in the head bucket, so a crash loses nothing a WritePoints call
// acknowledged. When a write brings the first sample of a later window, a
// sealing round begins: every series with samples before it is due, and
// each write seals a share of the due series (see sealSpread), appending
// their samples to the series' last chunk until it is full (chunk.Full).
// Once none is due, the records holding only sealed samples are deleted.
//
// A point older than sealed goes straight into the chunks, unless
// its series is still due. So every chunk lies before the samples of its
// series' head, except after a crash in the middle of a round, when the
// replayed log repeats samples already sealed; reads merge then, and the
// next round merges them into their chunks again.
type headState struct {
	series map[string][]chunk.Sample
	sealed int64
	// due lists, sorted, the series whose samples before sealed are still
	// in memory; round is how many there were when the round began, and
	// spread over how many writes it is sealed. writes counts the writes
	// since the round began; counted, whether they span a whole window
	// (not the first round since Open).
	due     []string
	round   int
	spread  int
	writes  int
	counted bool
	log     []logRecord
	// sums is nil until the first ListSeries.
	sums map[string]chunkSum
	// rawCut is the latest Prune's raw cut: points before it are gone for
	// readers at once, though their chunk stays until all its points are
	// (see Prune). rollupCut is the same for rollups.
	rawCut, rollupCut int64
	// rollupsVisited is the rollup cut of the last prune that visited the
	// rollups (rollupVisitEvery), set when one has since this Open.
	rollupsVisited    int64
	rollupsVisitedSet bool
}

// keyRawCut and keyRollupCut are the meta keys keeping headState's cuts
// across restarts.
const (
	keyRawCut    = "raw_retention_cut"
	keyRollupCut = "rollup_retention_cut"
)

// logRecord is what memory keeps of one head-bucket record: its key and the
// span of its samples, to know when sealing makes it obsolete.
type logRecord struct {
	seq      uint64
	min, max int64
}

// headPoint is one sample of a named series, as logged.
type headPoint struct {
	series string
	s      chunk.Sample
}

// encodeLog writes points, sorted by series then time, as one head record:
// a count and a base time, then per point the series name front-coded
// against the previous one (the names of one write share long prefixes),
// the time as a varint from the base (0 for a tick's points) and the 8
// bytes of the value.
func encodeLog(pts []headPoint) []byte {
	buf := make([]byte, 0, 16+len(pts)*20)
	buf = binary.AppendUvarint(buf, uint64(len(pts)))
	base := pts[0].s.T
	buf = binary.AppendVarint(buf, base)
	prev := ""
	for _, p := range pts {
		shared := 0
		for shared < len(prev) && shared < len(p.series) && prev[shared] == p.series[shared] {
			shared++
		}
		buf = binary.AppendUvarint(buf, uint64(shared))
		buf = binary.AppendUvarint(buf, uint64(len(p.series)-shared))
		buf = append(buf, p.series[shared:]...)
		buf = binary.AppendVarint(buf, p.s.T-base)
		buf = binary.BigEndian.AppendUint64(buf, math.Float64bits(p.s.V))
		prev = p.series
	}
	return buf
}

// decodeLog reads a record of encodeLog.
func decodeLog(b []byte) ([]headPoint, error) {
	r := logReader{b: b}
	n := r.uvarint()
	base := r.varint()
	if r.err != nil || n > uint64(len(b)) {
		return nil, fmt.Errorf("head record header: %w", errShortRecord)
	}
	out := make([]headPoint, 0, n)
	prev := ""
	for range n {
		shared, l := r.uvarint(), r.uvarint()
		if r.err != nil || shared > uint64(len(prev)) || l > uint64(len(r.b)) {
			return nil, fmt.Errorf("head record point %d: %w", len(out), errShortRecord)
		}
		name := prev[:shared] + string(r.b[:l])
		r.b = r.b[l:]
		t := r.varint()
		if r.err != nil || len(r.b) < 8 {
			return nil, fmt.Errorf("head record point %d: %w", len(out), errShortRecord)
		}
		v := math.Float64frombits(binary.BigEndian.Uint64(r.b))
		r.b = r.b[8:]
		out = append(out, headPoint{series: name, s: chunk.Sample{T: base + t, V: v}})
		prev = name
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("head record has %d bytes after its last point", len(r.b))
	}
	return out, nil
}

var errShortRecord = errors.New("record is cut short or garbled")

type logReader struct {
	b   []byte
	err error
}

func (r *logReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errShortRecord
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *logReader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = errShortRecord
		return 0
	}
	r.b = r.b[n:]
	return v
}

// loadHeads rebuilds the head state from the file: sealed from the newest
// chunk of every series, the open windows by replaying the head records in
// order (a later write of a time replaces an earlier one, as it did when
// it was made). This is also what happens after a crash: a write either
// committed its record or left no trace.
func (d *DB) loadHeads() error {
	h := headState{series: map[string][]chunk.Sample{}, sealed: math.MinInt64, rawCut: math.MinInt64, rollupCut: math.MinInt64, spread: sealSpread}
	err := d.bolt.View(func(tx *bolt.Tx) error {
		for key, cut := range map[string]*int64{keyRawCut: &h.rawCut, keyRollupCut: &h.rollupCut} {
			if v := tx.Bucket(migrations.BucketMeta).Get([]byte(key)); v != nil {
				if len(v) != 8 {
					return fmt.Errorf("meta %s has %d bytes, want 8", key, len(v))
				}
				*cut = int64(binary.BigEndian.Uint64(v))
			}
		}
		root := tx.Bucket(migrations.BucketSeries)
		err := root.ForEachBucket(func(name []byte) error {
			_, v := root.Bucket(name).Cursor().Last()
			if v == nil {
				return nil
			}
			// A chunk that does not decode is db check's to report; the
			// file must still open so that it can.
			if s, err := chunk.Decode(nil, v); err == nil {
				h.sealed = max(h.sealed, chunk.WindowStart(s[len(s)-1].T)+chunk.WindowMillis)
			}
			return nil
		})
		if err != nil {
			return err
		}
		return tx.Bucket(migrations.BucketHead).ForEach(func(k, v []byte) error {
			if len(k) != 8 {
				return fmt.Errorf("head record key %x is not a sequence", k)
			}
			pts, err := decodeLog(v)
			if err != nil {
				// Lost either way; db check names it, and leaving it out
				// of the log keeps writes from tripping over it.
				return nil
			}
			rec := logRecord{seq: binary.BigEndian.Uint64(k), min: math.MaxInt64, max: math.MinInt64}
			// Points before the retention cut are gone: a record Prune
			// kept for its later points may still hold some.
			pts = slices.DeleteFunc(pts, func(p headPoint) bool { return p.s.T < h.rawCut })
			for _, p := range pts {
				h.series[p.series] = chunk.Insert(h.series[p.series], p.s)
				rec.min, rec.max = min(rec.min, p.s.T), max(rec.max, p.s.T)
			}
			if len(pts) > 0 {
				// Samples the log repeats from a sealed window (a crash
				// in a round) are sealed again by the next round: it
				// merges them into their chunks.
				h.sealed = min(h.sealed, chunk.WindowStart(rec.min))
			}
			h.log = append(h.log, rec)
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("load open window: %w", err)
	}
	d.heads = h
	return nil
}

// sortedPoints turns a write into head points sorted by series then time,
// keeping of several points at one series and time the last one given:
// the value a sequence of single writes would have left.
func sortedPoints(pts []Point) []headPoint {
	out := make([]headPoint, len(pts))
	for i, p := range pts {
		out[i] = headPoint{series: p.Series, s: chunk.Sample{T: p.T.UnixMilli(), V: p.V}}
	}
	byName := func(a, b headPoint) int {
		if c := cmp.Compare(a.series, b.series); c != 0 {
			return c
		}
		return cmp.Compare(a.s.T, b.s.T)
	}
	// A tick's points usually come in one order, tick after tick.
	if !slices.IsSortedFunc(out, byName) {
		slices.SortStableFunc(out, byName)
	}
	w := 0
	for i := range out {
		if w > 0 && out[w-1].series == out[i].series && out[w-1].s.T == out[i].s.T {
			out[w-1] = out[i]
			continue
		}
		out[w] = out[i]
		w++
	}
	return out[:w]
}

// mergeWindows adds samples (sorted, unique) to the chunks of series,
// replacing any at the same times, and notes in sums what the series'
// chunks gained. The chunks it rewrites are those holding times from the
// first sample to the last, and the chunk before them unless it is full:
// sealing a window appends to the series' last chunk, which stays the
// last key of the bucket, until the chunk is full (chunk.Full). A point
// older than that costs one read and rewrite of its chunk.
func mergeWindows(root *bolt.Bucket, series string, add []chunk.Sample, sums map[string]chunkSum) error {
	return mergeSpan(root, series, add, chunk.MaxSpanMillis, sums)
}

// mergeSpan is mergeWindows with another cap on a chunk's span.
func mergeSpan(root *bolt.Bucket, series string, add []chunk.Sample, maxSpan int64, sums map[string]chunkSum) error {
	if len(add) == 0 {
		return nil
	}
	b, err := root.CreateBucketIfNotExists([]byte(series))
	if err != nil {
		return fmt.Errorf("series %q: %w", series, err)
	}
	// Chunks are appended in time order, so full pages waste nothing.
	b.FillPercent = 1
	lo, hi := add[0].T, add[len(add)-1].T
	var old []chunk.Sample
	var keys [][]byte
	c := b.Cursor()
	// The chunk before lo may hold lo, or have room for more.
	var pk, pv []byte
	if k, _ := c.Seek(chunk.Key(lo)); k == nil {
		pk, pv = c.Last()
	} else {
		pk, pv = c.Prev()
	}
	if pk != nil {
		first, err := chunk.KeyTime(pk)
		if err != nil {
			return fmt.Errorf("series %q: %w", series, err)
		}
		// A chunk that does not decode is left as it is (db check
		// names it): one damaged chunk must not stop every write.
		if prev, err := chunk.Decode(nil, pv); err == nil {
			last := prev[len(prev)-1].T
			if last >= lo || !chunk.FullSpan(len(pv), len(prev), first, last, maxSpan) {
				old = prev
				keys = append(keys, append([]byte(nil), pk...))
			}
		}
	}
	for k, v := c.Seek(chunk.Key(lo)); k != nil; k, v = c.Next() {
		t, err := chunk.KeyTime(k)
		if err != nil {
			return fmt.Errorf("series %q: %w", series, err)
		}
		if t > hi {
			break
		}
		// A damaged chunk among the times written is replaced: what it
		// held cannot be read, and keeping it would leave two chunks
		// covering the same times.
		if dec, err := chunk.Decode(old, v); err == nil {
			old = dec
		}
		keys = append(keys, append([]byte(nil), k...))
	}
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return fmt.Errorf("series %q: %w", series, err)
		}
	}
	merged := chunk.Merge(old, add)
	if err := chunk.SplitSpan(merged, maxSpan, func(first int64, data []byte) error {
		return b.Put(chunk.Key(first), data)
	}); err != nil {
		return fmt.Errorf("series %q: %w", series, err)
	}
	sums[series] = sums[series].add(chunkSum{count: len(merged) - len(old), first: lo, last: hi, set: true})
	return nil
}

// chunkSum summarises a series' chunks for ListSeries, which would
// otherwise read every chunk's header (3.6 million at 5,000 series and
// 24 h) each time the recorder rolls up. Memory keeps one per series,
// built on the first ListSeries and kept by every write and prune; in a
// write it is the change, count added and the span written.
type chunkSum struct {
	count       int
	first, last int64
	set         bool // first and last mean something
	// hidden counts the points of the first chunk before the retention
	// cut: still in the file (Prune drops whole chunks), never read, so
	// not counted by ListSeries. first is then the first point after it.
	hidden int
}

func (a chunkSum) add(b chunkSum) chunkSum {
	switch {
	case !a.set:
		return b
	case !b.set:
		a.count += b.count
		a.hidden += b.hidden
		return a
	}
	return chunkSum{count: a.count + b.count, first: min(a.first, b.first), last: max(a.last, b.last), set: true, hidden: a.hidden + b.hidden}
}

// hideBeforeCut sets sum's hidden count and first point from the series'
// first chunk, the only one Prune leaves holding points before cut.
func hideBeforeCut(b *bolt.Bucket, sum chunkSum, cut int64) chunkSum {
	sum.hidden = 0
	if !sum.set || sum.first >= cut {
		return sum
	}
	_, v := b.Cursor().First()
	n, next, ok, err := chunk.CountBefore(v, cut)
	if err != nil {
		// A damaged chunk counts for nothing already (chunkSpan).
		return sum
	}
	sum.hidden, sum.first = n, cut
	if ok {
		sum.first = next
	}
	return sum
}

// chunkSpan summarises a bucket of chunks: how many points they hold and
// the first and last point's times (set is false for an empty bucket).
// Damaged chunks (db check names them) count for nothing.
func chunkSpan(b *bolt.Bucket) (chunkSum, error) {
	var count int
	err := b.ForEach(func(_, v []byte) error {
		if n, err := chunk.NumSamples(v); err == nil {
			count += n
		}
		return nil
	})
	if err != nil {
		return chunkSum{}, err
	}
	sum, err := edgeSpan(b)
	sum.count = count
	return sum, err
}

// edgeSpan is chunkSpan without the count: the first and last point's
// times, from the first and last chunk only, so it reads two chunks of a
// series, not every page of it.
func edgeSpan(b *bolt.Bucket) (chunkSum, error) {
	var sum chunkSum
	c := b.Cursor()
	k, _ := c.First()
	lk, v := c.Last()
	if k == nil {
		return sum, nil
	}
	var err error
	if sum.first, err = chunk.KeyTime(k); err != nil {
		return sum, err
	}
	if sum.last, err = chunk.KeyTime(lk); err != nil {
		return sum, err
	}
	if s, err := chunk.Decode(nil, v); err == nil {
		sum.last = s[len(s)-1].T
	}
	sum.set = true
	return sum, nil
}

// loadSums summarises every series' chunks with span (chunkSpan reads
// every chunk's header, edgeSpan the first and last chunk), with the
// points before the raw retention cut hidden.
func (d *DB) loadSums(span func(*bolt.Bucket) (chunkSum, error)) (map[string]chunkSum, error) {
	sums := map[string]chunkSum{}
	err := d.bolt.View(func(tx *bolt.Tx) error {
		root := tx.Bucket(migrations.BucketSeries)
		return root.ForEachBucket(func(name []byte) error {
			sum, err := span(root.Bucket(name))
			if err != nil {
				return fmt.Errorf("series %q: %w", name, err)
			}
			sum = hideBeforeCut(root.Bucket(name), sum, d.heads.rawCut)
			if sum.set {
				sums[string(name)] = sum
			}
			// The series' bucket and its edge chunks' pages at least: each
			// rollup round lists every series this way (SeriesSpans); counted,
			// a round over a copy of bench-scale's 1,000-series file mapped
			// 66 MiB at most instead of 84.
			return d.mapPages(tx, 3)
		})
	})
	if err != nil {
		return nil, fmt.Errorf("summarise series: %w", err)
	}
	return sums, nil
}
