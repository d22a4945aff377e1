package store

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/nomadscalerd/nomadscalerd/migrations"
	"github.com/nomadscalerd/nomadscalerd/store/chunk"
)

// Point is one sample of one series.
type Point struct {
	Series string
	T      time.Time
	V      float64
}

// Sample is a point of a known series.
type Sample struct {
	T time.Time `json:"t"`
	V float64   `json:"v"`
}

// SeriesInfo summarises a stored series.
type SeriesInfo struct {
	Name  string    `json:"name"`
	First time.Time `json:"first"`
	Last  time.Time `json:"last"`
	Count int       `json:"count"`
}

// SeriesName joins a policy and a metric into a series key.
func SeriesName(policy, metric string) string { return policy + "/" + metric }

// WritePoints stores every point in one transaction: one tick, one commit,
// however many series it touches. A crash leaves all or none of them, and
// once it returns nil the points survive a crash (see headState). Points
// may come in any order; a later write at a series' time replaces the
// value there, as does a later point in the same call. Any float64 is
// kept bit for bit, NaN and infinities included.
func (d *DB) WritePoints(pts []Point) error {
	if len(pts) == 0 {
		return nil
	}
	in := sortedPoints(pts)
	newest := in[0].s.T
	for _, p := range in {
		newest = max(newest, p.s.T)
	}
	d.hmu.Lock()
	defer d.hmu.Unlock()
	h := &d.heads
	// Points before the retention cut would never be read, and would be
	// counted by ListSeries: they are not stored.
	if in = slices.DeleteFunc(in, func(p headPoint) bool { return p.s.T < h.rawCut }); len(in) == 0 {
		return nil
	}
	// staged is the new head of every series this write changes, and the
	// round's fields below its new state; memory takes them only once the
	// transaction commits, so a failed write leaves memory as it leaves
	// the file.
	staged := make(map[string][]chunk.Sample, len(in))
	headOf := func(name string) []chunk.Sample {
		if s, ok := staged[name]; ok {
			return s
		}
		return h.series[name]
	}
	sealed, due, round, spread, writes := h.sealed, h.due, h.round, h.spread, h.writes+1
	// catchUp is the last round's series it had not reached when a later
	// window began (writes came slower than its spread assumed): this
	// write seals them whole, so none waits more than a window.
	var catchUp []string
	started := false
	if w := chunk.WindowStart(newest); w > sealed {
		started = true
		// A later window began: every series with samples before it is
		// due. The round is spread over half the writes the last window
		// had, at most sealSpread, so it ends well within this window.
		catchUp = due
		sealed, due = w, nil
		for name, head := range h.series {
			if _, late := slices.BinarySearch(catchUp, name); len(head) > 0 && head[0].T < w && !late {
				due = append(due, name)
			}
		}
		slices.Sort(due)
		round, spread = len(due), sealSpread
		if h.counted {
			spread = min(max(writes/2, 1), sealSpread)
		}
		writes = 1
	}
	isDue := func(name string) bool {
		_, found := slices.BinarySearch(due, name)
		if !found {
			_, found = slices.BinarySearch(catchUp, name)
		}
		return found
	}
	var logged []headPoint
	var newLog []logRecord
	gained := map[string]chunkSum{}
	err := d.update(func(tx *bolt.Tx) error {
		root := tx.Bucket(migrations.BucketSeries)
		for i := 0; i < len(in); {
			name := in[i].series
			toHead := isDue(name)
			head := headOf(name)
			var late []chunk.Sample
			for ; i < len(in) && in[i].series == name; i++ {
				if p := in[i]; p.s.T < sealed && !toHead {
					late = append(late, p.s)
				} else {
					head = chunk.Insert(head, p.s)
				}
			}
			staged[name] = head
			if err := mergeWindows(root, name, late, gained); err != nil {
				return err
			}
		}
		// This write's share of the round: sealing every series at once
		// would rewrite a page of every series' bucket in one commit
		// (hundreds of ms at 5,000 series); a share per write spreads
		// that over sealSpread writes.
		n := min(len(due), (round+spread-1)/spread)
		for _, name := range slices.Concat(catchUp, due[:n]) {
			head := headOf(name)
			k, _ := slices.BinarySearchFunc(head, sealed, func(s chunk.Sample, t int64) int { return cmp.Compare(s.T, t) })
			if err := mergeWindows(root, name, head[:k], gained); err != nil {
				return err
			}
			// A copy, so the sealed samples' memory is not held by the rest.
			staged[name] = slices.Clone(head[k:])
		}
		due = due[n:]
		// Log what a replay needs: samples still open, and while a round
		// runs everything, because records from before the window ended
		// are kept until the round is over and a replay must apply a
		// late write after them.
		for _, p := range in {
			if len(due) > 0 || p.s.T >= sealed {
				logged = append(logged, p)
			}
		}
		var err error
		newLog, err = d.rewriteLog(tx.Bucket(migrations.BucketHead), sealed, len(due) == 0, logged)
		return err
	})
	if err != nil {
		return err
	}
	for name, s := range staged {
		if len(s) == 0 {
			delete(h.series, name)
		} else {
			h.series[name] = s
		}
	}
	// From the first round on, writes counts whole windows.
	h.counted = h.counted || started
	h.sealed, h.due, h.round, h.spread, h.writes, h.log = sealed, due, round, spread, writes, newLog
	if h.sums != nil {
		for name, g := range gained {
			h.sums[name] = h.sums[name].add(g)
		}
	}
	return nil
}

