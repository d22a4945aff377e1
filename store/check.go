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
func (d *DB) Check() (CheckReport, error) {
	rep := CheckReport{Keys: map[string]int{}}
	v, err := d.SchemaVersion()
	if err != nil {
		return rep, err
	}
	rep.SchemaVersion = v
	bad := func(format string, a ...any) { rep.Problems = append(rep.Problems, fmt.Sprintf(format, a...)) }
	err = d.bolt.View(func(tx *bolt.Tx) error {
		for e := range tx.Check() {
			bad("bbolt: %v", e)
		}
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
	return rep, err
}
