package migrations

import (
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