// sealSpread is how many writes a sealing round is spread over at most:
// at 1 s ticks every series' last window is in a chunk a minute after it
// ended, and a write seals 1/60 of the series (83 of 5,000), a few hundred
// KiB of pages, instead of all of them.
const sealSpread = 60

// rewriteLog appends this write's logged points as a record and, once a
// round is over (done), drops or cuts down the records holding only
// sealed samples; it returns the log as memory should know it after the
// commit.
func (d *DB) rewriteLog(b *bolt.Bucket, sealed int64, done bool, logged []headPoint) ([]logRecord, error) {
	out := make([]logRecord, 0, len(d.heads.log)+1)
	for _, rec := range d.heads.log {
		k := binary.BigEndian.AppendUint64(nil, rec.seq)
		switch {
		case !done || rec.min >= sealed:
			out = append(out, rec)
		case rec.max < sealed:
			if err := b.Delete(k); err != nil {
				return nil, fmt.Errorf("head record %d: %w", rec.seq, err)
			}
		default:
			// A write that spanned the boundary: keep its samples that
			// are still open. Rare; ticks carry one time.
			pts, err := decodeLog(b.Get(k))
			if err != nil {
				return nil, fmt.Errorf("head record %d: %w", rec.seq, err)
			}
			pts = slices.DeleteFunc(pts, func(p headPoint) bool { return p.s.T < sealed })
			rec.min = sealed
			if err := b.Put(k, encodeLog(pts)); err != nil {
				return nil, fmt.Errorf("head record %d: %w", rec.seq, err)
			}
			out = append(out, rec)
		}
	}
	if len(logged) == 0 {
		return out, nil
	}
	seq, err := b.NextSequence()
	if err != nil {
		return nil, fmt.Errorf("head record: %w", err)
	}
	rec := logRecord{seq: seq, min: math.MaxInt64, max: math.MinInt64}
	for _, p := range logged {
		rec.min, rec.max = min(rec.min, p.s.T), max(rec.max, p.s.T)
	}
	// Records go in at the end of the bucket: full pages.
	b.FillPercent = 1
	if err := b.Put(binary.BigEndian.AppendUint64(nil, seq), encodeLog(logged)); err != nil {
		return nil, fmt.Errorf("head record %d: %w", seq, err)
	}
	return append(out, rec), nil
}

