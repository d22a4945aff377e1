package store

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/nomadscalerd/nomadscalerd/migrations"
	"github.com/nomadscalerd/nomadscalerd/store/chunk"
)

// model is what a series should hold: the last value written per time.
type model map[int64]float64

func (m model) want(from, to time.Time) []Sample {
	var out []Sample
	for t, v := range m {
		at := time.UnixMilli(t).UTC()
		if (from.IsZero() || !at.Before(from)) && (to.IsZero() || at.Before(to)) {
			out = append(out, Sample{T: at, V: v})
		}
	}
	sortSamples(out)
	return out
}

func sortSamples(s []Sample) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j].T.Before(s[j-1].T); j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

func sameSamples(t *testing.T, what string, got, want []Sample) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d samples, want %d\n got %v\nwant %v", what, len(got), len(want), got, want)
	}
	for i := range want {
		if !got[i].T.Equal(want[i].T) || math.Float64bits(got[i].V) != math.Float64bits(want[i].V) {
			t.Fatalf("%s: sample %d = %v %v, want %v %v", what, i, got[i].T, got[i].V, want[i].T, want[i].V)
		}
	}
}

func TestEveryValueReadsBackBitForBitFromChunksAndFromTheOpenWindowIncludingNaNAndInfinities(t *testing.T) {
	d := openTemp(t)
	special := []float64{math.NaN(), math.Inf(1), math.Inf(-1), math.Copysign(0, -1), math.MaxFloat64, math.SmallestNonzeroFloat64, 0.1, -3}
	m := model{}
	// Five minutes at 1 s: two sealed windows and an open one.
	for i := range 300 {
		at := t0.Add(time.Duration(i) * time.Second)
		v := special[i%len(special)]
		if err := d.WritePoints([]Point{{"p/m", at, v}}); err != nil {
			t.Fatal(err)
		}
		m[at.UnixMilli()] = v
	}
	if len(d.heads.series["p/m"]) == 0 {
		t.Fatal("nothing is in the open window; the test does not cover it")
	}
	got, err := d.Range("p/m", time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	sameSamples(t, "whole series", got, m.want(time.Time{}, time.Time{}))
}

func TestPointsOutOfOrderOrAtATimeWrittenBeforeKeepTimeOrderAndTheLastValueWritten(t *testing.T) {
	d := openTemp(t)
	m := model{}
	write := func(pts ...Point) {
		t.Helper()
		if err := d.WritePoints(pts); err != nil {
			t.Fatal(err)
		}
		for _, p := range pts {
			m[p.T.UnixMilli()] = p.V
		}
	}
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	write(Point{"p/m", at(10), 1}, Point{"p/m", at(5), 2}, Point{"p/m", at(10), 3}) // the later of two in one call wins
	write(Point{"p/m", at(7), 4}, Point{"p/m", at(5), 5})                           // into the open window, out of order
	write(Point{"p/m", at(200), 6})                                                 // seals the first window
	write(Point{"p/m", at(7), 7}, Point{"p/m", at(8), 8})                           // late: into a sealed chunk
	write(Point{"p/m", at(400), 9}, Point{"p/m", at(130), 10})                      // seals again, one late point in the same call
	got, err := d.Range("p/m", time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	sameSamples(t, "after late and repeated writes", got, m.want(time.Time{}, time.Time{}))
	rep, err := d.Check()
	if err != nil || len(rep.Problems) > 0 {
		t.Fatalf("check: %v, %v", rep.Problems, err)
	}
}

func TestRangeAcrossChunkBoundariesReturnsExactlyThePointsWithinBounds(t *testing.T) {
	d := openTemp(t)
	r := rand.New(rand.NewPCG(3, 4))
	m := model{}
	// Irregular times, 0.5 s to 4 s apart, over about 20 windows.
	at := t0
	for range 100 {
		var pts []Point
		for range 10 {
			at = at.Add(time.Duration(500+r.IntN(3500)) * time.Millisecond)
			v := 100 + 10*r.NormFloat64() // full precision: a chunk per ~250 points
			pts = append(pts, Point{"p/m", at, v})
			m[at.UnixMilli()] = v
		}
		if err := d.WritePoints(pts); err != nil {
			t.Fatal(err)
		}
	}
	if rep, err := d.Check(); err != nil || rep.Keys["series"] < 3 {
		t.Fatalf("%d chunks, %v; the test needs several", rep.Keys["series"], err)
	}
	span := at.Sub(t0)
	bounds := [][2]time.Time{
		{time.Time{}, time.Time{}},
		{t0.Add(2 * time.Minute), t0.Add(4 * time.Minute)},
		{t0.Add(2*time.Minute - time.Millisecond), t0.Add(4*time.Minute + time.Millisecond)},
		{at.Add(-time.Minute), time.Time{}}, // the open window and the one before
		{at.Add(time.Second), time.Time{}},  // after everything
	}
	for range 50 {
		a := t0.Add(time.Duration(r.Int64N(int64(span))))
		bounds = append(bounds, [2]time.Time{a, a.Add(time.Duration(r.Int64N(int64(10 * time.Minute))))})
	}
	for _, b := range bounds {
		got, err := d.Range("p/m", b[0], b[1])
		if err != nil {
			t.Fatal(err)
		}
		sameSamples(t, fmt.Sprintf("range [%v, %v)", b[0], b[1]), got, m.want(b[0], b[1]))
	}
}

func TestListSeriesCountsChunksAndTheOpenWindowTogether(t *testing.T) {
	d := openTemp(t)
	for i := range 250 {
		if err := d.WritePoints([]Point{{"a/x", t0.Add(time.Duration(i) * time.Second), float64(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.WritePoints([]Point{{"b/only-open", t0.Add(249 * time.Second), 1}}); err != nil {
		t.Fatal(err)
	}
	got, err := d.ListSeries()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Name != "a/x" || got[0].Count != 250 || !got[0].First.Equal(t0) || !got[0].Last.Equal(t0.Add(249*time.Second)) {
		t.Fatalf("a/x = %+v", got)
	}
	if got[1].Name != "b/only-open" || got[1].Count != 1 {
		t.Fatalf("b/only-open = %+v", got[1])
	}
}

// crashCopy copies the file as it is on disk now, with d still open and
// nothing closed or flushed: what a crash at this moment leaves behind.
func crashCopy(t *testing.T, d *DB) string {
	t.Helper()
	data, err := os.ReadFile(d.Path())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "crashed.db")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestReopeningAfterAnUncleanCloseKeepsEveryAcknowledgedPointOfChunksAndOpenWindow(t *testing.T) {
	d := openTemp(t)
	m := map[string]model{}
	for i := range 200 {
		var pts []Point
		for s := range 3 {
			name := fmt.Sprintf("p%d/m", s)
			v := float64(i*10 + s)
			if i == 150 && s == 0 {
				v = math.NaN()
			}
			pts = append(pts, Point{name, t0.Add(time.Duration(i) * time.Second), v})
			if m[name] == nil {
				m[name] = model{}
			}
			m[name][pts[s].T.UnixMilli()] = v
		}
		if err := d.WritePoints(pts); err != nil {
			t.Fatal(err)
		}
	}
	// A late point into the sealed window is part of what was acknowledged.
	if err := d.WritePoints([]Point{{"p1/m", t0.Add(3 * time.Second), -1}}); err != nil {
		t.Fatal(err)
	}
	m["p1/m"][t0.Add(3*time.Second).UnixMilli()] = -1
	c, err := Open(crashCopy(t, d), Options{Migrate: true})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer c.Close()
	rep, err := c.Check()
	if err != nil || len(rep.Problems) > 0 {
		t.Fatalf("check after crash: %v, %v", rep.Problems, err)
	}
	if rep.Keys["head"] == 0 {
		t.Fatal("nothing was in the open window at the crash; the test does not cover it")
	}
	for name, want := range m {
		got, err := c.Range(name, time.Time{}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		sameSamples(t, name+" after crash", got, want.want(time.Time{}, time.Time{}))
	}
	// Writing on after the crash seals the replayed window like any
	// other, a share of the series per write.
	for i := range 3 {
		at := t0.Add(10*time.Minute + time.Duration(i)*time.Second)
		if err := c.WritePoints([]Point{{"p0/m", at, 5}}); err != nil {
			t.Fatal(err)
		}
		m["p0/m"][at.UnixMilli()] = 5
	}
	got, err := c.Range("p0/m", time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	sameSamples(t, "p0/m after writing on", got, m["p0/m"].want(time.Time{}, time.Time{}))
	if n := len(c.heads.series["p1/m"]); n != 0 {
		t.Errorf("p1/m still has %d samples in the open window after a round of writes in a later window", n)
	}
	// The records from before the crash are gone; the three writes of
	// the new window remain.
	if rep, err := c.Check(); err != nil || len(rep.Problems) > 0 || rep.Keys["head"] != 3 {
		t.Errorf("after the round: %+v, %v; want no problems and 3 records", rep, err)
	}
}

func TestAWriteWhoseCommitFailsLeavesNoTraceInMemoryOrFile(t *testing.T) {
	d := openTemp(t)
	if err := d.WritePoints([]Point{{"p/m", t0, 1}}); err != nil {
		t.Fatal(err)
	}
	rw := d.bolt
	closed, err := bolt.Open(d.path+".closed", 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := closed.Close(); err != nil {
		t.Fatal(err)
	}
	d.bolt = closed
	// A point of a later window: the failed write would also have sealed.
	if err := d.WritePoints([]Point{{"p/m", t0.Add(time.Second), 2}, {"p/m", t0.Add(5 * time.Minute), 3}}); err == nil {
		t.Fatal("a write to a closed database succeeded")
	}
	d.bolt = rw
	got, err := d.Range("p/m", time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	sameSamples(t, "after a failed write", got, []Sample{{T: t0, V: 1}})
	if err := d.WritePoints([]Point{{"p/m", t0.Add(5 * time.Minute), 4}}); err != nil {
		t.Fatal(err)
	}
	got, err = d.Range("p/m", time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	sameSamples(t, "after writing again", got, []Sample{{T: t0, V: 1}, {T: t0.Add(5 * time.Minute), V: 4}})
}

func TestPruneDropsEveryChunkEndingBeforeTheCutAndLeavesTheRestAndTheOpenWindow(t *testing.T) {
	d := openTemp(t)
	// Full-precision values, about 8 bytes each: a chunk every 4 minutes
	// or so.
	const n = 2000
	for i := 0; i < n; i += 10 {
		var pts []Point
		for j := i; j < i+10; j++ {
			pts = append(pts, Point{"p/m", t0.Add(time.Duration(j) * time.Second), 100 * math.Sin(float64(j)*1.7)})
		}
		if err := d.WritePoints(pts); err != nil {
			t.Fatal(err)
		}
	}
	var firsts []int64
	var counts []int
	if err := d.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(migrations.BucketSeries).Bucket([]byte("p/m")).ForEach(func(k, v []byte) error {
			at, err := chunk.KeyTime(k)
			firsts = append(firsts, at)
			c, _ := chunk.NumSamples(v)
			counts = append(counts, c)
			return err
		})
	}); err != nil {
		t.Fatal(err)
	}
	if len(firsts) < 5 {
		t.Fatalf("%d chunks; the test needs at least 5", len(firsts))
	}
	// One second into the fourth chunk: the three before it end before
	// the cut, the fourth does not.
	cut := time.UnixMilli(firsts[3]).Add(time.Second)
	pruned, err := d.Prune(cut, t0)
	if err != nil {
		t.Fatal(err)
	}
	if want := counts[0] + counts[1] + counts[2]; pruned != want {
		t.Fatalf("pruned %d points, want the first three chunks' %d", pruned, want)
	}
	got, err := d.Range("p/m", time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	// The fourth chunk stays, but its point before the cut is not read.
	if len(got) != n-pruned-1 || !got[0].T.Equal(cut) || !got[len(got)-1].T.Equal(t0.Add((n-1)*time.Second)) {
		t.Fatalf("after prune: %d samples from %v to %v", len(got), got[0].T, got[len(got)-1].T)
	}
}

func TestRangeOfASeriesOnlyInTheOpenWindowIsFoundAndOfNoneIsNotFound(t *testing.T) {
	d := openTemp(t)
	if err := d.WritePoints([]Point{{"p/m", t0, 1}}); err != nil {
		t.Fatal(err)
	}
	got, err := d.Range("p/m", t0, t0.Add(time.Second))
	if err != nil || len(got) != 1 {
		t.Fatalf("open-window series: %v, %v", got, err)
	}
	if _, err := d.Range("q/m", time.Time{}, time.Time{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown series: %v, want ErrNotFound", err)
	}
}

func TestSealingAWindowIsSpreadOverSealSpreadWritesAndACrashInTheRoundLosesNoLateWrite(t *testing.T) {
	d := openTemp(t)
	const series = 2 * sealSpread // two series sealed per write
	m := map[string]model{}
	name := func(s int) string { return fmt.Sprintf("s%02d/m", s) }
	tick := func(db *DB, at time.Time) {
		t.Helper()
		var pts []Point
		for s := range series {
			v := float64(at.Unix()%100 + int64(s))
			pts = append(pts, Point{name(s), at, v})
			if m[name(s)] == nil {
				m[name(s)] = model{}
			}
			m[name(s)][at.UnixMilli()] = v
		}
		if err := db.WritePoints(pts); err != nil {
			t.Fatal(err)
		}
	}
	chunks := func(db *DB) int {
		t.Helper()
		rep, err := db.Check()
		if err != nil || len(rep.Problems) > 0 {
			t.Fatalf("check: %v, %v", rep.Problems, err)
		}
		return rep.Keys["series"]
	}
	for i := range 120 { // window A, whole
		tick(d, t0.Add(time.Duration(i)*time.Second))
	}
	tick(d, t0.Add(2*time.Minute)) // window B begins
	if n := chunks(d); n != 2 {
		t.Fatalf("%d chunks after the first write of a later window, want 2", n)
	}
	// s00 is sealed already: this late write goes into its chunk, and
	// must outlive the older records a crash now would replay.
	late := Point{name(0), t0.Add(30 * time.Second), -7}
	if err := d.WritePoints([]Point{late}); err != nil {
		t.Fatal(err)
	}
	m[name(0)][late.T.UnixMilli()] = late.V
	c, err := Open(crashCopy(t, d), Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, db := range []*DB{d, c} {
		for s := range series {
			got, err := db.Range(name(s), time.Time{}, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			sameSamples(t, name(s)+" mid-round", got, m[name(s)].want(time.Time{}, time.Time{}))
		}
	}
	// The reopened file finishes sealing within a round of writes.
	for i := 1; i <= sealSpread; i++ {
		tick(c, t0.Add(2*time.Minute+time.Duration(i)*time.Second))
	}
	if n := chunks(c); n != series {
		t.Fatalf("%d chunks after a round, want one per series (%d)", n, series)
	}
	for s := range series {
		if n := len(c.heads.series[name(s)]); n != sealSpread+1 {
			t.Fatalf("%s has %d samples in memory, want the %d of window B", name(s), n, sealSpread+1)
		}
		got, err := c.Range(name(s), time.Time{}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		sameSamples(t, name(s)+" after the round", got, m[name(s)].want(time.Time{}, time.Time{}))
	}
}

func TestListSeriesKeptInMemoryAgreesWithOneReadFromTheFileAfterWritesLateWritesAndPrunes(t *testing.T) {
	d := openTemp(t)
	tick := func(i int) {
		t.Helper()
		at := t0.Add(time.Duration(i) * time.Second)
		if err := d.WritePoints([]Point{{"a/x", at, 100 * math.Sin(float64(i)*1.7)}, {"b/y", at, 1}}); err != nil {
			t.Fatal(err)
		}
	}
	// Listed before any chunk exists, then again with one sealed window:
	// from the first call on, the summary is kept in memory.
	for i := range 130 {
		if i == 0 || i == 125 {
			if _, err := d.ListSeries(); err != nil {
				t.Fatal(err)
			}
		}
		tick(i)
	}
	for i := 130; i < 500; i++ {
		tick(i)
	}
	late := []Point{{"a/x", t0.Add(2500 * time.Millisecond), 9}, {"a/x", t0.Add(3 * time.Second), 9}, {"c/late-only", t0, 1}}
	if err := d.WritePoints(late); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Prune(t0.Add(5*time.Minute), t0); err != nil {
		t.Fatal(err)
	}
	got, err := d.ListSeries()
	if err != nil {
		t.Fatal(err)
	}
	c, err := Open(crashCopy(t, d), Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	want, err := c.ListSeries()
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("kept in memory:\n%v\nread from the file:\n%v", got, want)
	}
	// The prune took a/x's first chunk and c/late-only; b/y's constant
	// values are one chunk that runs past the cut. Either way only the
	// 200 points from the cut on are read, so counted.
	for _, s := range got {
		if s.Count != 200 || !s.First.Equal(t0.Add(5*time.Minute)) || !s.Last.Equal(t0.Add(499*time.Second)) {
			t.Errorf("series %v: want 200 points from t0+5m to t0+499s", s)
		}
	}
	if len(got) != 2 || got[0].Name != "a/x" {
		t.Fatalf("series = %v", got)
	}
}

func TestWritesEveryTenSecondsSealEverySeriesEachWindowAndKeepMemoryAndLogBounded(t *testing.T) {
	d := openTemp(t)
	const series = 3 * sealSpread // more than one a write even at the widest spread
	m := map[string]model{}
	// 30 minutes at 10 s: 12 writes a window, fewer than sealSpread.
	for i := range 180 {
		at := t0.Add(time.Duration(i) * 10 * time.Second)
		var pts []Point
		for s := range series {
			name := fmt.Sprintf("s%03d/m", s)
			v := float64((i*7 + s) % 50)
			pts = append(pts, Point{name, at, v})
			if m[name] == nil {
				m[name] = model{}
			}
			m[name][at.UnixMilli()] = v
		}
		if err := d.WritePoints(pts); err != nil {
			t.Fatal(err)
		}
	}
	// At most this window and the last: 24 samples, 24 records.
	for name, head := range d.heads.series {
		if len(head) > 24 {
			t.Fatalf("%s holds %d samples in memory after 15 windows", name, len(head))
		}
	}
	if len(d.heads.log) > 24 {
		t.Fatalf("%d head records after 15 windows", len(d.heads.log))
	}
	for name, want := range m {
		got, err := d.Range(name, time.Time{}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		sameSamples(t, name, got, want.want(time.Time{}, time.Time{}))
	}
}

func TestReadersDuringWritesSealsAndPrunesAlwaysSeeSortedUniqueSamples(t *testing.T) {
	d := openTemp(t)
	const series, ticks = 30, 400
	done := make(chan struct{})
	errs := make(chan error, 3)
	go func() {
		defer close(done)
		for i := range ticks {
			var pts []Point
			for s := range series {
				pts = append(pts, Point{fmt.Sprintf("s%02d/m", s), t0.Add(time.Duration(i) * time.Second), float64(i)})
			}
			if err := d.WritePoints(pts); err != nil {
				errs <- err
				return
			}
			if i%100 == 99 {
				if _, err := d.Prune(t0.Add(time.Duration(i-150)*time.Second), t0); err != nil {
					errs <- err
					return
				}
			}
		}
	}()
	read := func(s int) error {
		for {
			select {
			case <-done:
				return nil
			default:
			}
			got, err := d.Range(fmt.Sprintf("s%02d/m", s), time.Time{}, time.Time{})
			if err != nil && !errors.Is(err, ErrNotFound) {
				return err
			}
			for i := 1; i < len(got); i++ {
				if !got[i].T.After(got[i-1].T) || got[i].V != got[i-1].V+1 {
					return fmt.Errorf("s%02d: sample %d (%v %v) after %v %v: not the next second", s, i, got[i].T, got[i].V, got[i-1].T, got[i-1].V)
				}
			}
			if _, err := d.ListSeries(); err != nil {
				return err
			}
		}
	}
	for r := range 2 {
		go func() { errs <- read(r * 7) }()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	<-done
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	got, err := d.Range("s00/m", time.Time{}, time.Time{})
	if err != nil || len(got) == 0 || got[len(got)-1].V != ticks-1 {
		t.Fatalf("after the writes: %d samples, %v", len(got), err)
	}
}

func TestADamagedChunkOrHeadRecordIsReportedByCheckAndStopsNeitherOpeningNorWritingNorOtherSeries(t *testing.T) {
	d := openTemp(t)
	for i := range 150 {
		at := t0.Add(time.Duration(i) * time.Second)
		if err := d.WritePoints([]Point{{"bad/m", at, float64(i)}, {"good/m", at, float64(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.bolt.Update(func(tx *bolt.Tx) error {
		k, _ := tx.Bucket(migrations.BucketSeries).Bucket([]byte("bad/m")).Cursor().Last()
		if err := tx.Bucket(migrations.BucketSeries).Bucket([]byte("bad/m")).Put(k, []byte{1, 0, 200, 7}); err != nil {
			return err
		}
		hk, _ := tx.Bucket(migrations.BucketHead).Cursor().Last()
		return tx.Bucket(migrations.BucketHead).Put(hk, []byte{0xff})
	}); err != nil {
		t.Fatal(err)
	}
	c, err := Open(crashCopy(t, d), Options{Migrate: true})
	if err != nil {
		t.Fatalf("open with a damaged chunk and record: %v", err)
	}
	defer c.Close()
	rep, err := c.Check()
	if err != nil || len(rep.Problems) != 2 {
		t.Fatalf("check = %v, %v; want the chunk and the record", rep.Problems, err)
	}
	for i := 150; i < 400; i++ {
		at := t0.Add(time.Duration(i) * time.Second)
		if err := c.WritePoints([]Point{{"bad/m", at, float64(i)}, {"good/m", at, float64(i)}}); err != nil {
			t.Fatalf("write %d after damage: %v", i, err)
		}
	}
	if _, err := c.ListSeries(); err != nil {
		t.Fatalf("list with a damaged chunk: %v", err)
	}
	if _, err := c.Prune(t0.Add(time.Second), t0); err != nil {
		t.Fatalf("prune with a damaged chunk: %v", err)
	}
	if _, err := c.Range("bad/m", time.Time{}, time.Time{}); err == nil {
		t.Error("reading the damaged series gave no error")
	}
	got, err := c.Range("good/m", time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	// The damaged record was the last write before the copy: tick 149.
	if len(got) != 398 || got[len(got)-1].V != 399 {
		t.Fatalf("good/m = %d samples ending %v; want 0..399 but the lost tick 149 and the pruned tick 0", len(got), got[len(got)-1].V)
	}
}

func TestRollupsOfTwoDaysReadBackExactlyAcrossChunksAndALaterRollupOfAMinuteReplacesIt(t *testing.T) {
	d := openTemp(t)
	var all []Rollup
	for i := range 2 * 1440 {
		mean := 100 + 10*math.Sin(float64(i)*0.37)
		all = append(all, Rollup{T: t0.Add(time.Duration(i) * time.Minute), Mean: mean, Min: math.Floor(mean - 7), Max: math.Ceil(mean + 9), Count: 60})
	}
	// Written a minute at a time, as the recorder does.
	for i := 0; i < len(all); i += 60 {
		if err := d.WriteRollups("p/m", all[i:i+60]); err != nil {
			t.Fatal(err)
		}
	}
	again := all[100]
	again.Mean, again.Count = -1, 59
	if err := d.WriteRollups("p/m", []Rollup{again}); err != nil {
		t.Fatal(err)
	}
	all[100] = again
	rep, err := d.Check()
	if err != nil || len(rep.Problems) > 0 || rep.Keys["rollups"] < 8 {
		t.Fatalf("check = %+v, %v; want several chunks per field and no problems", rep, err)
	}
	for _, b := range [][2]int{{0, len(all)}, {100, 101}, {1439, 1441}, {1000, 2000}} {
		got, err := d.RangeRollups("p/m", all[b[0]].T, all[b[1]-1].T.Add(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != b[1]-b[0] {
			t.Fatalf("rollups %v: %d, want %d", b, len(got), b[1]-b[0])
		}
		for i, r := range got {
			if r != all[b[0]+i] {
				t.Fatalf("rollup %d = %+v, want %+v", b[0]+i, r, all[b[0]+i])
			}
		}
	}
	list, err := d.ListRollups()
	if err != nil || len(list) != 1 || list[0].Count != len(all) || !list[0].First.Equal(t0) || !list[0].Last.Equal(all[len(all)-1].T) {
		t.Fatalf("list = %+v, %v", list, err)
	}
}

// spansOf drops the counts of a listing: what SeriesSpans and
// RollupSpans answer.
func spansOf(in []SeriesInfo) []SeriesInfo {
	out := make([]SeriesInfo, len(in))
	for i, s := range in {
		out[i] = SeriesInfo{Name: s.Name, First: s.First, Last: s.Last}
	}
	return out
}

func TestSeriesAndRollupSpansAgreeWithTheCountingListsWithoutReadingEveryChunk(t *testing.T) {
	d := openTemp(t)
	for i := range 500 {
		at := t0.Add(time.Duration(i) * time.Second)
		pts := []Point{{"a/x", at, 100 * math.Sin(float64(i)*1.7)}, {"b/y", at, 1}}
		if i >= 480 {
			pts = append(pts, Point{"d/head-only", at, 2}) // still in the open window
		}
		if err := d.WritePoints(pts); err != nil {
			t.Fatal(err)
		}
	}
	// A cut inside b/y's one chunk: its first point read is the cut.
	if _, err := d.Prune(t0.Add(5*time.Minute), t0); err != nil {
		t.Fatal(err)
	}
	var rollups []SeriesRollups
	for _, s := range []string{"a/x", "b/y"} {
		var rs []Rollup
		for m := range 8 {
			rs = append(rs, Rollup{T: t0.Add(time.Duration(m) * time.Minute), Mean: float64(m), Min: 0, Max: 9, Count: 60})
		}
		rollups = append(rollups, SeriesRollups{Series: s, Rollups: rs})
	}
	if err := d.WriteRollupsOf(rollups); err != nil {
		t.Fatal(err)
	}
	check := func(name string, d *DB) {
		t.Helper()
		for _, c := range []struct {
			what        string
			spans, list func() ([]SeriesInfo, error)
			want        int
		}{{"series", d.SeriesSpans, d.ListSeries, 3}, {"rollup", d.RollupSpans, d.ListRollups, 2}} {
			spans, err := c.spans()
			if err != nil {
				t.Fatal(err)
			}
			list, err := c.list()
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(spans) != fmt.Sprint(spansOf(list)) || len(spans) != c.want {
				t.Errorf("%s: %s spans\n%v\nwant the listing's\n%v", name, c.what, spans, spansOf(list))
			}
		}
	}
	// From the file (no summary in memory yet: spans read the edges), then
	// from memory once ListSeries has made the summaries.
	c, err := Open(crashCopy(t, d), Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	check("a fresh open", c)
	check("before a listing", d)
	check("after a listing", d)
	spans, err := c.SeriesSpans()
	if err != nil {
		t.Fatal(err)
	}
	if len(spans) == 3 && !spans[1].First.Equal(t0.Add(5*time.Minute)) {
		t.Errorf("b/y starts at %v, want the retention cut t0+5m", spans[1].First)
	}
}

func TestARangeAfterALatePointOfASeriesStillDueHoldsTheChunkPointsAfterIt(t *testing.T) {
	d := openTemp(t)
	// 120 series of 1 s points to 245 s: at 240 s a round begins, sealing
	// two series a write, so the last ones are still due at 245 s.
	const series = 120
	start := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	name := func(i int) string { return fmt.Sprintf("s%03d", i) }
	for s := range 246 {
		pts := make([]Point, series)
		for i := range pts {
			pts[i] = Point{Series: name(i), T: start.Add(time.Duration(s) * time.Second), V: float64(s)}
		}
		if err := d.WritePoints(pts); err != nil {
			t.Fatal(err)
		}
	}
	// A back-filled point from the first window, for a series still due,
	// goes to its head, ahead of the chunk points of 61-239 s.
	if err := d.WritePoints([]Point{{Series: name(series - 1), T: start.Add(60*time.Second + 500*time.Millisecond), V: -1}}); err != nil {
		t.Fatal(err)
	}
	got, err := d.Range(name(series-1), start.Add(61*time.Second), start.Add(246*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 185 {
		t.Fatalf("61-245 s = %d points, want 185", len(got))
	}
	for i, s := range got {
		if want := float64(61 + i); s.V != want || !s.T.Equal(start.Add(time.Duration(61+i)*time.Second)) {
			t.Fatalf("point %d = %+v, want %v at %v s", i, s, want, 61+i)
		}
	}
}

func TestRangesFromMemoryAgreeWithAModelOfEveryWriteLateWriteAndPrune(t *testing.T) {
	d := openTemp(t)
	rng := rand.New(rand.NewPCG(11, 3))
	const series = 24
	start := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	name := func(i int) string { return fmt.Sprintf("s%02d", i) }
	written := map[string]model{}
	for i := range series {
		written[name(i)] = model{}
	}
	var cut time.Time
	for s := range 1500 {
		now := start.Add(time.Duration(s) * time.Second)
		var pts []Point
		for i := range series {
			pts = append(pts, Point{Series: name(i), T: now, V: float64(s)})
		}
		// Late points anywhere in the last 400 s: to a series still due
		// (the head), a sealed tail or older chunks.
		for range rng.IntN(3) {
			i := rng.IntN(series)
			at := now.Add(-time.Duration(rng.IntN(400_000)) * time.Millisecond)
			pts = append(pts, Point{Series: name(i), T: at, V: -rng.Float64()})
		}
		if err := d.WritePoints(pts); err != nil {
			t.Fatal(err)
		}
		// A point before the cut is not stored; the model is read from
		// the cut on, so it may keep it.
		for _, p := range pts {
			written[p.Series][p.T.UnixMilli()] = p.V
		}
		if s%200 == 199 {
			cut = now.Add(-10 * time.Minute)
			if _, err := d.Prune(cut, cut); err != nil {
				t.Fatal(err)
			}
		}
		for range 3 {
			series := name(rng.IntN(series))
			from := now.Add(-time.Duration(rng.IntN(400_000)) * time.Millisecond)
			got, err := d.Range(series, from, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			if from.Before(cut) {
				from = cut
			}
			sameSamples(t, fmt.Sprintf("write %d: %s from %v", s, series, from.Sub(start)), got, written[series].want(from, time.Time{}))
		}
	}
}

func TestAPruneVisitsTheRollupsOnceTheirCutHasMovedAnHourWhileReadersStopSeeingThemAtOnce(t *testing.T) {
	d := openTemp(t)
	start := time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)
	one := func(series string, at time.Duration) SeriesRollups {
		return SeriesRollups{Series: series, Rollups: []Rollup{{T: start.Add(at), Mean: 1, Min: 1, Max: 1, Count: 60}}}
	}
	if err := d.WriteRollupsOf([]SeriesRollups{one("a/requests", 10*time.Minute), one("b/requests", 100*time.Minute)}); err != nil {
		t.Fatal(err)
	}
	prune := func(rollupCut time.Duration) int {
		t.Helper()
		n, err := d.Prune(start, start.Add(rollupCut))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := prune(0); n != 0 {
		t.Fatalf("a prune before every rollup took %d", n)
	}
	// 30 minutes on: a's rollup is before the cut, gone for readers, but
	// the rollups are not visited until the cut has moved an hour.
	if n := prune(30 * time.Minute); n != 0 {
		t.Errorf("a prune 30 minutes after the last visit took %d rollups, want none until an hour", n)
	}
	if rs, err := d.RangeRollups("a/requests", time.Time{}, time.Time{}); err != nil || len(rs) != 0 {
		t.Errorf("a's rollups after the cut passed them: %+v, %v; want none", rs, err)
	}
	if n := prune(65 * time.Minute); n != 1 {
		t.Errorf("a prune an hour after the last visit took %d rollups, want a's one", n)
	}
	spans, err := d.RollupSpans()
	if err != nil || len(spans) != 1 || spans[0].Name != "b/requests" {
		t.Errorf("rollup series left: %+v, %v; want b's alone", spans, err)
	}
	// A cut moved back (a clock that jumped and returned) is visited at
	// once, and that visit starts the next hour.
	if err := d.WriteRollupsOf([]SeriesRollups{one("c/requests", 5*time.Minute), one("d/requests", 20*time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if n := prune(15 * time.Minute); n != 1 {
		t.Errorf("a prune whose cut moved back took %d rollups, want c's one", n)
	}
	if n := prune(30 * time.Minute); n != 0 {
		t.Errorf("a prune 15 minutes after that visit took %d rollups, want none", n)
	}
}

func TestAPrunesRollupVisitCommitsInBatchesWithoutHoldingOffRawReadsAndWrites(t *testing.T) {
	d := openTemp(t)
	start := time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)
	const series = 2*rollupPruneBatch + 50
	var batch []SeriesRollups
	for i := range series {
		// Every other series has only a rollup before the cut, so its
		// chunk and series go; the rest share a chunk with a later
		// rollup, which stays whole (readers cut its first).
		rs := []Rollup{{T: start, Mean: 1, Min: 1, Max: 1, Count: 60}}
		if i%2 == 1 {
			rs = append(rs, Rollup{T: start.Add(10 * time.Hour), Mean: 2, Min: 2, Max: 2, Count: 60})
		}
		batch = append(batch, SeriesRollups{Series: fmt.Sprintf("s%03d/requests", i), Rollups: rs})
	}
	if err := d.WriteRollupsOf(batch); err != nil {
		t.Fatal(err)
	}
	batches := 0
	d.afterRollupBatch = func() {
		batches++
		// Between batches the raw history's lock is free: the recorder's
		// write of a tick goes through.
		if !d.hmu.TryLock() {
			t.Fatal("the raw history's lock is held during a rollup visit")
		}
		d.hmu.Unlock()
		if err := d.WritePoints([]Point{{Series: "raw/requests", T: start.Add(9 * time.Hour), V: float64(batches)}}); err != nil {
			t.Fatal(err)
		}
	}
	n, err := d.Prune(start, start.Add(9*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if n != series/2 {
		t.Errorf("pruned %d rollups, want the %d of the series with none after the cut", n, series/2)
	}
	if want := (series + rollupPruneBatch - 1) / rollupPruneBatch; batches != want {
		t.Errorf("the visit committed %d batches, want %d of %d series", batches, want, rollupPruneBatch)
	}
	spans, err := d.RollupSpans()
	if err != nil {
		t.Fatal(err)
	}
	if len(spans) != series/2 {
		t.Errorf("%d rollup series left, want the %d with a rollup after the cut", len(spans), series/2)
	}
	pts, err := d.Range("raw/requests", time.Time{}, time.Time{})
	if err != nil || len(pts) != 1 {
		t.Errorf("the raw series written during the visit: %v, %v; want its one point", pts, err)
	}
}
