package store

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/nomadscalerd/nomadscalerd/migrations"
	"github.com/nomadscalerd/nomadscalerd/store/chunk"
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
	// Shorter than bbolt's meta pages: bbolt's own error for it has no type.
	short := filepath.Join(t.TempDir(), "short.db")
	if err := os.WriteFile(short, make([]byte, 5000), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, ro := range []bool{false, true} {
		_, err := Open(short, Options{Migrate: true, ReadOnly: ro})
		var dmg *DamagedError
		if !errors.As(err, &dmg) || dmg.Path != short || !strings.Contains(dmg.Cause, "5000 bytes") {
			t.Errorf("read-only %v: a 5,000-byte file gave %v; want a DamagedError saying how short it is", ro, err)
		}
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

// A chunk whose two count bytes were zeroed (a torn page, a bad sector)
// would decode to no samples, and every reader takes a chunk's last one:
// it is damage, which db check names, and the file still opens.
func TestAChunkThatSaysItHoldsNoSamplesIsReportedByCheckAndDoesNotStopOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "z.db")
	db, err := Open(path, Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 400; i++ { // several windows: chunks get sealed
		if err := db.WritePoints([]Point{{Series: "default/web/api/requests", T: at.Add(time.Duration(i) * time.Second), V: 1}}); err != nil {
			t.Fatal(err)
		}
	}
	// Damage the series' last chunk: keep the format byte, zero the count.
	err = db.bolt.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(migrations.BucketSeries).Bucket([]byte("default/web/api/requests"))
		k, v := b.Cursor().Last()
		if k == nil {
			t.Fatal("no chunk was sealed")
		}
		bad := append([]byte(nil), v...)
		bad[1], bad[2] = 0, 0
		if _, err := chunk.Decode(nil, bad); err != nil {
			t.Logf("damaged chunk is rejected by Decode: %v", err)
		}
		return b.Put(append([]byte(nil), k...), bad)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = Open(path, Options{Migrate: true})
	if err != nil {
		t.Fatalf("Open with one damaged chunk: %v", err)
	}
	defer db.Close()
	rep, err := db.Check()
	if err != nil || len(rep.Problems) == 0 {
		t.Fatalf("db check: problems %v, err %v; want the damaged chunk named", rep.Problems, err)
	}
}