// Range returns the samples of series with from <= t < to, oldest first.
// A zero to means no upper bound.
func (d *DB) Range(series string, from, to time.Time) ([]Sample, error) {
	lo, hi := int64(math.MinInt64), int64(math.MaxInt64)
	if !from.IsZero() {
		lo = from.UnixMilli()
	}
	if !to.IsZero() {
		hi = to.UnixMilli()
	}
	var stored []chunk.Sample
	d.hmu.RLock()
	defer d.hmu.RUnlock()
	lo = max(lo, d.heads.rawCut)
	head := d.heads.series[series]
	// Once a sealing round has begun since Open, every point at or after
	// sealed is in the head (WritePoints sends only older ones to the
	// chunks), so a range from there on is read from memory alone. The
	// controller reads each policy's last minute every evaluation, within
	// the open window half the time: from memory, without a read
	// transaction or the chunk pages it would map (BenchmarkRangeOfASeries:
	// 343 ns against 10.5 us for 5 minutes). Before the first round the
	// head may hold a replayed late point without the chunk points after
	// it, and a head's first time says nothing.
	if len(head) == 0 || !d.heads.counted || lo < d.heads.sealed {
		err := d.bolt.View(func(tx *bolt.Tx) error {
			b := tx.Bucket(migrations.BucketSeries).Bucket([]byte(series))
			if b == nil {
				if len(head) == 0 {
					return fmt.Errorf("series %q: %w", series, ErrNotFound)
				}
				return nil
			}
			var err error
			var n int
			if stored, n, err = readChunks(b, lo, hi); err != nil {
				return fmt.Errorf("series %q: %w", series, err)
			}
			return d.mapRead(tx, n)
		})
		if err != nil {
			return nil, err
		}
	}
	// The chunks' samples are already within [lo, hi); the head's are cut
	// to it here. The head holds times the chunks hold too after a crash
	// in a sealing round (see headState), or times older than the chunks'
	// newest written late to a series still due: then the two are merged.
	head = head[sort.Search(len(head), func(i int) bool { return head[i].T >= lo }):]
	head = head[:sort.Search(len(head), func(i int) bool { return head[i].T >= hi })]
	if n := len(stored); n > 0 && len(head) > 0 && stored[n-1].T >= head[0].T {
		stored, head = chunk.Merge(stored, head), nil
	}
	out := make([]Sample, len(stored)+len(head))
	for i, s := range stored {
		out[i] = Sample{T: time.UnixMilli(s.T).UTC(), V: s.V}
	}
	for i, s := range head {
		out[len(stored)+i] = Sample{T: time.UnixMilli(s.T).UTC(), V: s.V}
	}
	return out, nil
}

// ListSeries summarises every raw series. The first call reads every
// chunk's header; later ones answer from memory.
func (d *DB) ListSeries() ([]SeriesInfo, error) {
	d.hmu.Lock()
	defer d.hmu.Unlock()
	if d.heads.sums == nil {
		sums, err := d.loadSums(chunkSpan)
		if err != nil {
			return nil, err
		}
		d.heads.sums = sums
	}
	return d.seriesInfos(d.heads.sums, true), nil
}

// SeriesSpans lists every raw series' first and last time, as ListSeries
// but without counting points (Count is 0): it reads each series' first
// and last chunk, not all of them, so the recorder's rollup round after a
// start costs two chunks a series instead of a pass over the whole file
// (every page of a day of history paged in and counted in the daemon's
// RSS). Memory's summaries answer once ListSeries has made them.
func (d *DB) SeriesSpans() ([]SeriesInfo, error) {
	d.hmu.RLock()
	defer d.hmu.RUnlock()
	spans := d.heads.sums
	if spans == nil {
		var err error
		if spans, err = d.loadSums(edgeSpan); err != nil {
			return nil, err
		}
	}
	return d.seriesInfos(spans, false), nil
}

