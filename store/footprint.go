package store

import (
	"encoding/binary"
	"fmt"
	"os"

	bolt "go.etcd.io/bbolt"

	"github.com/nomadscalerd/nomadscalerd/migrations"
	"github.com/nomadscalerd/nomadscalerd/store/chunk"
)

// Footprint says where a database file's bytes are. Its byte parts add up
// to FileBytes: ChunkPageBytes + HeadPageBytes + RollupPageBytes +
// OtherPageBytes + FreePageBytes + BboltPageBytes + TailBytes.
//
// The figure that grows with retention is ChunkPageBytesPerPoint, sealed
// history's pages over the points they hold; the whole file over the
// points stored is dominated, in a young file, by the open window's log
// and bbolt's preallocated tail, which do not grow with retention.
type Footprint struct {
	// FileBytes is the file's size on disk.
	FileBytes int64 `json:"file_bytes"`
	PageSize  int   `json:"page_size"`
	// ChunkPoints are the raw points sealed into chunks (points before
	// the retention cut that share a chunk with later ones included: they
	// hold bytes until the chunk goes).
	ChunkPoints int64 `json:"chunk_points"`
	// ChunkBytes is the chunks' payload: chunk, key and bbolt's 16-byte
	// element header; ChunkPageBytes the pages the series buckets occupy
	// (each series' part-filled last page included).
	ChunkBytes     int64 `json:"chunk_bytes"`
	ChunkPageBytes int64 `json:"chunk_page_bytes"`
	// HeadPoints are the points the open-window log holds (see
	// headState) and HeadPageBytes its pages.
	HeadPoints    int64 `json:"head_points"`
	HeadPageBytes int64 `json:"head_page_bytes"`
	// RollupPageBytes are the 1-minute rollups' pages, OtherPageBytes
	// those of every other bucket (journal, fits, plans, state, meta).
	RollupPageBytes int64 `json:"rollup_page_bytes"`
	OtherPageBytes  int64 `json:"other_page_bytes"`
	// FreePageBytes are pages below the high-water mark that bbolt will
	// reuse (free, and pending a reader's end).
	FreePageBytes int64 `json:"free_page_bytes"`
	// BboltPageBytes are bbolt's own pages: the two meta pages, the
	// freelist and the root bucket's page; the rest of the used part.
	BboltPageBytes int64 `json:"bbolt_page_bytes"`
	// TailBytes is the file past the last page in use: bbolt grows the
	// file ahead of its pages (see allocSize).
	TailBytes int64 `json:"tail_bytes"`
}

// ChunkPageBytesPerPoint is sealed history's cost per point: what a day of
// retention costs is this times the points a day brings. 0 with no
// sealed point.
func (f Footprint) ChunkPageBytesPerPoint() float64 {
	if f.ChunkPoints == 0 {
		return 0
	}
	return float64(f.ChunkPageBytes) / float64(f.ChunkPoints)
}

// Footprint reads every bucket's page statistics and every chunk's header
// from one read transaction. On a database a daemon is writing, the free
// pages are those of the last commit, which may be a later one than the
// transaction's; on a closed or read-only file every part is exact.
func (d *DB) Footprint() (Footprint, error) {
	f := Footprint{PageSize: d.bolt.Info().PageSize}
	pages := func(b *bolt.Bucket) int64 {
		st := b.Stats()
		return int64(st.BranchAlloc + st.LeafAlloc)
	}
	var used int64
	err := d.bolt.View(func(tx *bolt.Tx) error {
		used = tx.Size()
		err := tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			switch string(name) {
			case string(migrations.BucketSeries):
				f.ChunkPageBytes = pages(b)
			case string(migrations.BucketHead):
				f.HeadPageBytes = pages(b)
			case string(migrations.BucketRollups):
				f.RollupPageBytes = pages(b)
			default:
				f.OtherPageBytes += pages(b)
			}
			return nil
		})
		if err != nil {
			return err
		}
		root := tx.Bucket(migrations.BucketSeries)
		err = root.ForEachBucket(func(name []byte) error {
			return root.Bucket(name).ForEach(func(k, v []byte) error {
				n, err := chunk.NumSamples(v)
				if err != nil {
					return fmt.Errorf("series %q chunk %x: %w", name, k, err)
				}
				f.ChunkPoints += int64(n)
				f.ChunkBytes += int64(len(k) + len(v) + 16)
				return nil
			})
		})
		if err != nil {
			return err
		}
		return tx.Bucket(migrations.BucketHead).ForEach(func(k, v []byte) error {
			// A record starts with its count of points (encodeLog).
			n, l := binary.Uvarint(v)
			if l <= 0 {
				return fmt.Errorf("head record %x: %w", k, errShortRecord)
			}
			f.HeadPoints += int64(n)
			return nil
		})
	})
	if err != nil {
		return f, fmt.Errorf("footprint of %s: %w", d.path, err)
	}
	st := d.bolt.Stats()
	f.FreePageBytes = int64(st.FreePageN+st.PendingPageN) * int64(f.PageSize)
	f.BboltPageBytes = used - f.ChunkPageBytes - f.HeadPageBytes - f.RollupPageBytes - f.OtherPageBytes - f.FreePageBytes
	fi, err := os.Stat(d.path)
	if err != nil {
		return f, fmt.Errorf("footprint of %s: %w", d.path, err)
	}
	f.FileBytes = fi.Size()
	f.TailBytes = f.FileBytes - used
	return f, nil
}
