// Package store owns nomadscalerd's single bbolt file: metric series as
// compressed chunks of up to 2,000 bytes (store/chunk) plus a logged open window (see
// headState), their 1-minute rollups, model fits, plans, controller
// state and the append-only action journal. Every write is one explicit
// transaction; a tick's samples for all series go in one.
package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/nomadscalerd/nomadscalerd/migrations"
)

// ErrNotFound is returned when a key has no value.
var ErrNotFound = errors.New("not found")

// ErrDamaged is returned when the file is not a readable bbolt database:
// truncated, overwritten or empty. bbolt panics on some of these; Open and
// Check turn the panic into this error.
var ErrDamaged = errors.New("database file is damaged")

// DamagedError is a damaged file (errors.Is ErrDamaged): its path, what
// is wrong with it, and in its message what to do about it.
type DamagedError struct {
	Path  string
	Cause string
}

func (e *DamagedError) Error() string {
	return fmt.Sprintf("%v: %s: %s (run `nomadscalerd --db %s db check` for details; restore it from a `db backup` copy or move it away to start empty)", ErrDamaged, e.Path, e.Cause, e.Path)
}

// Is makes a DamagedError match ErrDamaged.
func (e *DamagedError) Is(target error) bool { return target == ErrDamaged }

// damaged is the error for a damaged file.
func damaged(path string, cause any) error {
	return &DamagedError{Path: path, Cause: fmt.Sprint(cause)}
}

// minFileSize is the least a bbolt file holds: its two meta pages (of at
// least 4 KiB: bbolt writes a new file's pages at the OS page size).
const minFileSize = 2 * 4096

// DB is an open nomadscalerd database.
type DB struct {
	bolt *bolt.DB
	path string

	mu sync.Mutex
	// writeErr is the last failed commit (a full disk, an I/O error) and
	// failing the number of failed commits since the last one that worked.
	writeErr  error
	failingAt time.Time
	failing   int

	// hmu orders writes of raw points against reads of them: a write may
	// move samples from heads into chunks, and a reader must see both
	// sides from before it or both from after.
	hmu   sync.RWMutex
	heads headState

	// readMapped is how much of the file the history reads since the
	// last release may have mapped, released at readMapBudget (see
	// mapRead; a test's smaller file sets a smaller one).
	readMapped    atomic.Int64
	readMapBudget int64

	// afterRollupBatch, when set (by tests), runs after each committed
	// batch of a prune's rollup visit.
	afterRollupBatch func()
}

// update runs fn in a write transaction and keeps track of whether the
// file still takes writes: an error of fn's is the caller's, one of the
// commit is the storage's.
func (d *DB) update(fn func(*bolt.Tx) error) error {
	var fnErr error
	err := d.bolt.Update(func(tx *bolt.Tx) error {
		fnErr = fn(tx)
		return fnErr
	})
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case err == nil:
		d.writeErr, d.failing = nil, 0
	case fnErr == nil:
		if d.failing == 0 {
			d.failingAt = time.Now()
		}
		d.writeErr, d.failing = err, d.failing+1
	}
	return err
}

// allocSize is how far ahead of its pages bbolt grows the file (see Open).
const allocSize = 1 << 20

// Options control Open.
type Options struct {
	// Migrate applies pending migrations; without it a database that is
	// behind this binary is an error (db check, read-only tools).
	Migrate bool
	// ReadOnly opens the file with a shared lock, next to a running daemon's
	// exclusive one being impossible, so inspection tools should copy first.
	ReadOnly bool
	// Timeout bounds the wait for the file lock held by another process.
	Timeout time.Duration
}

