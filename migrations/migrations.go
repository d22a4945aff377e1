// Package migrations owns the bbolt schema of nomadscalerd: the bucket names,
// the schema version kept in the meta bucket, and the numbered steps that take
// a database from any older version to the current one.
//
// Each migration runs in its own read-write transaction together with the
// version bump, so a crash leaves the database at a whole version, never
// between two.
package migrations

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"

	bolt "go.etcd.io/bbolt"

	"github.com/nomadscalerd/nomadscalerd/store/chunk"
)

// Top-level bucket names.
var (
	BucketMeta    = []byte("meta")    // schema version, watcher index, leader info
	BucketSeries  = []byte("series")  // one nested bucket per series: big-endian first time of a chunk -> compressed chunk (store/chunk)
	BucketRollups = []byte("rollups") // one nested bucket per series: 1-minute aggregates
	BucketFits    = []byte("fits")    // policy -> JSON model fit
	BucketPlans   = []byte("plans")   // policy -> JSON plan
	BucketJournal = []byte("journal") // big-endian sequence -> JSON action entry, append-only
	BucketState   = []byte("state")   // name -> JSON controller state (cooldowns, idle counters)
	// BucketJournalOpen indexes the actions whose latest entry is an
	// intent: action ID -> big-endian first seq, latest seq.
	BucketJournalOpen = []byte("journal_open")
	// BucketJournalLast indexes each target's latest entry: target ->
	// big-endian seq.
	BucketJournalLast = []byte("journal_last")
	BucketHead        = []byte("head") // big-endian sequence -> one write's points of the open window, the write-ahead log of the chunks
)

// KeySchemaVersion is the key in BucketMeta holding the schema version as a
// big-endian uint64.
var KeySchemaVersion = []byte("schema_version")

// ErrSchemaTooNew is returned for a database written by a newer binary: it
// may hold data this binary would misread or destroy.
var ErrSchemaTooNew = errors.New("database schema is newer than this binary knows")

// Migration is one numbered, transactional schema step.
type Migration struct {
	Version uint64
	Name    string
	Apply   func(tx *bolt.Tx) error
}

// All lists the migrations in order; Version i+1 at index i.
func All() []Migration {
	return []Migration{
		{Version: 1, Name: "initial buckets", Apply: createBuckets(BucketMeta, BucketSeries, BucketFits, BucketPlans, BucketJournal)},
		{Version: 2, Name: "rollups and controller state", Apply: createBuckets(BucketRollups, BucketState)},
		{Version: 3, Name: "journal indexes of open actions and of each target's last entry", Apply: indexJournal},
		{Version: 4, Name: "compressed series and rollup chunks", Apply: chunkSeries},
	}
}

// Latest is the schema version this binary writes.
func Latest() uint64 { return uint64(len(All())) }

func createBuckets(names ...[]byte) func(tx *bolt.Tx) error {
	return func(tx *bolt.Tx) error {
		for _, n := range names {
			if _, err := tx.CreateBucketIfNotExists(n); err != nil {
				return fmt.Errorf("create bucket %s: %w", n, err)
			}
		}
		return nil
	}
}

// indexJournal builds the journal's indexes from the entries already in
// it, so open-action and last-action reads need not scan it again.
func indexJournal(tx *bolt.Tx) error {
	if err := createBuckets(BucketJournalOpen, BucketJournalLast)(tx); err != nil {
		return err
	}
	open, last := tx.Bucket(BucketJournalOpen), tx.Bucket(BucketJournalLast)
	return tx.Bucket(BucketJournal).ForEach(func(k, v []byte) error {
		var e struct {
			ActionID string `json:"action_id"`
			State    string `json:"state"`
			Target   string `json:"target"`
		}
		if err := json.Unmarshal(v, &e); err != nil {
			return fmt.Errorf("journal entry %x: %w", k, err)
		}
		return IndexJournalEntry(open, last, binary.BigEndian.Uint64(k), e.ActionID, e.State, e.Target)
	})
}

// IndexJournalEntry records entry seq in the journal's indexes: the store
// calls it in the transaction of every append, the migration for each old
// entry.
func IndexJournalEntry(open, last *bolt.Bucket, seq uint64, actionID, state, target string) error {
	var s [8]byte
	binary.BigEndian.PutUint64(s[:], seq)
	if err := last.Put([]byte(target), s[:]); err != nil {
		return err
	}
	if state != "intent" {
		return open.Delete([]byte(actionID))
	}
	v := make([]byte, 16)
	if cur := open.Get([]byte(actionID)); len(cur) == 16 {
		copy(v[:8], cur[:8]) // still open: keep when it started
	} else {
		copy(v[:8], s[:])
	}
	copy(v[8:], s[:])
	return open.Put([]byte(actionID), v)
}

