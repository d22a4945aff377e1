package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/nomadscalerd/nomadscalerd/migrations"
)

// JournalEntry records one step of an action against Nomad or a provider.
// Entries are only appended: an action is a sequence of entries sharing an
// ActionID (intent, then done or failed), so after a crash the last entry of
// each action says whether it must be finished, undone, or left alone.
type JournalEntry struct {
	Seq      uint64          `json:"seq"`
	Time     time.Time       `json:"time"`
	ActionID string          `json:"action_id"`
	Kind     string          `json:"kind"`  // e.g. "scale", "drain", "terminate", "scale_out"
	State    string          `json:"state"` // "intent", "done", "failed", "undone"
	Target   string          `json:"target"`
	Reason   string          `json:"reason,omitempty"`
	Data     json.RawMessage `json:"data,omitempty"`
}

// Journal states.
const (
	StateIntent = "intent"
	StateDone   = "done"
	StateFailed = "failed"
	StateUndone = "undone"
)

// Append adds e to the journal with the next sequence number, in its own
// transaction, and returns the stored entry.
func (d *DB) Append(e JournalEntry) (JournalEntry, error) {
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	err := d.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(migrations.BucketJournal)
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		e.Seq = seq
		data, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("encode journal entry: %w", err)
		}
		var k [8]byte
		binary.BigEndian.PutUint64(k[:], seq)
		if err := b.Put(k[:], data); err != nil {
			return err
		}
		return migrations.IndexJournalEntry(tx.Bucket(migrations.BucketJournalOpen), tx.Bucket(migrations.BucketJournalLast),
			seq, e.ActionID, e.State, e.Target)
	})
	return e, err
}

// entryAt reads the entry with sequence seq.
func entryAt(tx *bolt.Tx, seq []byte) (JournalEntry, bool, error) {
	v := tx.Bucket(migrations.BucketJournal).Get(seq)
	if v == nil {
		return JournalEntry{}, false, nil
	}
	var e JournalEntry
	if err := json.Unmarshal(v, &e); err != nil {
		return e, false, fmt.Errorf("journal entry %x: %w", seq, err)
	}
	return e, true, nil
}

// Entries returns journal entries with Seq > after, oldest first, at most
// limit of them (0: all).
func (d *DB) Entries(after uint64, limit int) ([]JournalEntry, error) {
	var out []JournalEntry
	err := d.bolt.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(migrations.BucketJournal).Cursor()
		var start [8]byte
		binary.BigEndian.PutUint64(start[:], after+1)
		for k, v := c.Seek(start[:]); k != nil; k, v = c.Next() {
			var e JournalEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("journal entry %x: %w", k, err)
			}
			out = append(out, e)
			if limit > 0 && len(out) == limit {
				break
			}
		}
		return nil
	})
	return out, err
}

// OpenActions returns the last entry of every action whose last state is
// intent (work a crash may have cut off), in the order the actions began.
// It reads the open-action index: its cost follows the open actions, not
// the journal's length.
func (d *DB) OpenActions() ([]JournalEntry, error) {
	type open struct {
		first uint64
		e     JournalEntry
	}
	var found []open
	err := d.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(migrations.BucketJournalOpen).ForEach(func(id, v []byte) error {
			if len(v) != 16 {
				return fmt.Errorf("open-action index of %s: %d bytes, want 16", id, len(v))
			}
			e, ok, err := entryAt(tx, v[8:])
			if err != nil || !ok {
				return err
			}
			found = append(found, open{first: binary.BigEndian.Uint64(v[:8]), e: e})
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(found, func(i, j int) bool { return found[i].first < found[j].first })
	out := make([]JournalEntry, len(found))
	for i, f := range found {
		out[i] = f.e
	}
	return out, nil
}

// LastAction returns the most recent entry for target (any state), or
// ErrNotFound, from the per-target index.
func (d *DB) LastAction(target string) (JournalEntry, error) {
	var out JournalEntry
	found := false
	err := d.bolt.View(func(tx *bolt.Tx) error {
		seq := tx.Bucket(migrations.BucketJournalLast).Get([]byte(target))
		if seq == nil {
			return nil
		}
		var err error
		out, found, err = entryAt(tx, seq)
		return err
	})
	if err == nil && !found {
		err = fmt.Errorf("journal for %s: %w", target, ErrNotFound)
	}
	return out, err
}

// CompactJournal deletes the entries older than before of actions that
// are settled (their latest entry is not an intent), keeping each target's
// last entry so status can still say what was done last. It returns how
// many entries it deleted. What it reads is what it deletes plus what it
// keeps (open actions and one entry per target), so the journal stays as
// long as its retention, not the daemon's life.
func (d *DB) CompactJournal(before time.Time) (int, error) {
	deleted := 0
	err := d.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(migrations.BucketJournal)
		open, last := tx.Bucket(migrations.BucketJournalOpen), tx.Bucket(migrations.BucketJournalLast)
		var doomed [][]byte
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			var e JournalEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("journal entry %x: %w", k, err)
			}
			if !e.Time.Before(before) {
				break // entries are appended in time order
			}
			if open.Get([]byte(e.ActionID)) != nil || bytes.Equal(last.Get([]byte(e.Target)), k) {
				continue
			}
			doomed = append(doomed, append([]byte(nil), k...))
		}
		// Deleting behind a cursor skips keys in bbolt: collect, then delete.
		for _, k := range doomed {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		deleted = len(doomed)
		return nil
	})
	return deleted, err
}