// Open opens (creating if needed) the database at path and brings its schema
// up to date. A database from a newer binary is refused with
// migrations.ErrSchemaTooNew.
func Open(path string, o Options) (db *DB, err error) {
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Second
	}
	if st, err := os.Stat(path); err == nil && st.Size() == 0 {
		// bbolt would initialise an empty file when writable and fail
		// obscurely when not: an empty file is a lost database either way.
		return nil, damaged(path, "the file is empty")
	} else if err == nil && st.Size() < minFileSize {
		// bbolt refuses it with an error of no type of its own.
		return nil, damaged(path, fmt.Sprintf("the file is %d bytes, shorter than a database's first pages", st.Size()))
	} else if err != nil && o.ReadOnly {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	var b *bolt.DB
	// Opening replays the head log and reads each series' last chunk: on
	// a truncated file those pages lie past its end, and touching them
	// faults. As a panic, the fault is recovered below like bbolt's own.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if b != nil {
				_ = b.Close()
			}
			db, err = nil, damaged(path, r)
		}
	}()
	// A writable open always reads the freelist; a read-only one only
	// when asked, and Footprint needs it to count free pages.
	b, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: o.Timeout, ReadOnly: o.ReadOnly, PreLoadFreelist: true})
	if err != nil {
		if errors.Is(err, bolt.ErrInvalid) || errors.Is(err, bolt.ErrChecksum) || errors.Is(err, bolt.ErrVersionMismatch) {
			return nil, damaged(path, err)
		}
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	// bbolt grows the file to its mmap size, doubling, up to AllocSize and
	// then AllocSize at a time: by default a young database is half
	// preallocation and a grown one carries up to 16 MiB of it. allocSize
	// keeps the tail under 1 MiB; growth is a truncate and fsync per MiB,
	// minutes apart at a thousand policies.
	b.AllocSize = allocSize
	d := &DB{bolt: b, path: path, readMapBudget: defaultReadMapBudget}
	v, err := migrations.Check(b)
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("database %s: %w", path, err)
	}
	if v < migrations.Latest() {
		if !o.Migrate || o.ReadOnly {
			b.Close()
			return nil, fmt.Errorf("database %s is at schema %d, needs %d: run `nomadscalerd db migrate`", path, v, migrations.Latest())
		}
		if _, _, err := migrations.Migrate(b); err != nil {
			b.Close()
			return nil, fmt.Errorf("migrate %s: %w", path, err)
		}
	}
	if err := d.loadHeads(); err != nil {
		b.Close()
		return nil, fmt.Errorf("database %s: %w", path, err)
	}
	// Loading read each series' last chunk, and mapped the pages around
	// each: tens of MiB at a thousand series that nothing reads again soon.
	if err := d.ReleaseMapped(); err != nil {
		b.Close()
		return nil, err
	}
	return d, nil
}

// Close releases the file.
func (d *DB) Close() error { return d.bolt.Close() }

// Path is the file the database lives in.
func (d *DB) Path() string { return d.path }

// SchemaVersion reads the stored schema version.
func (d *DB) SchemaVersion() (uint64, error) { return migrations.Check(d.bolt) }

// Ping proves the database answers a read transaction.
func (d *DB) Ping() error {
	d.mu.Lock()
	werr, n, since := d.writeErr, d.failing, d.failingAt
	d.mu.Unlock()
	if werr != nil {
		return fmt.Errorf("degraded: %d writes failed since %s: %w", n, since.UTC().Format(time.RFC3339), werr)
	}
	return d.bolt.View(func(tx *bolt.Tx) error {
		if tx.Bucket(migrations.BucketMeta) == nil {
			return errors.New("meta bucket missing")
		}
		return nil
	})
}

// Backup writes a consistent copy of the database to w from one read
// transaction, so it is safe while the daemon writes.
func (d *DB) Backup(w io.Writer) (int64, error) {
	var n int64
	err := d.bolt.View(func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	return n, err
}

// timeKey encodes t as big-endian unix milliseconds, so byte order is time
// order and a cursor Seek finds a time range.
func timeKey(t time.Time) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], uint64(t.UnixMilli()))
	return k[:]
}

func keyTime(k []byte) (time.Time, error) {
	if len(k) != 8 {
		return time.Time{}, fmt.Errorf("time key has %d bytes, want 8", len(k))
	}
	return time.UnixMilli(int64(binary.BigEndian.Uint64(k))).UTC(), nil
}

func floatValue(v float64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], math.Float64bits(v))
	return b[:]
}

func valueFloat(b []byte) (float64, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("value has %d bytes, want 8", len(b))
	}
	return math.Float64frombits(binary.BigEndian.Uint64(b)), nil
}

// PutJSON stores v as JSON under key in one of the JSON buckets (fits, plans,
// state, meta).
func (d *DB) PutJSON(bucket []byte, key string, v any) error {
	return d.PutJSONs(bucket, map[string]any{key: v})
}

// PutJSONs stores several values in one transaction: one commit (and one
// fdatasync) for all of them.
func (d *DB) PutJSONs(bucket []byte, values map[string]any) error {
	data := make(map[string][]byte, len(values))
	for k, v := range values {
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("encode %s/%s: %w", bucket, k, err)
		}
		data[k] = b
	}
	return d.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		for k, v := range data {
			if err := b.Put([]byte(k), v); err != nil {
				return fmt.Errorf("%s/%s: %w", bucket, k, err)
			}
		}
		return nil
	})
}

// GetJSON decodes the JSON under key into v; ErrNotFound when absent.
func (d *DB) GetJSON(bucket []byte, key string, v any) error {
	return d.bolt.View(func(tx *bolt.Tx) error {
		data := tx.Bucket(bucket).Get([]byte(key))
		if data == nil {
			return fmt.Errorf("%s/%s: %w", bucket, key, ErrNotFound)
		}
		if err := json.Unmarshal(data, v); err != nil {
			return fmt.Errorf("decode %s/%s: %w", bucket, key, err)
		}
		return nil
	})
}

