package store

import (
	"encoding/binary"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/nomadscalerd/nomadscalerd/migrations"
)

// schema2File writes a database file the way the store of schema 2 did,
// with bbolt directly: its buckets, its version, one key per point and a
// rollup, and closes it.
func schema2File(t *testing.T, pts []Point) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "schema2.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{migrations.BucketMeta, migrations.BucketSeries, migrations.BucketFits, migrations.BucketPlans, migrations.BucketJournal, migrations.BucketRollups, migrations.BucketState} {
			if _, err := tx.CreateBucket(name); err != nil {
				return err
			}
		}
		if err := tx.Bucket(migrations.BucketMeta).Put(migrations.KeySchemaVersion, binary.BigEndian.AppendUint64(nil, 2)); err != nil {
			return err
		}
		for _, p := range pts {
			b, err := tx.Bucket(migrations.BucketSeries).CreateBucketIfNotExists([]byte(p.Series))
			if err != nil {
				return err
			}
			if err := b.Put(binary.BigEndian.AppendUint64(nil, uint64(p.T.UnixMilli())), binary.BigEndian.AppendUint64(nil, math.Float64bits(p.V))); err != nil {
				return err
			}
		}
		r, err := tx.Bucket(migrations.BucketRollups).CreateBucket([]byte("a/x"))
		if err != nil {
			return err
		}
		// Schema 2's rollup value: mean, min, max and count as float64s.
		var v []byte
		for _, f := range []float64{1, 0, 2, 60} {
			v = binary.BigEndian.AppendUint64(v, math.Float64bits(f))
		}
		return r.Put(timeKey(t0), v)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestOpeningASchema2FileMigratesEveryPointIntoChunksAndKeepsRollups(t *testing.T) {
	var pts []Point
	m := map[string]model{"a/x": {}, "b/y": {}}
	for i := range 400 {
		at := t0.Add(time.Duration(i) * time.Second)
		pts = append(pts, Point{"a/x", at, float64(i % 13)})
		m["a/x"][at.UnixMilli()] = float64(i % 13)
	}
	pts = append(pts, Point{"b/y", t0, math.Inf(1)})
	m["b/y"][t0.UnixMilli()] = math.Inf(1)
	path := schema2File(t, pts)
	if _, err := Open(path, Options{}); err == nil || !strings.Contains(err.Error(), "db migrate") {
		t.Fatalf("open without migrating = %v, want a pointer to db migrate", err)
	}
	d, err := Open(path, Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if v, err := d.SchemaVersion(); err != nil || v != migrations.Latest() {
		t.Fatalf("schema %d, %v; want %d", v, err, migrations.Latest())
	}
	rep, err := d.Check()
	if err != nil || len(rep.Problems) > 0 || rep.Keys["series"] != 2 { // a/x's 400 small values fit one chunk
		t.Fatalf("check after migration: %+v, %v", rep, err)
	}
	for name, want := range m {
		got, err := d.Range(name, time.Time{}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		sameSamples(t, name, got, want.want(time.Time{}, time.Time{}))
	}
	ru, err := d.RangeRollups("a/x", time.Time{}, time.Time{})
	if err != nil || len(ru) != 1 || ru[0].Count != 60 {
		t.Fatalf("rollups after migration = %+v, %v", ru, err)
	}
	// The daemon writes on into the window the migration left last.
	next := Point{"a/x", t0.Add(400 * time.Second), 99}
	if err := d.WritePoints([]Point{next, {"a/x", t0.Add(10 * time.Minute), 100}}); err != nil {
		t.Fatal(err)
	}
	got, err := d.Range("a/x", t0.Add(399*time.Second), time.Time{})
	if err != nil || len(got) != 3 || got[1].V != 99 || got[2].V != 100 {
		t.Fatalf("after writing on = %+v, %v", got, err)
	}
}
