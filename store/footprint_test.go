package store

import (
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/nomadscalerd/nomadscalerd/store/chunk"
)

func TestFootprintCountsSealedPointsAndItsPartsAddUpToTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f.db")
	d, err := Open(path, Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	// 200 series at 1 s ticks over three 2-minute windows and 90 s of a
	// fourth: every window but the last is sealed by then (a window's
	// round begins with the next window's first write and is spread over
	// at most 60 writes).
	const series, ticks = 200, 450
	start := time.UnixMilli(chunk.WindowStart(t0.UnixMilli())).UTC()
	lastWindow := time.UnixMilli(chunk.WindowStart(start.Add((ticks - 1) * time.Second).UnixMilli())).UTC()
	// Requests per second as the recorder stores them: whole numbers
	// around a level per series, with Poisson-like noise.
	r := rand.New(rand.NewPCG(3, 4))
	level := make([]float64, series)
	for s := range level {
		level[s] = 10 + 990*r.Float64()
	}
	var sealed, open int64
	pts := make([]Point, series)
	for i := range ticks {
		at := start.Add(time.Duration(i) * time.Second)
		for s := range pts {
			v := math.Max(0, math.Round(level[s]+math.Sqrt(level[s])*r.NormFloat64()))
			pts[s] = Point{Series: fmt.Sprintf("default/svc-%03d/web/requests", s), T: at, V: v}
		}
		if err := d.WritePoints(pts); err != nil {
			t.Fatal(err)
		}
		if at.Before(lastWindow) {
			sealed += series
		} else {
			open += series
		}
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}

	// Read-only, as make bench-scale reads a stopped replica's file.
	ro, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	f, err := ro.Footprint()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("footprint: %+v; %.2f chunk page bytes per sealed point", f, f.ChunkPageBytesPerPoint())
	if f.ChunkPoints != sealed || f.HeadPoints != open {
		t.Errorf("chunks hold %d points and the log %d, want the %d of the sealed windows and the %d of the open one", f.ChunkPoints, f.HeadPoints, sealed, open)
	}
	// Gorilla-coded counts at 1 s cost under 2 bytes of chunk; stored as
	// 16-byte time and value pairs they would cost more than 16. Pages
	// cost more in a file this young: a series' 360 points are a small
	// bucket, inlined or on a part-filled page (make bench-store measures
	// the steady state).
	if bpp := float64(f.ChunkBytes) / float64(f.ChunkPoints); bpp > 2 {
		t.Errorf("sealed chunks cost %.2f bytes per point, want at most 2", bpp)
	}
	if bpp := f.ChunkPageBytesPerPoint(); bpp <= 0 || bpp > 4 {
		t.Errorf("sealed history costs %.2f bytes of pages per point, want at most 4", bpp)
	}
	if f.ChunkBytes > f.ChunkPageBytes {
		t.Errorf("chunk payload %d bytes exceeds the %d bytes of pages holding it", f.ChunkBytes, f.ChunkPageBytes)
	}
	sum := f.ChunkPageBytes + f.HeadPageBytes + f.RollupPageBytes + f.OtherPageBytes + f.FreePageBytes + f.BboltPageBytes + f.TailBytes
	if sum != f.FileBytes {
		t.Errorf("parts add up to %d bytes, the file has %d", sum, f.FileBytes)
	}
	// What is left for bbolt itself is its two meta pages, the freelist and
	// the root: a few pages. More would be a part counted short.
	if pg := f.BboltPageBytes / int64(f.PageSize); pg < 3 || pg > 8 {
		t.Errorf("bbolt's own pages = %d, want 3 to 8 (meta, freelist, root)", pg)
	}
	// Sealing deleted the sealed windows' log records: their pages are
	// free, and a read-only open must see them as such.
	if f.FreePageBytes == 0 {
		t.Error("no free pages counted after the log's sealed records were deleted")
	}
	if f.TailBytes < 0 {
		t.Errorf("tail = %d bytes, the file is shorter than its pages", f.TailBytes)
	}
}

func TestAGrownFileCarriesUnderAMebibyteOfPreallocatedTail(t *testing.T) {
	d := openTemp(t)
	// A value of 2.2 MiB takes the pages in use just past 2 MiB, where
	// bbolt's default growth (to the next power of two) would leave a
	// tail of almost 2 MiB.
	blob := make([]byte, 2200<<10)
	for i := range blob {
		blob[i] = byte(i)
	}
	if err := d.PutMeta("blob", blob); err != nil {
		t.Fatal(err)
	}
	f, err := d.Footprint()
	if err != nil {
		t.Fatal(err)
	}
	if f.FileBytes-f.TailBytes < int64(len(blob)) {
		t.Fatalf("pages in use = %d bytes, fewer than the %d written", f.FileBytes-f.TailBytes, len(blob))
	}
	// bbolt grows to one page past the last in use, plus allocSize.
	if f.TailBytes > allocSize+int64(f.PageSize) {
		t.Errorf("preallocated tail = %d bytes of a %d-byte file, want at most %d", f.TailBytes, f.FileBytes, allocSize+f.PageSize)
	}
}
