package store

import (
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/nomadscalerd/nomadscalerd/migrations"
)

// Point is one sample of one series.
type Point struct {
	Series string
	T      time.Time
	V      float64
}

// Sample is a point of a known series.
type Sample struct {
	T time.Time `json:"t"`
	V float64   `json:"v"`
}

// SeriesInfo summarises a stored series.
type SeriesInfo struct {
	Name  string    `json:"name"`
	First time.Time `json:"first"`
	Last  time.Time `json:"last"`
	Count int       `json:"count"`
}

// SeriesName joins a policy and a metric into a series key.
func SeriesName(policy, metric string) string { return policy + "/" + metric }

// WritePoints stores every point in one transaction: one tick, one commit,
// however many series it touches. A crash leaves all or none of them.
func (d *DB) WritePoints(pts []Point) error {
	if len(pts) == 0 {
		return nil
	}
	return d.update(func(tx *bolt.Tx) error {
		root := tx.Bucket(migrations.BucketSeries)
		for _, p := range pts {
			b, err := root.CreateBucketIfNotExists([]byte(p.Series))
			if err != nil {
				return fmt.Errorf("series %q: %w", p.Series, err)
			}
			if err := b.Put(timeKey(p.T), floatValue(p.V)); err != nil {
				return fmt.Errorf("series %q: %w", p.Series, err)
			}
		}
		return nil
	})
}

// Range returns the samples of series with from <= t < to, oldest first.
// A zero to means no upper bound.
func (d *DB) Range(series string, from, to time.Time) ([]Sample, error) {
	var out []Sample
	err := d.bolt.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(migrations.BucketSeries).Bucket([]byte(series))
		if b == nil {
			return fmt.Errorf("series %q: %w", series, ErrNotFound)
		}
		c := b.Cursor()
		for k, v := seek(c, from); k != nil; k, v = c.Next() {
			t, err := keyTime(k)
			if err != nil {
				return err
			}
			if !to.IsZero() && !t.Before(to) {
				break
			}
			f, err := valueFloat(v)
			if err != nil {
				return err
			}
			out = append(out, Sample{T: t, V: f})
		}
		return nil
	})
	return out, err
}

// ListSeries summarises every raw series.
func (d *DB) ListSeries() ([]SeriesInfo, error) { return d.listNested(migrations.BucketSeries) }

// ListRollups summarises every rollup series.
func (d *DB) ListRollups() ([]SeriesInfo, error) { return d.listNested(migrations.BucketRollups) }

func (d *DB) listNested(bucket []byte) ([]SeriesInfo, error) {
	var out []SeriesInfo
	err := d.bolt.View(func(tx *bolt.Tx) error {
		root := tx.Bucket(bucket)
		return root.ForEachBucket(func(name []byte) error {
			b := root.Bucket(name)
			info := SeriesInfo{Name: string(name), Count: b.Stats().KeyN}
			c := b.Cursor()
			if k, _ := c.First(); k != nil {
				info.First, _ = keyTime(k)
			}
			if k, _ := c.Last(); k != nil {
				info.Last, _ = keyTime(k)
			}
			out = append(out, info)
			return nil
		})
	})
	return out, err
}

// Rollup is one aggregated interval of a series.
type Rollup struct {
	T     time.Time `json:"t"`
	Mean  float64   `json:"mean"`
	Min   float64   `json:"min"`
	Max   float64   `json:"max"`
	Count uint64    `json:"count"`
}

// WriteRollups stores aggregates in one transaction, keyed by interval start.
func (d *DB) WriteRollups(series string, rs []Rollup) error {
	if len(rs) == 0 {
		return nil
	}
	return d.update(func(tx *bolt.Tx) error {
		b, err := tx.Bucket(migrations.BucketRollups).CreateBucketIfNotExists([]byte(series))
		if err != nil {
			return fmt.Errorf("rollup %q: %w", series, err)
		}
		for _, r := range rs {
			if err := b.Put(timeKey(r.T), encodeRollup(r)); err != nil {
				return err
			}
		}
		return nil
	})
}

// RangeRollups returns the rollups of series with from <= t < to.
func (d *DB) RangeRollups(series string, from, to time.Time) ([]Rollup, error) {
	var out []Rollup
	err := d.bolt.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(migrations.BucketRollups).Bucket([]byte(series))
		if b == nil {
			return fmt.Errorf("rollup %q: %w", series, ErrNotFound)
		}
		c := b.Cursor()
		for k, v := seek(c, from); k != nil; k, v = c.Next() {
			r, err := decodeRollup(k, v)
			if err != nil {
				return err
			}
			if !to.IsZero() && !r.T.Before(to) {
				break
			}
			out = append(out, r)
		}
		return nil
	})
	return out, err
}

func encodeRollup(r Rollup) []byte {
	b := make([]byte, 0, 32)
	b = append(b, floatValue(r.Mean)...)
	b = append(b, floatValue(r.Min)...)
	b = append(b, floatValue(r.Max)...)
	b = append(b, floatValue(float64(r.Count))...)
	return b
}

func decodeRollup(k, v []byte) (Rollup, error) {
	t, err := keyTime(k)
	if err != nil {
		return Rollup{}, err
	}
	if len(v) != 32 {
		return Rollup{}, fmt.Errorf("rollup value has %d bytes, want 32", len(v))
	}
	f := func(i int) float64 { x, _ := valueFloat(v[i*8 : i*8+8]); return x }
	return Rollup{T: t, Mean: f(0), Min: f(1), Max: f(2), Count: uint64(f(3))}, nil
}

// Prune deletes raw points older than rawBefore and rollups older than
// rollupBefore, in one transaction, and returns how many keys went.
func (d *DB) Prune(rawBefore, rollupBefore time.Time) (int, error) {
	n := 0
	err := d.update(func(tx *bolt.Tx) error {
		for _, spec := range []struct {
			bucket []byte
			before time.Time
		}{{migrations.BucketSeries, rawBefore}, {migrations.BucketRollups, rollupBefore}} {
			root := tx.Bucket(spec.bucket)
			var empty [][]byte
			err := root.ForEachBucket(func(name []byte) error {
				b := root.Bucket(name)
				c := b.Cursor()
				limit := timeKey(spec.before)
				for k, _ := c.First(); k != nil && string(k) < string(limit); k, _ = c.First() {
					if err := c.Delete(); err != nil {
						return err
					}
					n++
				}
				if k, _ := c.First(); k == nil {
					empty = append(empty, append([]byte(nil), name...))
				}
				return nil
			})
			if err != nil {
				return err
			}
			for _, name := range empty {
				if err := root.DeleteBucket(name); err != nil {
					return err
				}
			}
		}
		return nil
	})
	return n, err
}

// seek positions c at the first key at or after from; a zero from means the
// beginning (its unix milliseconds are negative and would wrap).
func seek(c *bolt.Cursor, from time.Time) ([]byte, []byte) {
	if from.IsZero() || from.UnixMilli() < 0 {
		return c.First()
	}
	return c.Seek(timeKey(from))
}