// seriesInfos lists sums with the open window's samples added, sorted by
// name; counted fills Count. The caller holds hmu.
func (d *DB) seriesInfos(sums map[string]chunkSum, counted bool) []SeriesInfo {
	out := make([]SeriesInfo, 0, len(sums))
	add := func(name string, sum chunkSum) {
		if head := d.heads.series[name]; len(head) > 0 {
			sum = sum.add(chunkSum{count: len(head), first: head[0].T, last: head[len(head)-1].T, set: true})
		}
		if !sum.set {
			return
		}
		info := SeriesInfo{Name: name, First: time.UnixMilli(sum.first).UTC(), Last: time.UnixMilli(sum.last).UTC()}
		if counted {
			// Points before the retention cut still in a chunk are not
			// read, so not counted (chunkSum.hidden).
			info.Count = sum.count - sum.hidden
		}
		out = append(out, info)
	}
	for name, sum := range sums {
		add(name, sum)
	}
	for name := range d.heads.series {
		if _, ok := sums[name]; !ok {
			add(name, chunkSum{})
		}
	}
	slices.SortFunc(out, func(a, b SeriesInfo) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// RollupSpans lists every rollup series' first and last interval, as
// ListRollups but without counting (Count is 0): two chunks a series.
func (d *DB) RollupSpans() ([]SeriesInfo, error) {
	return d.listRollups(edgeSpan)
}

// ListRollups summarises every rollup series. Count reads the header of
// every chunk of the series' means (about one per 3 hours of minutes).
func (d *DB) ListRollups() ([]SeriesInfo, error) {
	return d.listRollups(chunkSpan)
}

func (d *DB) listRollups(span func(*bolt.Bucket) (chunkSum, error)) ([]SeriesInfo, error) {
	d.hmu.RLock()
	defer d.hmu.RUnlock()
	var out []SeriesInfo
	err := d.bolt.View(func(tx *bolt.Tx) error {
		root := tx.Bucket(migrations.BucketRollups)
		return root.ForEachBucket(func(name []byte) error {
			b := root.Bucket(name).Bucket(migrations.RollupFields()[0])
			if b == nil {
				return nil
			}
			sum, err := span(b)
			if err != nil {
				return fmt.Errorf("rollup %q: %w", name, err)
			}
			// The series' bucket and its first and last chunks' pages: a
			// rollup round lists every series' rollups each minute, which
			// mapped 129 MiB of a copy of bench-scale's 2,000-series file.
			if err := d.mapPages(tx, 3); err != nil {
				return err
			}
			if !sum.set {
				return nil
			}
			first := max(sum.first, min(d.heads.rollupCut, sum.last))
			out = append(out, SeriesInfo{Name: string(name), Count: sum.count,
				First: time.UnixMilli(first).UTC(), Last: time.UnixMilli(sum.last).UTC()})
			return nil
		})
	})
	return out, err
}

// Rollup is one aggregated interval of a series.
type Rollup struct {
	T     time.Time `json:"t"`
	Mean  float64   `json:"mean"`
	Min   float64   `json:"min"`
	Max   float64   `json:"max"`
	Count uint64    `json:"count"`
}

// WriteRollups stores aggregates in one transaction, keyed by interval
// start; a later rollup of an interval replaces the earlier one. Each field
// is a chunked series of its own (migrations.RollupFields; Count as a
// float64, exact to 2^53): four Gorilla streams take far less than one
// 32-byte value per minute, whose 30 days of retention outweighed a day of
// raw points twenty times.
func (d *DB) WriteRollups(series string, rs []Rollup) error {
	return d.WriteRollupsOf([]SeriesRollups{{Series: series, Rollups: rs}})
}

// SeriesRollups are rollups of one series, for WriteRollupsOf.
type SeriesRollups struct {
	Series  string
	Rollups []Rollup
}

// WriteRollupsOf writes the rollups of several series in one transaction,
// as WriteRollups writes each: a round of rollups over every series was a
// commit (and an fdatasync) per series, 4.6% of the daemon's CPU at 1,000
// policies.
func (d *DB) WriteRollupsOf(batch []SeriesRollups) error {
	type fieldSamples struct {
		series string
		fields [4][]chunk.Sample
	}
	var todo []fieldSamples
	for _, sr := range batch {
		if len(sr.Rollups) == 0 {
			continue
		}
		rs := slices.Clone(sr.Rollups)
		slices.SortStableFunc(rs, func(a, b Rollup) int { return a.T.Compare(b.T) })
		w := 0
		for i := range rs {
			if w > 0 && rs[w-1].T.UnixMilli() == rs[i].T.UnixMilli() {
				rs[w-1] = rs[i]
				continue
			}
			rs[w] = rs[i]
			w++
		}
		rs = rs[:w]
		fs := fieldSamples{series: sr.Series}
		for _, r := range rs {
			t := r.T.UnixMilli()
			for f, v := range []float64{r.Mean, r.Min, r.Max, float64(r.Count)} {
				fs.fields[f] = append(fs.fields[f], chunk.Sample{T: t, V: v})
			}
		}
		todo = append(todo, fs)
	}
	if len(todo) == 0 {
		return nil
	}
	return d.update(func(tx *bolt.Tx) error {
		for _, fs := range todo {
			b, err := tx.Bucket(migrations.BucketRollups).CreateBucketIfNotExists([]byte(fs.series))
			if err != nil {
				return fmt.Errorf("rollup %q: %w", fs.series, err)
			}
			for f, name := range migrations.RollupFields() {
				if err := mergeSpan(b, string(name), fs.fields[f], chunk.RollupMaxSpanMillis, map[string]chunkSum{}); err != nil {
					return fmt.Errorf("rollup %q: %w", fs.series, err)
				}
			}
		}
		return nil
	})
}

// RangeRollups returns the rollups of series with from <= t < to.
func (d *DB) RangeRollups(series string, from, to time.Time) ([]Rollup, error) {
	lo, hi := int64(math.MinInt64), int64(math.MaxInt64)
	if !from.IsZero() {
		lo = from.UnixMilli()
	}
	if !to.IsZero() {
		hi = to.UnixMilli()
	}
	d.hmu.RLock()
	defer d.hmu.RUnlock()
	lo = max(lo, d.heads.rollupCut)
	var fields [4][]chunk.Sample
	err := d.bolt.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(migrations.BucketRollups).Bucket([]byte(series))
		if b == nil {
			return fmt.Errorf("rollup %q: %w", series, ErrNotFound)
		}
		for f, name := range migrations.RollupFields() {
			fb := b.Bucket(name)
			if fb == nil {
				return fmt.Errorf("rollup %q: field %s missing", series, name)
			}
			all, n, err := readChunks(fb, lo, hi)
			if err != nil {
				return fmt.Errorf("rollup %q %s: %w", series, name, err)
			}
			if err := d.mapRead(tx, n); err != nil {
				return err
			}
			// Each field's chunks are cut where its own bytes run out.
			fields[f] = slices.DeleteFunc(all, func(x chunk.Sample) bool { return x.T < lo || x.T >= hi })
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]Rollup, 0, len(fields[0]))
	for f := 1; f < 4; f++ {
		if len(fields[f]) != len(fields[0]) {
			return nil, fmt.Errorf("rollup %q: %d %s, %d %s", series, len(fields[0]), migrations.RollupFields()[0], len(fields[f]), migrations.RollupFields()[f])
		}
	}
	for i, m := range fields[0] {
		for f := 1; f < 4; f++ {
			if fields[f][i].T != m.T {
				return nil, fmt.Errorf("rollup %q: %s and %s disagree at %d", series, migrations.RollupFields()[0], migrations.RollupFields()[f], m.T)
			}
		}
		out = append(out, Rollup{T: time.UnixMilli(m.T).UTC(), Mean: m.V, Min: fields[1][i].V, Max: fields[2][i].V, Count: uint64(fields[3][i].V)})
	}
	return out, nil
}

// readChunks decodes the chunks of b that may hold times in [lo, hi), from
// the last one starting at or before lo, and keeps their samples in
// [lo, hi); n is how many bytes of chunks it read in place (see
// DB.mapRead).
func readChunks(b *bolt.Bucket, lo, hi int64) (out []chunk.Sample, n int, err error) {
	c := b.Cursor()
	k, v := c.First()
	if lo > 0 {
		start := chunk.Key(lo)
		if k, _ := c.Seek(start); k == nil || string(k) > string(start) {
			var pk []byte
			if k == nil {
				pk, _ = c.Last()
			} else {
				pk, _ = c.Prev()
			}
			if pk != nil {
				start = append([]byte(nil), pk...)
			}
		}
		k, v = c.Seek(start)
	}
	for ; k != nil; k, v = c.Next() {
		t, err := chunk.KeyTime(k)
		if err != nil {
			return nil, n, err
		}
		if t >= hi {
			break
		}
		n += len(v)
		if out, err = chunk.DecodeBetween(out, v, lo, hi); err != nil {
			return nil, n, fmt.Errorf("chunk at %d: %w", t, err)
		}
	}
	return out, n, nil
}

// rollupVisitEvery is how far the rollup cut moves between the prunes that
// visit every rollup series. A prune runs every minute and its cut, 30 days
// back by default, moves a minute with it, while a rollup chunk holds about
// three hours: visiting each series' four field buckets every minute was
// 80% of a prune's page faults (at 2,000 series, 8,000 buckets) to delete a
// chunk once in hours. Readers stop seeing rollups before the cut at once
// (rollupCut); only their pages wait, at most this long.
const rollupVisitEvery = time.Hour

// Prune deletes raw history older than rawBefore and rollups older than
// rollupBefore, and returns how many points and rollups it deleted: the
// raw history and both cuts in one transaction, the rollups' chunks (once
// the cut has moved rollupVisitEvery) in batches after it. Raw points
// older than rawBefore are gone for Range at once (rollups likewise for
// RangeRollups); on disk they go a whole chunk at a time, once all the
// chunk's points are older than rawBefore (rewriting every series' oldest
// chunk at every prune would write far more than the history itself), so
// up to one chunk's span (chunk.MaxSpanMillis at most; about 20 minutes of
// 1 s request counts) stays in the file. The open window loses its points
// before rawBefore too (a series no longer written keeps its last window
// in memory until then), as does its log.
func (d *DB) Prune(rawBefore, rollupBefore time.Time) (int, error) {
	n, visit, err := d.pruneRaw(rawBefore, rollupBefore)
	if err != nil || !visit {
		return n, err
	}
	// Rollups have no open window in memory and readers cut them by
	// rollupCut, already stored: their chunks go without the lock that
	// holds off every raw read and write, a batch of series at a time.
	rcut := rollupBefore.UnixMilli()
	m, err := d.pruneRollups(rcut)
	if err != nil {
		return n + m, err
	}
	d.hmu.Lock()
	d.heads.rollupsVisited, d.heads.rollupsVisitedSet = rcut, true
	d.hmu.Unlock()
	return n + m, nil
}

// pruneRaw is Prune's raw history, open window and cuts, in one
// transaction under hmu, and whether the rollups are due a visit
// (rollupVisitEvery).
func (d *DB) pruneRaw(rawBefore, rollupBefore time.Time) (int, bool, error) {
	// Chunks leave the file while a reader might be between reading them
	// and the open window.
	d.hmu.Lock()
	defer d.hmu.Unlock()
	n := 0
	cut := rawBefore.UnixMilli()
	// What is left of each series that lost chunks, for ListSeries.
	left := map[string]chunkSum{}
	// The open window after the cut, and its log.
	heads := map[string][]chunk.Sample{}
	var keptLog []logRecord
	visitRollups := false
	err := d.update(func(tx *bolt.Tx) error {
		// A cut earlier than the last one moves it back: the clock had
		// jumped ahead and returned. Kept ahead, it would drop every new
		// point until real time caught up with it; what the jump's prune
		// took is gone either way.
		if cut != d.heads.rawCut {
			if err := tx.Bucket(migrations.BucketMeta).Put([]byte(keyRawCut), binary.BigEndian.AppendUint64(nil, uint64(cut))); err != nil {
				return fmt.Errorf("prune raw history: %w", err)
			}
		}
		root := tx.Bucket(migrations.BucketSeries)
		if err := d.pruneChunks(tx, root, cut, func(name []byte, c int) {
			n += c
			sum := d.heads.sums[string(name)]
			if l, ok := left[string(name)]; ok {
				sum = l
			}
			sum.count -= c
			left[string(name)] = sum
		}); err != nil {
			return fmt.Errorf("prune raw history: %w", err)
		}
		for name, sum := range left {
			b := root.Bucket([]byte(name))
			if b == nil {
				left[name] = chunkSum{}
				continue
			}
			k, _ := b.Cursor().First()
			first, err := chunk.KeyTime(k)
			if err != nil {
				return fmt.Errorf("prune raw history: series %q: %w", name, err)
			}
			sum.first = first
			left[name] = sum
		}
		if d.heads.sums != nil {
			// Every series whose first chunk the cut falls in hides more
			// of it now.
			for name, sum := range d.heads.sums {
				if l, ok := left[name]; ok {
					sum = l
				}
				if b := root.Bucket([]byte(name)); b != nil && sum.set && sum.first < cut {
					left[name] = hideBeforeCut(b, sum, cut)
				}
			}
		}
		for name, head := range d.heads.series {
			if k, _ := slices.BinarySearchFunc(head, cut, func(s chunk.Sample, t int64) int { return cmp.Compare(s.T, t) }); k > 0 {
				heads[name] = head[k:]
			}
		}
		// Records wholly before the cut go; one with later points stays,
		// and a replay leaves out its points before the cut (loadHeads).
		hb := tx.Bucket(migrations.BucketHead)
		for _, rec := range d.heads.log {
			if rec.max >= cut {
				keptLog = append(keptLog, rec)
				continue
			}
			if err := hb.Delete(binary.BigEndian.AppendUint64(nil, rec.seq)); err != nil {
				return fmt.Errorf("prune open window: record %d: %w", rec.seq, err)
			}
		}
		rcut := rollupBefore.UnixMilli()
		if rcut != d.heads.rollupCut {
			if err := tx.Bucket(migrations.BucketMeta).Put([]byte(keyRollupCut), binary.BigEndian.AppendUint64(nil, uint64(rcut))); err != nil {
				return fmt.Errorf("prune rollups: %w", err)
			}
		}
		visitRollups = !d.heads.rollupsVisitedSet || rcut < d.heads.rollupsVisited || rcut-d.heads.rollupsVisited >= rollupVisitEvery.Milliseconds()
		return nil
	})
	if err == nil {
		for name, head := range heads {
			if len(head) == 0 {
				delete(d.heads.series, name)
			} else {
				// A copy, so the dropped points' memory is not held.
				d.heads.series[name] = slices.Clone(head)
			}
		}
		d.heads.log = keptLog
		d.heads.rawCut = cut
		d.heads.rollupCut = rollupBefore.UnixMilli()
	}
	if err == nil && d.heads.sums != nil {
		for name, sum := range left {
			if sum.set {
				d.heads.sums[name] = sum
			} else {
				delete(d.heads.sums, name)
			}
		}
	}
	return n, visitRollups, err
}

// rollupPruneBatch is how many series' rollups one transaction of a
// rollup visit prunes. A visit over every series in one transaction held
// bbolt's writer for 474 ms at 1,000 series with a month of rollups (and
// every raw read and write with it, when it ran under hmu): the recorder's
// tick and the rollup round wait for a batch at most.
const rollupPruneBatch = 100

// pruneRollups deletes every series' rollup chunks wholly before rcut, and
// the series left without rollups, rollupPruneBatch series a transaction.
func (d *DB) pruneRollups(rcut int64) (int, error) {
	var names [][]byte
	if err := d.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(migrations.BucketRollups).ForEachBucket(func(name []byte) error {
			names = append(names, append([]byte(nil), name...))
			return nil
		})
	}); err != nil {
		return 0, fmt.Errorf("prune rollups: %w", err)
	}
	n := 0
	for len(names) > 0 {
		batch := names[:min(rollupPruneBatch, len(names))]
		names = names[len(batch):]
		m := 0
		if err := d.update(func(tx *bolt.Tx) error {
			rollups := tx.Bucket(migrations.BucketRollups)
			for _, name := range batch {
				b := rollups.Bucket(name)
				if b == nil {
					// Gone since the listing: nothing to prune.
					continue
				}
				if err := d.pruneChunks(tx, b, rcut, func(field []byte, c int) {
					if string(field) == string(migrations.RollupFields()[0]) {
						m += c
					}
				}); err != nil {
					return fmt.Errorf("%q: %w", name, err)
				}
				if k, _ := b.Cursor().First(); k == nil {
					if err := rollups.DeleteBucket(name); err != nil {
						return fmt.Errorf("%q: %w", name, err)
					}
				}
			}
			return nil
		}); err != nil {
			return n, fmt.Errorf("prune rollups: %w", err)
		}
		n += m
		if d.afterRollupBatch != nil {
			d.afterRollupBatch()
		}
	}
	return n, nil
}