// DeleteKey removes key from bucket; absent keys are not an error.
func (d *DB) DeleteKey(bucket []byte, key string) error {
	return d.update(func(tx *bolt.Tx) error { return tx.Bucket(bucket).Delete([]byte(key)) })
}

// DeletePrefixed deletes, in one transaction, the keys of bucket that
// start with prefix and whose value drop says to, and returns how many.
// It reads only the prefix's keys.
func (d *DB) DeletePrefixed(bucket []byte, prefix string, drop func(value []byte) bool) (int, error) {
	deleted := 0
	err := d.update(func(tx *bolt.Tx) (err error) {
		deleted, err = deletePrefixedTx(tx, bucket, prefix, func(_, v []byte) bool { return drop(v) })
		return err
	})
	return deleted, err
}

// deletePrefixedTx deletes, in tx, the keys of bucket that start with
// prefix and that drop (given the key and its value) says to, and returns
// how many.
func deletePrefixedTx(tx *bolt.Tx, bucket []byte, prefix string, drop func(key, value []byte) bool) (int, error) {
	var doomed [][]byte
	c := tx.Bucket(bucket).Cursor()
	for k, v := c.Seek([]byte(prefix)); k != nil && bytes.HasPrefix(k, []byte(prefix)); k, v = c.Next() {
		if drop(k, v) {
			doomed = append(doomed, append([]byte(nil), k...))
		}
	}
	// Deleting behind a cursor skips keys in bbolt: collect, then delete.
	for _, k := range doomed {
		if err := tx.Bucket(bucket).Delete(k); err != nil {
			return 0, err
		}
	}
	return len(doomed), nil
}

// Keys lists the keys of a JSON bucket in byte order.
func (d *DB) Keys(bucket []byte) ([]string, error) {
	var keys []string
	err := d.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).ForEach(func(k, _ []byte) error {
			keys = append(keys, string(k))
			return nil
		})
	})
	return keys, err
}

// PutMeta stores a raw value in the meta bucket.
func (d *DB) PutMeta(key string, v []byte) error {
	return d.update(func(tx *bolt.Tx) error { return tx.Bucket(migrations.BucketMeta).Put([]byte(key), v) })
}

// GetMeta reads a raw value from the meta bucket (nil when absent).
func (d *DB) GetMeta(key string) ([]byte, error) {
	var out []byte
	err := d.bolt.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(migrations.BucketMeta).Get([]byte(key)); v != nil {
			out = append([]byte(nil), v...)
		}
		return nil
	})
	return out, err
}

// PutUint64Meta and GetUint64Meta store counters such as the watcher's index.
func (d *DB) PutUint64Meta(key string, v uint64) error {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return d.PutMeta(key, b[:])
}

// GetUint64Meta reads a counter; 0 when absent.
func (d *DB) GetUint64Meta(key string) (uint64, error) {
	b, err := d.GetMeta(key)
	if err != nil || b == nil {
		return 0, err
	}
	if len(b) != 8 {
		return 0, fmt.Errorf("meta %s has %d bytes, want 8", key, len(b))
	}
	return binary.BigEndian.Uint64(b), nil
}

// DeleteWithoutHistory deletes, in one transaction, the keys of bucket
// that start with prefix whose policy (the rest of the key) has no history
// left: no raw series, open-window points or rollups named
// SeriesName(policy, metric) for any metric. A policy's model fit, plan
// and tuning describe its history; once retention has taken the last of
// it (the policy was removed, or has recorded nothing for that long) they
// describe nothing, and would otherwise stay for the file's life. It
// returns how many keys went. A key of a policy that is still sampled is
// never deleted: its series are in the open window from its first point.
func (d *DB) DeleteWithoutHistory(bucket []byte, prefix string) (int, error) {
	// The open window and the chunks are read as one: a write moving
	// points from one to the other waits.
	d.hmu.Lock()
	defer d.hmu.Unlock()
	open := slices.Sorted(maps.Keys(d.heads.series))
	deleted := 0
	err := d.update(func(tx *bolt.Tx) (err error) {
		hasHistory := func(policy string) bool {
			p := SeriesName(policy, "")
			if i, _ := slices.BinarySearch(open, p); i < len(open) && strings.HasPrefix(open[i], p) {
				return true
			}
			for _, root := range [][]byte{migrations.BucketSeries, migrations.BucketRollups} {
				if k, _ := tx.Bucket(root).Cursor().Seek([]byte(p)); k != nil && bytes.HasPrefix(k, []byte(p)) {
					return true
				}
			}
			return false
		}
		deleted, err = deletePrefixedTx(tx, bucket, prefix, func(k, _ []byte) bool { return !hasHistory(string(k[len(prefix):])) })
		return err
	})
	return deleted, err
}
