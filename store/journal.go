package store

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
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
		return b.Put(k[:], data)
	})
	return e, err
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

// Open returns the last entry of every action whose last state is intent:
// work a crash may have cut off.
func (d *DB) OpenActions() ([]JournalEntry, error) {
	all, err := d.Entries(0, 0)
	if err != nil {
		return nil, err
	}
	last := map[string]JournalEntry{}
	var order []string
	for _, e := range all {
		if _, ok := last[e.ActionID]; !ok {
			order = append(order, e.ActionID)
		}
		last[e.ActionID] = e
	}
	var open []JournalEntry
	for _, id := range order {
		if e := last[id]; e.State == StateIntent {
			open = append(open, e)
		}
	}
	return open, nil
}

// LastAction returns the most recent entry for target (any state), or
// ErrNotFound.
func (d *DB) LastAction(target string) (JournalEntry, error) {
	var out JournalEntry
	found := false
	err := d.bolt.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(migrations.BucketJournal).Cursor()
		for k, v := c.Last(); k != nil; k, v = c.Prev() {
			var e JournalEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("journal entry %x: %w", k, err)
			}
			if e.Target == target {
				out, found = e, true
				return nil
			}
		}
		return nil
	})
	if err == nil && !found {
		err = fmt.Errorf("journal for %s: %w", target, ErrNotFound)
	}
	return out, err
}
