package store

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// ReleaseMapped unmaps the database pages this process has touched, so
// they stop counting in its resident set. Reads map pages from bbolt's
// file mapping, and the kernel maps the cached pages around each fault
// too (fault-around, 64 KiB by default): opening the file (each series'
// last chunk) and a rollup round (each series' first and last chunks)
// leave tens of MiB mapped that the next minutes never read. The pages
// stay in the page cache, so the next read of one is a minor fault and
// nothing is read from disk; only the mapping is dropped.
//
// It runs inside a read transaction: bbolt remaps the file only under
// its mmap lock, which a read transaction holds shared, so the range
// released is bbolt's mapping and nothing the runtime has put in its
// place.
func (d *DB) ReleaseMapped() error {
	return d.bolt.View(func(tx *bolt.Tx) error {
		if err := releaseMapped(d.bolt.Info().Data, tx.Size()); err != nil {
			return fmt.Errorf("release mapped pages of %s: %w", d.path, err)
		}
		return nil
	})
}

// defaultReadMapBudget is how much of the file history reads may leave mapped
// before the read that passes it unmaps it all. A plan reads its policy's
// hour of history, and each page it faults in maps the cached pages around
// it (faultAround): at 2,000 policies, plans made a tenth of them a second,
// that was 30 MiB a second, which a release on a timer (the recorder's,
// every 2 s) let reach 70 MiB between releases. Counting reads bounds it
// at any rate of reads. A release is one madvise call: 0.65 ms on a copy
// of bench-scale's 2,000-series file (356 MB) with a hundred hour-long
// reads mapped, two or three times a second at that scale.
const defaultReadMapBudget = 16 << 20

// faultAround is how much a fault on one page maps (the kernel's
// fault_around_bytes default).
const faultAround = 64 << 10

// mapRead counts a read, inside tx, of n bytes of values in place, and
// unmaps the file's pages once the reads since the last release may have
// mapped its read budget. A read's values lie on about n/pageSize leaf or
// overflow pages, one more where they straddle two, each faulted in with
// the pages around it: an hour of 1 s points (5.4 KB of chunks) counts
// 192 KiB.
func (d *DB) mapRead(tx *bolt.Tx, n int) error {
	if n <= 0 {
		return nil
	}
	return d.mapPages(tx, n/d.bolt.Info().PageSize+1)
}

// mapPages counts a read, inside tx, that faulted in up to pages pages
// (see mapRead).
func (d *DB) mapPages(tx *bolt.Tx, pages int) error {
	if d.readMapped.Add(int64(pages)*faultAround) < d.readMapBudget {
		return nil
	}
	d.readMapped.Store(0)
	if err := releaseMapped(d.bolt.Info().Data, tx.Size()); err != nil {
		return fmt.Errorf("release mapped pages of %s: %w", d.path, err)
	}
	return nil
}
