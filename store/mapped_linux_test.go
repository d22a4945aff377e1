//go:build linux

package store

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nomadscalerd/nomadscalerd/migrations"
)

// mappedKiB is the resident size of this process's mappings of path (see
// MappedBytes).
func mappedKiB(t *testing.T, path string) int {
	t.Helper()
	b, err := MappedBytes(os.Getpid(), path)
	if err != nil {
		t.Fatal(err)
	}
	return int(b >> 10)
}

func TestReleaseMappedUnmapsTheTouchedPagesAndTheDataReadsBackTheSame(t *testing.T) {
	d := openTemp(t)
	path := d.Path()
	// 8 MiB of plans, in values of 16 KiB: bbolt keeps each on its own
	// overflow pages, so reading them all touches the whole file.
	const n, size = 512, 16 << 10
	values := make(map[string]any, n)
	for i := range n {
		values[fmt.Sprintf("p%04d", i)] = strings.Repeat(strconv.Itoa(i%10), size)
	}
	if err := d.PutJSONs(migrations.BucketPlans, values); err != nil {
		t.Fatal(err)
	}
	readAll := func() {
		t.Helper()
		for i := range n {
			var got string
			if err := d.GetJSON(migrations.BucketPlans, fmt.Sprintf("p%04d", i), &got); err != nil {
				t.Fatal(err)
			}
			if got != values[fmt.Sprintf("p%04d", i)] {
				t.Fatalf("plan %d read back different", i)
			}
		}
	}
	readAll()
	before := mappedKiB(t, path)
	if before < 4<<10 {
		t.Fatalf("reading 8 MiB mapped only %d KiB of the file: the test does not exercise the mapping", before)
	}
	if err := d.ReleaseMapped(); err != nil {
		t.Fatal(err)
	}
	// The meta pages and whatever the release's own transaction touched.
	if after := mappedKiB(t, path); after > 256 {
		t.Fatalf("mapped %d KiB after the release, want the %d KiB from before dropped", after, before)
	}
	readAll()
	// Writing after a release works as before (the file grows and bbolt
	// remaps it), and a release after that covers the new mapping.
	if err := d.WritePoints([]Point{{Series: "s", T: time.Unix(1, 0), V: 1}}); err != nil {
		t.Fatal(err)
	}
	if err := d.ReleaseMapped(); err != nil {
		t.Fatal(err)
	}
}

