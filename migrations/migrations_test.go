package migrations

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/nomadscalerd/nomadscalerd/store/chunk"
)

func openTemp(t *testing.T) *bolt.DB {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "m.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestMigrateTakesAnEmptyDatabaseToLatestAndCreatesEveryBucket(t *testing.T) {
	db := openTemp(t)
	from, to, err := Migrate(db)
	if err != nil {
		t.Fatal(err)
	}
	if from != 0 || to != Latest() {
		t.Fatalf("migrated %d -> %d, want 0 -> %d", from, to, Latest())
	}
	err = db.View(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{BucketMeta, BucketSeries, BucketRollups, BucketFits, BucketPlans, BucketJournal, BucketState, BucketHead, BucketJournalOpen, BucketJournalLast} {
			if tx.Bucket(b) == nil {
				t.Errorf("bucket %s missing", b)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestMigrateTwiceIsANoop(t *testing.T) {
	db := openTemp(t)
	if _, _, err := Migrate(db); err != nil {
		t.Fatal(err)
	}
	from, to, err := Migrate(db)
	if err != nil || from != Latest() || to != Latest() {
		t.Fatalf("second migrate: %d -> %d, %v", from, to, err)
	}
}

func TestMigrateStopsAtAFailingStepAndKeepsTheVersionBeforeIt(t *testing.T) {
	db := openTemp(t)
	steps := []Migration{
		All()[0],
		{Version: 2, Name: "half done", Apply: func(tx *bolt.Tx) error {
			if _, err := tx.CreateBucket([]byte("partial")); err != nil {
				return err
			}
			return errors.New("boom")
		}},
	}
	_, to, err := migrate(db, steps)
	if err == nil || to != 1 {
		t.Fatalf("migrate = %d, %v; want version 1 and an error", to, err)
	}
	if v, _ := Check(db); v != 1 {
		t.Fatalf("stored version %d, want 1", v)
	}
	_ = db.View(func(tx *bolt.Tx) error {
		if tx.Bucket([]byte("partial")) != nil {
			t.Error("a failed migration left its bucket behind")
		}
		return nil
	})
}

func TestCheckRefusesADatabaseFromANewerBinary(t *testing.T) {
	db := openTemp(t)
	if err := db.Update(func(tx *bolt.Tx) error { return setVersion(tx, Latest()+1) }); err != nil {
		t.Fatal(err)
	}
	if _, err := Check(db); !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("Check = %v, want ErrSchemaTooNew", err)
	}
	if _, _, err := Migrate(db); !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("Migrate = %v, want ErrSchemaTooNew", err)
	}
}

// writeSchema2 writes points the way schema 2's store did: one key per
// point, 8-byte big-endian unix milliseconds -> 8-byte float64 bits.
func writeSchema2(t *testing.T, db *bolt.DB, series string, pts map[int64]float64) {
	t.Helper()
	err := db.Update(func(tx *bolt.Tx) error {
		b, err := tx.Bucket(BucketSeries).CreateBucketIfNotExists([]byte(series))
		if err != nil {
			return err
		}
		for at, v := range pts {
			var k, val [8]byte
			binary.BigEndian.PutUint64(k[:], uint64(at))
			binary.BigEndian.PutUint64(val[:], math.Float64bits(v))
			if err := b.Put(k[:], val[:]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestTheChunkMigrationRewritesEveryPointOfSchema2AsChunksOfAtMostMaxBytesInTimeOrder(t *testing.T) {
	db := openTemp(t)
	if _, to, err := migrate(db, All()[:2]); err != nil || to != 2 {
		t.Fatalf("to schema 2: %d, %v", to, err)
	}
	start := int64(1_764_547_200_000) // 2025-12-01T00:00:00Z
	want := map[int64]float64{}
	for i := range 5000 { // full-precision values: about 8 bytes each, 20 chunks
		want[start+int64(i)*1000] = 100 * math.Sin(float64(i)*1.7)
	}
	want[start+7000] = math.NaN()
	writeSchema2(t, db, "default/web/requests", want)
	writeSchema2(t, db, "other/one-point", map[int64]float64{start + 1: math.Inf(-1)})
	if _, to, err := Migrate(db); err != nil || to != Latest() {
		t.Fatalf("migrate: %d, %v", to, err)
	}
	err := db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(BucketHead) == nil {
			t.Error("head bucket missing")
		}
		b := tx.Bucket(BucketSeries).Bucket([]byte("default/web/requests"))
		chunks := 0
		last := int64(math.MinInt64)
		got := map[int64]float64{}
		err := b.ForEach(func(k, v []byte) error {
			first, err := chunk.KeyTime(k)
			if err != nil {
				return err
			}
			chunks++
			if len(v) > chunk.MaxBytes {
				t.Errorf("chunk at %d has %d bytes", first, len(v))
			}
			s, err := chunk.Decode(nil, v)
			if err != nil {
				return err
			}
			if s[0].T != first || first <= last {
				t.Errorf("chunk at %d starts at %d, after a chunk ending at %d", first, s[0].T, last)
			}
			last = s[len(s)-1].T
			for _, x := range s {
				got[x.T] = x.V
			}
			return nil
		})
		if err != nil {
			return err
		}
		if chunks < 10 {
			t.Errorf("%d chunks for 5,000 full-precision points, want about 20", chunks)
		}
		if len(got) != len(want) {
			t.Errorf("%d points after migration, want %d", len(got), len(want))
		}
		for at, v := range want {
			if math.Float64bits(got[at]) != math.Float64bits(v) {
				t.Errorf("point at %d = %v, want %v", at, got[at], v)
			}
		}
		k, v := tx.Bucket(BucketSeries).Bucket([]byte("other/one-point")).Cursor().First()
		s, err := chunk.Decode(nil, v)
		if at, _ := chunk.KeyTime(k); err != nil || len(s) != 1 || at != start+1 || !math.IsInf(s[0].V, -1) {
			t.Errorf("one-point series = %v at %d, %v", s, at, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestTheChunkMigrationFailsOnAPointThatIsNotEightPlusEightBytesAndKeepsTheSchemaBeforeIt(t *testing.T) {
	db := openTemp(t)
	if _, _, err := migrate(db, All()[:2]); err != nil {
		t.Fatal(err)
	}
	writeSchema2(t, db, "p/m", map[int64]float64{1000: 1})
	if err := db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(BucketSeries).Bucket([]byte("p/m")).Put([]byte("bad"), []byte{1})
	}); err != nil {
		t.Fatal(err)
	}
	if _, to, err := Migrate(db); err == nil || to != 3 || !strings.Contains(err.Error(), `"p/m"`) {
		t.Fatalf("migrate = %d, %v; want to stay at 3 (the journal indexes) with an error naming the series", to, err)
	}
	if err := db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(BucketSeries).Bucket([]byte("p/m")).Get(binary.BigEndian.AppendUint64(nil, 1000)); len(v) != 8 {
			return fmt.Errorf("the good point is gone: %x", v)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func TestTheChunkMigrationRewritesSchema2RollupsAsFourChunkedFields(t *testing.T) {
	db := openTemp(t)
	if _, _, err := migrate(db, All()[:2]); err != nil {
		t.Fatal(err)
	}
	start := int64(1_764_547_200_000)
	if err := db.Update(func(tx *bolt.Tx) error {
		b, err := tx.Bucket(BucketRollups).CreateBucket([]byte("p/m"))
		if err != nil {
			return err
		}
		for i := range 3000 {
			var v []byte
			for _, f := range []float64{float64(i) + 0.5, float64(i), float64(i + 1), 60} {
				v = binary.BigEndian.AppendUint64(v, math.Float64bits(f))
			}
			if err := b.Put(binary.BigEndian.AppendUint64(nil, uint64(start+int64(i)*60_000)), v); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, to, err := Migrate(db); err != nil || to != Latest() {
		t.Fatalf("migrate: %d, %v", to, err)
	}
	if err := db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(BucketRollups).Bucket([]byte("p/m"))
		for f, field := range RollupFields() {
			var got []chunk.Sample
			err := b.Bucket(field).ForEach(func(_, v []byte) error {
				var err error
				got, err = chunk.Decode(got, v)
				return err
			})
			if err != nil {
				return err
			}
			if len(got) != 3000 {
				return fmt.Errorf("%s: %d rollups, want 3000", field, len(got))
			}
			for i, x := range got {
				want := []float64{float64(i) + 0.5, float64(i), float64(i + 1), 60}[f]
				if x.T != start+int64(i)*60_000 || x.V != want {
					return fmt.Errorf("%s %d = %+v, want %v", field, i, x, want)
				}
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func TestMigratingAVersion2JournalIndexesItsOpenActionsAndEachTargetsLastEntry(t *testing.T) {
	db := openTemp(t)
	if _, _, err := migrate(db, All()[:2]); err != nil {
		t.Fatal(err)
	}
	entries := []string{
		`{"seq":1,"action_id":"a","state":"intent","target":"p/x"}`,
		`{"seq":2,"action_id":"a","state":"done","target":"p/x"}`,
		`{"seq":3,"action_id":"b","state":"intent","target":"p/y"}`,
		`{"seq":4,"action_id":"b","state":"intent","target":"p/y"}`,
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(BucketJournal)
		for i, e := range entries {
			k := make([]byte, 8)
			binary.BigEndian.PutUint64(k, uint64(i+1))
			if err := b.Put(k, []byte(e)); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, to, err := Migrate(db); err != nil || to != Latest() {
		t.Fatalf("migrate: %v (to %d)", err, to)
	}
	if err := db.View(func(tx *bolt.Tx) error {
		open, last := tx.Bucket(BucketJournalOpen), tx.Bucket(BucketJournalLast)
		if open.Get([]byte("a")) != nil {
			t.Error("a settled action is indexed as open")
		}
		v := open.Get([]byte("b"))
		if len(v) != 16 || binary.BigEndian.Uint64(v[:8]) != 3 || binary.BigEndian.Uint64(v[8:]) != 4 {
			t.Errorf("open index of b = %x, want first seq 3 and latest 4", v)
		}
		if s := last.Get([]byte("p/x")); binary.BigEndian.Uint64(s) != 2 {
			t.Errorf("last entry of p/x = %x, want seq 2", s)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
