package migrations

import (
	"encoding/binary"
	"errors"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
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
		for _, b := range [][]byte{BucketMeta, BucketSeries, BucketRollups, BucketFits, BucketPlans, BucketJournal, BucketState} {
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