func TestARangeTheOpenWindowCoversIsReadWithoutMappingTheFile(t *testing.T) {
	d := openTemp(t)
	path := d.Path()
	// 300 series of 1 s points over 430 s: the 2-minute windows before
	// the last are sealed into chunks, the last is open since 360 s.
	const series, seconds = 300, 430
	start := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	name := func(i int) string { return fmt.Sprintf("default/job-%03d/web/requests", i) }
	for s := range seconds {
		pts := make([]Point, series)
		for i := range pts {
			pts[i] = Point{Series: name(i), T: start.Add(time.Duration(s) * time.Second), V: float64(i*seconds + s)}
		}
		if err := d.WritePoints(pts); err != nil {
			t.Fatal(err)
		}
	}
	// A late point in a sealed window goes to the chunks, not the head.
	late := start.Add(90*time.Second + 500*time.Millisecond)
	if err := d.WritePoints([]Point{{Series: name(7), T: late, V: -1}}); err != nil {
		t.Fatal(err)
	}
	if err := d.ReleaseMapped(); err != nil {
		t.Fatal(err)
	}
	base := mappedKiB(t, path)
	now := start.Add(seconds * time.Second)
	// The last 30 s are in the open window.
	const back = 30
	for i := range series {
		got, err := d.Range(name(i), now.Add(-back*time.Second), time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != back || got[0].V != float64(i*seconds+seconds-back) || got[back-1].V != float64(i*seconds+seconds-1) {
			t.Fatalf("series %d: last %d s = %d samples from %v to %v, want %d from %d", i, back, len(got), got[0], got[len(got)-1], back, i*seconds+seconds-back)
		}
	}
	if after := mappedKiB(t, path); after > base {
		t.Fatalf("reading the last %d s of %d series mapped %d KiB of the file (from %d)", back, series, after-base, base)
	}
	// A range reaching before the open window reads the chunks, late
	// point included.
	got, err := d.Range(name(7), start.Add(90*time.Second), start.Add(92*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || !got[1].T.Equal(late) || got[1].V != -1 {
		t.Fatalf("90-92 s of series 7 = %v, want the late point between the two seconds", got)
	}
	if after := mappedKiB(t, path); after <= base {
		t.Fatalf("a range in the chunks mapped nothing (%d KiB, from %d): the test does not see reads", after, base)
	}
}

func TestHistoryReadsReleaseTheMappingOnceTheyMayHaveMappedTheirBudget(t *testing.T) {
	// 400 series of 1 s points over 20 minutes: ten sealed chunks each.
	const series, seconds = 400, 1200
	start := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	name := func(i int) string { return fmt.Sprintf("default/job-%03d/web/requests", i) }
	maxMapped := func(budget int64) (ranges, spans int) {
		t.Helper()
		d := openTemp(t)
		d.readMapBudget = budget
		for s := range seconds {
			pts := make([]Point, series)
			for i := range pts {
				pts[i] = Point{Series: name(i), T: start.Add(time.Duration(s) * time.Second), V: float64(i + s)}
			}
			if err := d.WritePoints(pts); err != nil {
				t.Fatal(err)
			}
		}
		if err := d.ReleaseMapped(); err != nil {
			t.Fatal(err)
		}
		most := 0
		for i := range series {
			got, err := d.Range(name(i), start, start.Add(10*time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 600 || got[599].V != float64(i+599) {
				t.Fatalf("series %d: %d points read back, want its 600 first", i, len(got))
			}
			most = max(most, mappedKiB(t, d.Path()))
		}
		if err := d.ReleaseMapped(); err != nil {
			t.Fatal(err)
		}
		infos, err := d.SeriesSpans()
		if err != nil || len(infos) != series {
			t.Fatalf("%d series' spans, %v", len(infos), err)
		}
		return most, mappedKiB(t, d.Path())
	}
	unbounded, unboundedSpans := maxMapped(1 << 40)
	const budget = 256 << 10
	bounded, boundedSpans := maxMapped(budget)
	// A release comes after the read that passes the budget, which maps
	// a few chunks' pages itself; bbolt's meta and branch pages stay.
	if bounded > 3*budget>>10 {
		t.Errorf("reads mapped up to %d KiB with a %d KiB budget", bounded, budget>>10)
	}
	if unbounded < 4*bounded {
		t.Errorf("without a budget the same reads mapped %d KiB, with it %d: the file is too small to tell", unbounded, bounded)
	}
	// Listing every series' span (each rollup round does) reads two
	// chunks of each.
	if boundedSpans > 3*budget>>10 || unboundedSpans < 2*boundedSpans {
		t.Errorf("listing the series' spans mapped %d KiB with a %d KiB budget, %d KiB without", boundedSpans, budget>>10, unboundedSpans)
	}
	t.Logf("ranges mapped at most %d KiB without a budget, %d KiB with %d KiB; the spans' listing %d and %d KiB", unbounded, bounded, budget>>10, unboundedSpans, boundedSpans)
}

func TestListingAndPruningEveryRollupSeriesReleaseTheMappingWithinTheirBudget(t *testing.T) {
	// 1,000 series of a day of minutes each: a rollup round lists them
	// all, each a bucket and its first and last chunks' pages, and a
	// prune visits each.
	const series, minutes = 1000, 1440
	start := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	maxMapped := func(budget int64) (listing, pruning int) {
		t.Helper()
		d := openTemp(t)
		d.readMapBudget = budget
		batch := make([]SeriesRollups, series)
		for i := range batch {
			rs := make([]Rollup, minutes)
			for m := range rs {
				rs[m] = Rollup{T: start.Add(time.Duration(m) * time.Minute), Mean: float64(i + m), Min: 0, Max: float64(2 * (i + m)), Count: 60}
			}
			batch[i] = SeriesRollups{Series: fmt.Sprintf("default/job-%04d/web/requests", i), Rollups: rs}
		}
		if err := d.WriteRollupsOf(batch); err != nil {
			t.Fatal(err)
		}
		if err := d.ReleaseMapped(); err != nil {
			t.Fatal(err)
		}
		spans, err := d.RollupSpans()
		if err != nil {
			t.Fatal(err)
		}
		if len(spans) != series || !spans[0].Last.Equal(start.Add((minutes-1)*time.Minute)) {
			t.Fatalf("%d rollup series listed, the first ending %s", len(spans), spans[0].Last)
		}
		listing = mappedKiB(t, d.Path())
		if err := d.ReleaseMapped(); err != nil {
			t.Fatal(err)
		}
		// A prune that takes nothing still looks at every series.
		if n, err := d.Prune(start, start); err != nil || n != 0 {
			t.Fatalf("prune before the first point took %d, %v", n, err)
		}
		return listing, mappedKiB(t, d.Path())
	}
	unbounded, unboundedPrune := maxMapped(1 << 40)
	const budget = 256 << 10
	bounded, boundedPrune := maxMapped(budget)
	for _, c := range []struct {
		what               string
		unbounded, bounded int
	}{{"listing", unbounded, bounded}, {"pruning", unboundedPrune, boundedPrune}} {
		if c.bounded > 3*budget>>10 {
			t.Errorf("%s mapped %d KiB with a %d KiB budget", c.what, c.bounded, budget>>10)
		}
		if c.unbounded < 4*c.bounded {
			t.Errorf("without a budget %s mapped %d KiB, with it %d: the file is too small to tell", c.what, c.unbounded, c.bounded)
		}
		t.Logf("%s mapped %d KiB without a budget, %d KiB with %d KiB", c.what, c.unbounded, c.bounded, budget>>10)
	}
}
