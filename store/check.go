package store

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"runtime/debug"

	bolt "go.etcd.io/bbolt"

	"github.com/nomadscalerd/nomadscalerd/migrations"
	"github.com/nomadscalerd/nomadscalerd/store/chunk"
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
	// A page past the end of a truncated file faults when read; as a
	// panic it is recovered below.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
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
		if root := tx.Bucket(migrations.BucketSeries); root == nil {
			bad("bucket series missing")
		} else {
			_ = root.ForEachBucket(func(series []byte) error {
				prevLast := int64(math.MinInt64)
				return root.Bucket(series).ForEach(func(k, v []byte) error {
					rep.Keys["series"]++
					if p := checkChunk(k, v, &prevLast); p != "" {
						bad("series/%s: %s", series, p)
					}
					return nil
				})
			})
		}
		if root := tx.Bucket(migrations.BucketRollups); root == nil {
			bad("bucket rollups missing")
		} else {
			_ = root.ForEachBucket(func(series []byte) error {
				counts := map[string]int{}
				fields := migrations.RollupFields()
				for _, f := range fields {
					fb := root.Bucket(series).Bucket(f)
					if fb == nil {
						bad("rollups/%s: field %s missing", series, f)
						continue
					}
					prevLast := int64(math.MinInt64)
					_ = fb.ForEach(func(k, v []byte) error {
						rep.Keys["rollups"]++
						if p := checkChunk(k, v, &prevLast); p != "" {
							bad("rollups/%s/%s: %s", series, f, p)
						}
						n, _ := chunk.NumSamples(v)
						counts[string(f)] += n
						return nil
					})
				}
				for _, f := range fields[1:] {
					if counts[string(f)] != counts[string(fields[0])] {
						bad("rollups/%s: %d %s, %d %s", series, counts[string(fields[0])], fields[0], counts[string(f)], f)
					}
				}
				return nil
			})
		}
		if h := tx.Bucket(migrations.BucketHead); h == nil {
			bad("bucket head missing")
		} else {
			_ = h.ForEach(func(k, v []byte) error {
				rep.Keys["head"]++
				if len(k) != 8 {
					bad("head: key %x is not a sequence", k)
				} else if _, err := decodeLog(v); err != nil {
					bad("head/%d: %v", binary.BigEndian.Uint64(k), err)
				}
				return nil
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

// checkChunk says what is wrong with one stored chunk, or "": it must
// decode, start at its key, and start after the series' previous chunk
// ended (*prevLast, updated).
func checkChunk(k, v []byte, prevLast *int64) string {
	t, err := chunk.KeyTime(k)
	if err != nil {
		return fmt.Sprintf("key %x: %v", k, err)
	}
	s, err := chunk.Decode(nil, v)
	if err != nil {
		return fmt.Sprintf("chunk at %d: %v", t, err)
	}
	if s[0].T != t {
		return fmt.Sprintf("chunk at %d starts at %d", t, s[0].T)
	}
	if t <= *prevLast {
		return fmt.Sprintf("chunk at %d overlaps the one before, which ends at %d", t, *prevLast)
	}
	*prevLast = s[len(s)-1].T
	return ""
}
