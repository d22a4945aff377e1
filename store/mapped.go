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