// pruneChunks deletes, in every series, the chunks whose samples are all
// before cut (a chunk's samples are before the next chunk's first time),
// telling gone how many samples each series lost, and deletes series left
// empty.
func (d *DB) pruneChunks(tx *bolt.Tx, root *bolt.Bucket, cut int64, gone func(name []byte, n int)) error {
	var empty [][]byte
	err := root.ForEachBucket(func(name []byte) error {
		// The bucket's page and its first chunk's: a prune visits every
		// series each minute, which at 2,000 series mapped 227 MiB of the
		// file in one transaction. Released inside the write transaction
		// as after a read: its nodes read the same pages again from the
		// page cache, and nothing is written through the mapping.
		if err := d.mapPages(tx, 2); err != nil {
			return err
		}
		b := root.Bucket(name)
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.First() {
			k = append([]byte(nil), k...)
			// A damaged chunk (db check names it) counts for nothing and
			// goes like any other once a later chunk starts before cut.
			n, _ := chunk.NumSamples(v)
			first, err := chunk.KeyTime(k)
			if err != nil {
				return fmt.Errorf("%q: %w", name, err)
			}
			var before bool
			if nk, _ := c.Next(); nk != nil {
				next, err := chunk.KeyTime(nk)
				if err != nil {
					return fmt.Errorf("%q: %w", name, err)
				}
				before = next <= cut
			}
			if !before && first < cut {
				// The chunk the cut falls in, or one before a gap.
				if s, err := chunk.Decode(nil, v); err == nil {
					before = s[len(s)-1].T < cut
				}
			}
			if !before {
				break
			}
			if err := b.Delete(k); err != nil {
				return fmt.Errorf("%q: %w", name, err)
			}
			gone(name, n)
		}
		if k, _ := c.First(); k == nil {
			empty = append(empty, append([]byte(nil), name...))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, name := range empty {
		if err := root.DeleteBucket(name); err != nil {
			return fmt.Errorf("%q: %w", name, err)
		}
	}
	return nil
}

// seek positions c at the first key at or after from; a zero from means the
// beginning (its unix milliseconds are negative and would wrap).
func seek(c *bolt.Cursor, from time.Time) ([]byte, []byte) {
	if from.IsZero() || from.UnixMilli() < 0 {
		return c.First()
	}
	return c.Seek(timeKey(from))
}