// Version reads the schema version; 0 for an empty database.
func Version(tx *bolt.Tx) (uint64, error) {
	b := tx.Bucket(BucketMeta)
	if b == nil {
		return 0, nil
	}
	v := b.Get(KeySchemaVersion)
	if v == nil {
		return 0, nil
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("schema version has %d bytes, want 8", len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

func setVersion(tx *bolt.Tx, v uint64) error {
	b, err := tx.CreateBucketIfNotExists(BucketMeta)
	if err != nil {
		return fmt.Errorf("create meta bucket: %w", err)
	}
	var buf [8]byte
	binary.BigEndian.PutUint64(buf[:], v)
	return b.Put(KeySchemaVersion, buf[:])
}

// Check returns the current version and ErrSchemaTooNew when the database is
// ahead of this binary, without changing anything.
func Check(db *bolt.DB) (uint64, error) {
	var v uint64
	err := db.View(func(tx *bolt.Tx) error {
		var err error
		v, err = Version(tx)
		return err
	})
	if err != nil {
		return 0, err
	}
	if v > Latest() {
		return v, fmt.Errorf("%w: database is at version %d, this binary knows up to %d", ErrSchemaTooNew, v, Latest())
	}
	return v, nil
}

// Migrate applies every pending migration, each in its own transaction, and
// returns the versions before and after.
func Migrate(db *bolt.DB) (from, to uint64, err error) {
	return migrate(db, All())
}

func migrate(db *bolt.DB, steps []Migration) (from, to uint64, err error) {
	from, err = Check(db)
	if err != nil {
		return from, from, err
	}
	to = from
	for _, m := range steps {
		if m.Version <= to {
			continue
		}
		err := db.Update(func(tx *bolt.Tx) error {
			if err := m.Apply(tx); err != nil {
				return err
			}
			return setVersion(tx, m.Version)
		})
		if err != nil {
			return from, to, fmt.Errorf("migration %d (%s): %w", m.Version, m.Name, err)
		}
		to = m.Version
	}
	return from, to, nil
}

// chunkSeries rewrites every raw series of schema 2, one key per point
// (8-byte big-endian unix milliseconds -> 8-byte float64 bits), as
// compressed chunks of up to 2,000 bytes (store/chunk), and creates the head bucket
// that logs the window still open. It runs in one transaction like every
// migration, holding one series' points in memory at a time; a point that
// is not 8+8 bytes fails the migration (db check names it) rather than
// being dropped.
func chunkSeries(tx *bolt.Tx) error {
	if _, err := tx.CreateBucketIfNotExists(BucketHead); err != nil {
		return fmt.Errorf("create bucket %s: %w", BucketHead, err)
	}
	root := tx.Bucket(BucketSeries)
	if root == nil {
		return fmt.Errorf("bucket %s missing", BucketSeries)
	}
	var names [][]byte
	if err := root.ForEachBucket(func(name []byte) error {
		names = append(names, append([]byte(nil), name...))
		return nil
	}); err != nil {
		return fmt.Errorf("list series: %w", err)
	}
	for _, name := range names {
		var points []chunk.Sample
		err := root.Bucket(name).ForEach(func(k, v []byte) error {
			if len(k) != 8 || len(v) != 8 {
				return fmt.Errorf("key %x (%d bytes) with a value of %d bytes is not a point", k, len(k), len(v))
			}
			points = append(points, chunk.Sample{T: int64(binary.BigEndian.Uint64(k)), V: math.Float64frombits(binary.BigEndian.Uint64(v))})
			return nil
		})
		if err != nil {
			return fmt.Errorf("series %q: %w", name, err)
		}
		if err := root.DeleteBucket(name); err != nil {
			return fmt.Errorf("series %q: %w", name, err)
		}
		b, err := root.CreateBucket(name)
		if err != nil {
			return fmt.Errorf("series %q: %w", name, err)
		}
		// Keys go in in time order: full pages, not half-empty ones.
		b.FillPercent = 1
		if err := chunk.Split(points, func(first int64, c []byte) error { return b.Put(chunk.Key(first), c) }); err != nil {
			return fmt.Errorf("series %q: %w", name, err)
		}
	}
	return chunkRollups(tx)
}

// RollupFields are the sub-buckets of a rollup series from schema 3 on,
// one chunked series per field of store.Rollup, in the order of schema
// 2's 32-byte value.
func RollupFields() [][]byte {
	return [][]byte{[]byte("mean"), []byte("min"), []byte("max"), []byte("count")}
}

// chunkRollups rewrites every rollup series of schema 2, one key per
// minute (8-byte big-endian unix milliseconds -> mean, min, max and count
// as big-endian float64 bits), as four chunked series in a bucket of the
// series' name.
func chunkRollups(tx *bolt.Tx) error {
	root := tx.Bucket(BucketRollups)
	if root == nil {
		return fmt.Errorf("bucket %s missing", BucketRollups)
	}
	var names [][]byte
	if err := root.ForEachBucket(func(name []byte) error {
		names = append(names, append([]byte(nil), name...))
		return nil
	}); err != nil {
		return fmt.Errorf("list rollups: %w", err)
	}
	for _, name := range names {
		var fields [4][]chunk.Sample
		err := root.Bucket(name).ForEach(func(k, v []byte) error {
			if len(k) != 8 || len(v) != 32 {
				return fmt.Errorf("key %x (%d bytes) with a value of %d bytes is not a rollup", k, len(k), len(v))
			}
			t := int64(binary.BigEndian.Uint64(k))
			for f := range fields {
				fields[f] = append(fields[f], chunk.Sample{T: t, V: math.Float64frombits(binary.BigEndian.Uint64(v[f*8:]))})
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("rollup %q: %w", name, err)
		}
		if err := root.DeleteBucket(name); err != nil {
			return fmt.Errorf("rollup %q: %w", name, err)
		}
		b, err := root.CreateBucket(name)
		if err != nil {
			return fmt.Errorf("rollup %q: %w", name, err)
		}
		for f, field := range RollupFields() {
			fb, err := b.CreateBucket(field)
			if err != nil {
				return fmt.Errorf("rollup %q: %w", name, err)
			}
			fb.FillPercent = 1
			if err := chunk.SplitSpan(fields[f], chunk.RollupMaxSpanMillis, func(first int64, c []byte) error { return fb.Put(chunk.Key(first), c) }); err != nil {
				return fmt.Errorf("rollup %q: %w", name, err)
			}
		}
	}
	return nil
}
