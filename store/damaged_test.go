package store

import (
	"errors"

	bolt "go.etcd.io/bbolt"

	"github.com/nomadscalerd/nomadscalerd/migrations"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// filledDB writes enough points for the file to span many pages.
func filledDB(t *testing.T) (path string, used int64) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "d.db")
	db, err := Open(path, Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for tick := 0; tick < 200; tick++ {
		var pts []Point
		for s := 0; s < 20; s++ {
			pts = append(pts, Point{Series: "default/web/api/s" + string(rune('a'+s)), T: at.Add(time.Duration(tick) * time.Second), V: float64(tick)})
		}
		if err := db.WritePoints(pts); err != nil {
			t.Fatal(err)
		}
	}
	// Compressed history is small: the pages in use end well before the
	// file does (bbolt grows it ahead), and a cut must fall among them.
	if err := db.bolt.View(func(tx *bolt.Tx) error { used = tx.Size(); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return path, used
}

func TestATruncatedOrEmptyDatabaseIsReportedDamagedNotAPanic(t *testing.T) {
	path, used := filledDB(t)
	if err := os.Truncate(path, used/2); err != nil {
		t.Fatal(err)
	}
	for _, ro := range []bool{false, true} {
		db, err := Open(path, Options{Migrate: true, ReadOnly: ro})
		if err == nil {
			// Some truncations leave the meta pages intact: the damage then
			// shows when the data is read, and Check must say so.
			_, err = db.Check()
			db.Close()
		}
		if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "db check") {
			t.Errorf("read-only %v: truncated file gave %v; want ErrDamaged naming the file and db check", ro, err)
		}
	}
	empty := filepath.Join(t.TempDir(), "empty.db")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(empty, Options{ReadOnly: true}); !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "empty") {
		t.Errorf("empty file: %v, want ErrDamaged saying it is empty", err)
	}
}

func TestPingReportsTheDatabaseDegradedWhileWritesFailAndRecovers(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "w.db"), Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// A transaction that fails in bbolt, not in the caller's code, is the
	// storage's fault; a closed bbolt handle stands in for a full disk
	// here (both refuse every write).
	rw := db.bolt
	ro, err := bolt.Open(db.path+".ro", 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if err := ro.Close(); err != nil {
		t.Fatal(err)
	}
	db.bolt = ro // closed: every transaction fails before the caller's code runs
	for range 3 {
		if err := db.PutJSON(migrations.BucketState, "k", 1); err == nil {
			t.Fatal("a write to a closed database succeeded")
		}
	}
	err = db.Ping()
	if err == nil || !strings.Contains(err.Error(), "degraded: 3 writes failed") {
		t.Fatalf("ping while writes fail: %v, want degraded with a count", err)
	}
	db.bolt = rw
	if err := db.PutJSON(migrations.BucketState, "k", 1); err != nil {
		t.Fatal(err)
	}
	if err := db.Ping(); err != nil {
		t.Errorf("ping after a write worked again: %v", err)
	}
}
