package store

import (
	"encoding/binary"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/nomadscalerd/nomadscalerd/migrations"
)

// CheckReport counts what Check decoded, per bucket.
type CheckReport struct {
	SchemaVersion uint64         `json:"schema_version"`
	Keys          map[string]int `json:"keys"`
	Problems      []string       `json:"problems,omitempty"`
}

// Check decodes every key and value of every bucket and reports the ones that
// do not decode, together with bbolt's own page consistency check.
func (d *DB) Check() (rep CheckReport, err error) {
	rep = CheckReport{Keys: map[string]int{}}
	defer func() {
		// bbolt panics on some damaged pages instead of returning an error.
		if r := recover(); r != nil {
			rep.Problems = append(rep.Problems, fmt.Sprintf("bbolt: %v", r))
			err = damaged(d.path, r)
		}
	}()
	v, err := d.SchemaVersion()
	if err != nil {
		return rep, err
	}
	rep.SchemaVersion = v
	bad := func(format string, a ...any) { rep.Problems = append(rep.Problems, fmt.Sprintf(format, a...)) }
	err = d.bolt.View(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{migrations.BucketSeries, migrations.BucketRollups} {
			root := tx.Bucket(name)
			if root == nil {
				bad("bucket %s missing", name)
				continue
			}
			_ = root.ForEachBucket(func(series []byte) error {
				return root.Bucket(series).ForEach(func(k, v []byte) error {
					rep.Keys[string(name)]++
					if _, err := keyTime(k); err != nil {
						bad("%s/%s: key %x: %v", name, series, k, err)
					}
					want := 8
					if string(name) == string(migrations.BucketRollups) {
						want = 32
					}
					if len(v) != want {
						bad("%s/%s: value at %x has %d bytes, want %d", name, series, k, len(v), want)
					}
					return nil
				})
			})
		}
		for _, name := range [][]byte{migrations.BucketFits, migrations.BucketPlans, migrations.BucketState} {
			b := tx.Bucket(name)
			if b == nil {
				bad("bucket %s missing", name)
				continue
			}
			_ = b.ForEach(func(k, v []byte) error {
				rep.Keys[string(name)]++
				if !json.Valid(v) {
					bad("%s/%s: value is not JSON", name, k)
				}
				return nil
			})
		}
		j := tx.Bucket(migrations.BucketJournal)
		if j == nil {
			bad("bucket journal missing")
		} else {
			_ = j.ForEach(func(k, v []byte) error {
				rep.Keys["journal"]++
				var e JournalEntry
				if len(k) != 8 {
					bad("journal: key %x is not a sequence", k)
				} else if err := json.Unmarshal(v, &e); err != nil {
					bad("journal/%d: %v", binary.BigEndian.Uint64(k), err)
				}
				return nil
			})
		}
		if m := tx.Bucket(migrations.BucketMeta); m != nil {
			rep.Keys["meta"] = m.Stats().KeyN
		}
		return nil
	})
	if err != nil {
		return rep, err
	}
	// bbolt's own page check runs on a goroutine of its own, where a panic
	// on a damaged page cannot be recovered: it runs only once the walk
	// above read every page without one.
	err = d.bolt.View(func(tx *bolt.Tx) error {
		for e := range tx.Check() {
			bad("bbolt: %v", e)
		}
		return nil
	})
	return rep, err
}
