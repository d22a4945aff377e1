package store

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/nomadscalerd/nomadscalerd/migrations"
	"github.com/nomadscalerd/nomadscalerd/store/chunk"
)

func openTemp(t *testing.T) *DB {
	t.Helper()
	d, err := Open(filepath.Join(t.TempDir(), "s.db"), Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func TestRangeReturnsPointsInTimeOrderWithinBounds(t *testing.T) {
	d := openTemp(t)
	var pts []Point
	for _, s := range []int{5, 1, 3, 2, 4} { // written out of order
		pts = append(pts, Point{Series: "p/m", T: t0.Add(time.Duration(s) * time.Second), V: float64(s)})
	}
	if err := d.WritePoints(pts); err != nil {
		t.Fatal(err)
	}
	got, err := d.Range("p/m", t0.Add(2*time.Second), t0.Add(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].V != 2 || got[1].V != 3 || got[2].V != 4 {
		t.Fatalf("range = %+v, want values 2,3,4", got)
	}
}

func TestRangeOfAnUnknownSeriesIsNotFound(t *testing.T) {
	d := openTemp(t)
	if _, err := d.Range("nope", t0, time.Time{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("err = %v", err)
	}
}

func TestListSeriesReportsFirstLastAndCount(t *testing.T) {
	d := openTemp(t)
	_ = d.WritePoints([]Point{{"a/x", t0, 1}, {"a/x", t0.Add(time.Minute), 2}, {"b/y", t0, 3}})
	got, err := d.ListSeries()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Name != "a/x" || got[0].Count != 2 || !got[0].Last.Equal(t0.Add(time.Minute)) || !got[0].First.Equal(t0) {
		t.Fatalf("series = %+v", got)
	}
}

func TestPruneDropsAChunkOnlyOnceAllItsPointsAreOldAndOldRollupsSeparately(t *testing.T) {
	d := openTemp(t)
	if err := d.WritePoints([]Point{{"a/x", t0, 1}, {"a/x", t0.Add(time.Minute), 1.5}, {"a/x", t0.Add(time.Hour), 2}, {"old/z", t0, 9}}); err != nil {
		t.Fatal(err)
	}
	if err := d.WriteRollups("a/x", []Rollup{{T: t0, Mean: 1, Min: 1, Max: 1, Count: 1}, {T: t0.Add(48 * time.Hour), Mean: 2, Count: 1}}); err != nil {
		t.Fatal(err)
	}
	// a/x's chunk holds t0 and t0+1m: a cut between them keeps it on
	// disk but hides t0 from readers, also after a restart; old/z's t0
	// goes.
	n, err := d.Prune(t0.Add(30*time.Second), t0)
	if err != nil || n != 1 {
		t.Fatalf("pruned %d, %v at t0+30s; want old/z's 1", n, err)
	}
	c, err := Open(crashCopy(t, d), Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, db := range []*DB{d, c} {
		if got, err := db.Range("a/x", time.Time{}, t0.Add(time.Hour)); err != nil || len(got) != 1 || got[0].V != 1.5 {
			t.Fatalf("a/x after a cut inside its chunk = %v, %v; want t0+1m only", got, err)
		}
	}
	if err := d.bolt.View(func(tx *bolt.Tx) error {
		_, v := tx.Bucket(migrations.BucketSeries).Bucket([]byte("a/x")).Cursor().First()
		if n, err := chunk.NumSamples(v); err != nil || n != 2 {
			return fmt.Errorf("a/x's chunk holds %d samples, %v; want 2", n, err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	n, err = d.Prune(t0.Add(2*time.Minute), t0.Add(time.Hour))
	if err != nil || n != 3 { // a/x's chunk (2 points), one rollup
		t.Fatalf("pruned %d, %v; want 3", n, err)
	}
	raw, err := d.Range("a/x", time.Time{}, time.Time{})
	if err != nil || len(raw) != 1 || raw[0].V != 2 {
		t.Fatalf("raw after prune = %+v, %v", raw, err)
	}
	if _, err := d.Range("old/z", time.Time{}, time.Time{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("an emptied series is still there: %v", err)
	}
	ru, err := d.RangeRollups("a/x", time.Time{}, time.Time{})
	if err != nil || len(ru) != 1 || ru[0].Mean != 2 {
		t.Fatalf("rollups after prune = %+v, %v", ru, err)
	}
}

func TestJournalIsAppendOnlyAndOpenActionsAreThoseEndingInIntent(t *testing.T) {
	d := openTemp(t)
	for _, e := range []JournalEntry{
		{ActionID: "a1", Kind: "scale", State: StateIntent, Target: "web/api"},
		{ActionID: "a1", Kind: "scale", State: StateDone, Target: "web/api"},
		{ActionID: "a2", Kind: "drain", State: StateIntent, Target: "node-1"},
	} {
		if _, err := d.Append(e); err != nil {
			t.Fatal(err)
		}
	}
	all, _ := d.Entries(0, 0)
	if len(all) != 3 || all[0].Seq != 1 || all[2].Seq != 3 {
		t.Fatalf("entries = %+v", all)
	}
	open, err := d.OpenActions()
	if err != nil || len(open) != 1 || open[0].ActionID != "a2" {
		t.Fatalf("open = %+v, %v", open, err)
	}
	last, err := d.LastAction("web/api")
	if err != nil || last.State != StateDone {
		t.Fatalf("last = %+v, %v", last, err)
	}
}

func TestCheckFindsAChunkOrValueThatDoesNotDecode(t *testing.T) {
	d := openTemp(t)
	// Two windows: the first becomes a chunk, the second stays logged.
	if err := d.WritePoints([]Point{{"a/x", t0, 1}, {"a/x", t0.Add(3 * time.Minute), 2}}); err != nil {
		t.Fatal(err)
	}
	if err := d.PutJSON(migrations.BucketFits, "good", map[string]int{"a": 1}); err != nil {
		t.Fatal(err)
	}
	rep, err := d.Check()
	if err != nil || len(rep.Problems) != 0 || rep.Keys["series"] != 1 || rep.Keys["head"] != 1 || rep.Keys["fits"] != 1 {
		t.Fatalf("clean check = %+v, %v", rep, err)
	}
	err = d.bolt.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(migrations.BucketPlans).Put([]byte("bad"), []byte("{not json")); err != nil {
			return err
		}
		b := tx.Bucket(migrations.BucketSeries).Bucket([]byte("a/x"))
		if err := b.Put([]byte("short"), []byte{1}); err != nil {
			return err
		}
		return b.Put(timeKey(t0.Add(time.Hour)), []byte{1, 0, 9, 7})
	})
	if err != nil {
		t.Fatal(err)
	}
	rep, err = d.Check()
	if err != nil || len(rep.Problems) != 3 { // bad key, garbled chunk, bad JSON
		t.Fatalf("problems = %v, %v; want 3", rep.Problems, err)
	}
}

func TestOpenRefusesADatabaseFromANewerBinary(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new.db")
	d, err := Open(path, Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	_ = d.PutUint64Meta(string(migrations.KeySchemaVersion), migrations.Latest()+7)
	d.Close()
	if _, err := Open(path, Options{Migrate: true}); !errors.Is(err, migrations.ErrSchemaTooNew) {
		t.Fatalf("Open = %v, want ErrSchemaTooNew", err)
	}
}

func TestBackupIsAReadableCopy(t *testing.T) {
	d := openTemp(t)
	_ = d.WritePoints([]Point{{"a/x", t0, 42}})
	var buf bytes.Buffer
	if _, err := d.Backup(&buf); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "copy.db")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got, err := c.Range("a/x", time.Time{}, time.Time{})
	if err != nil || len(got) != 1 || got[0].V != 42 {
		t.Fatalf("copy = %+v, %v", got, err)
	}
}

const writerEnv = "NOMADSCALERD_STORE_WRITER_DB"
const writerSeries = 20

// TestMain turns the test binary into the writer child process that
// TestSIGKILLMidIngestKeepsEveryCommittedPoint runs and kills.
func TestMain(m *testing.M) {
	if path := os.Getenv(writerEnv); path != "" {
		runWriter(path)
	}
	os.Exit(m.Run())
}

func runWriter(path string) {
	d, err := Open(path, Options{Migrate: true})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	for tick := 0; ; tick++ {
		pts := make([]Point, 0, writerSeries)
		for s := 0; s < writerSeries; s++ {
			pts = append(pts, Point{Series: fmt.Sprintf("p%d/m", s), T: t0.Add(time.Duration(tick) * time.Second), V: float64(tick*1000 + s)})
		}
		if err := d.WritePoints(pts); err != nil {
			fmt.Println("error", err)
			os.Exit(2)
		}
		fmt.Println("committed", tick)
	}
}

func TestSIGKILLMidIngestKeepsEveryCommittedPoint(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a writer process")
	}
	path := filepath.Join(t.TempDir(), "killed.db")
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), writerEnv+"="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lastCommitted := -1
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "error") {
			t.Fatal(line)
		}
		if n, ok := strings.CutPrefix(line, "committed "); ok {
			lastCommitted, _ = strconv.Atoi(n)
		}
		if lastCommitted >= 200 {
			// Kill while the writer is inside its next transaction.
			_ = cmd.Process.Signal(syscall.SIGKILL)
			break
		}
	}
	// The pipe may still hold acknowledgements written before the kill.
	for sc.Scan() {
		if n, ok := strings.CutPrefix(sc.Text(), "committed "); ok {
			lastCommitted, _ = strconv.Atoi(n)
		}
	}
	_ = cmd.Wait()
	if lastCommitted < 200 {
		t.Fatalf("writer stopped after %d ticks", lastCommitted)
	}
	d, err := Open(path, Options{Migrate: true})
	if err != nil {
		t.Fatalf("reopen after SIGKILL: %v", err)
	}
	defer d.Close()
	rep, err := d.Check()
	if err != nil || len(rep.Problems) > 0 {
		t.Fatalf("check after SIGKILL: %+v, %v", rep.Problems, err)
	}
	for s := 0; s < writerSeries; s++ {
		got, err := d.Range(fmt.Sprintf("p%d/m", s), time.Time{}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) < lastCommitted+1 {
			t.Fatalf("series %d has %d points, %d ticks were committed", s, len(got), lastCommitted+1)
		}
		for tick := 0; tick <= lastCommitted; tick++ {
			if got[tick].V != float64(tick*1000+s) {
				t.Fatalf("series %d tick %d = %v", s, tick, got[tick].V)
			}
		}
	}
	t.Logf("killed after %d committed ticks of %d series; all present", lastCommitted+1, writerSeries)
}

func TestRetentionDropsOpenWindowPointsOlderThanTheCutFromMemoryListingsAndTheFile(t *testing.T) {
	d := openTemp(t)
	// Both points in the open window: nothing later has sealed it.
	if err := d.WritePoints([]Point{{"a/x", t0, 1}, {"a/x", t0.Add(time.Second), 2}, {"b/y", t0.Add(time.Second), 3}}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Prune(t0.Add(500*time.Millisecond), t0); err != nil {
		t.Fatal(err)
	}
	if got := len(d.heads.series["a/x"]); got != 1 {
		t.Errorf("a/x keeps %d points in memory after a cut between its two, want 1", got)
	}
	c, err := Open(crashCopy(t, d), Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for name, db := range map[string]*DB{"in memory": d, "reopened": c} {
		got, err := db.ListSeries()
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].Name != "a/x" || got[0].Count != 1 || !got[0].First.Equal(t0.Add(time.Second)) {
			t.Errorf("%s: series %+v; want a/x with its one point from t0+1s, and b/y", name, got)
		}
	}
	// A cut past every point empties the open window.
	if _, err := d.Prune(t0.Add(time.Minute), t0); err != nil {
		t.Fatal(err)
	}
	if n := len(d.heads.series); n != 0 {
		t.Errorf("%d series left in memory after a cut past all their points", n)
	}
	got, err := d.ListSeries()
	if err != nil || len(got) != 0 {
		t.Errorf("series %+v, %v after a cut past all their points; want none", got, err)
	}
	c2, err := Open(crashCopy(t, d), Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if n := len(c2.heads.series); n != 0 {
		t.Errorf("reopened: %d series back in memory from the open-window log", n)
	}
}

func TestListSeriesCountsOnlyThePointsAfterTheRetentionCut(t *testing.T) {
	d := openTemp(t)
	// a/x's t0 and t0+1m share a chunk; t0+1h is in the open window.
	if err := d.WritePoints([]Point{{"a/x", t0, 1}, {"a/x", t0.Add(time.Minute), 1.5}, {"a/x", t0.Add(time.Hour), 2}}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.ListSeries(); err != nil { // summaries built before the prune
		t.Fatal(err)
	}
	if _, err := d.Prune(t0.Add(30*time.Second), t0); err != nil {
		t.Fatal(err)
	}
	c, err := Open(crashCopy(t, d), Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for name, db := range map[string]*DB{"kept in memory": d, "reopened": c} {
		got, err := db.ListSeries()
		if err != nil {
			t.Fatal(err)
		}
		pts, err := db.Range("a/x", time.Time{}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].Count != len(pts) || got[0].Count != 2 || !got[0].First.Equal(t0.Add(time.Minute)) {
			t.Errorf("%s: %+v; want a/x counting the %d points a read returns (2), the first at t0+1m", name, got, len(pts))
		}
	}
}

func TestAPointWrittenBeforeTheRetentionCutIsNotStoredNorCounted(t *testing.T) {
	d := openTemp(t)
	if err := d.WritePoints([]Point{{"a/x", t0.Add(time.Hour), 1}}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Prune(t0.Add(time.Minute), t0); err != nil {
		t.Fatal(err)
	}
	if err := d.WritePoints([]Point{{"a/x", t0, 9}, {"b/late", t0, 9}}); err != nil {
		t.Fatal(err)
	}
	got, err := d.ListSeries()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Name != "a/x" || got[0].Count != 1 {
		t.Errorf("series %+v; want only a/x with its one point after the cut", got)
	}
}

func TestDeletePrefixedDeletesOnlyThePrefixsKeysItIsToldTo(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "p.db"), Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	vals := map[string]any{"a/1": 1, "a/2": 2, "a/3": 3, "ab/1": 1, "b/1": 1, "/a": 0}
	if err := db.PutJSONs(migrations.BucketState, vals); err != nil {
		t.Fatal(err)
	}
	n, err := db.DeletePrefixed(migrations.BucketState, "a/", func(v []byte) bool { return string(v) != "2" })
	if err != nil || n != 2 {
		t.Fatalf("deleted %d (%v), want a/1 and a/3", n, err)
	}
	keys, err := db.Keys(migrations.BucketState)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(keys, ","); got != "/a,a/2,ab/1,b/1" {
		t.Errorf("keys left %q, want /a,a/2,ab/1,b/1", got)
	}
}

func TestDeleteWithoutHistoryDropsOnlyTheKeysOfPoliciesWhoseHistoryRetentionHasTaken(t *testing.T) {
	d := openTemp(t)
	// p/open has only open-window points, p/sealed a chunk (a point
	// written with a later window's is stored sealed at once), p/rolled
	// only rollups, p/gone a chunk the prune takes, p/never nothing;
	// p/open-extra shares p/open's prefix but not its policy.
	if err := d.WritePoints([]Point{
		{"p/gone/requests", t0, 1},
		{"p/sealed/requests", t0.Add(2 * time.Hour), 1},
		{"p/open/requests", t0.Add(24 * time.Hour), 1},
	}); err != nil {
		t.Fatal(err)
	}
	if err := d.WriteRollups("p/rolled/cpu", []Rollup{{T: t0.Add(24 * time.Hour), Mean: 1, Count: 1}}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Prune(t0.Add(time.Hour), t0); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Range("p/gone/requests", time.Time{}, time.Time{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("p/gone's history outlived the prune: %v", err)
	}
	if err := d.bolt.View(func(tx *bolt.Tx) error {
		root := tx.Bucket(migrations.BucketSeries)
		if root.Bucket([]byte("p/sealed/requests")) == nil || root.Bucket([]byte("p/open/requests")) != nil {
			return errors.New("p/sealed/requests should have a chunk and p/open/requests none")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	policies := []string{"p/open", "p/sealed", "p/rolled", "p/gone", "p/never", "p/open-extra"}
	fits := map[string]any{}
	tunings := map[string]any{"cooldown/p/gone": 1} // another prefix: not this call's
	for _, p := range policies {
		fits[p] = 1
		tunings["tuning/"+p] = 1
	}
	if err := d.PutJSONs(migrations.BucketFits, fits); err != nil {
		t.Fatal(err)
	}
	if err := d.PutJSONs(migrations.BucketState, tunings); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		bucket []byte
		prefix string
		want   string
	}{
		{migrations.BucketFits, "", "p/open,p/rolled,p/sealed"},
		{migrations.BucketState, "tuning/", "cooldown/p/gone,tuning/p/open,tuning/p/rolled,tuning/p/sealed"},
	} {
		n, err := d.DeleteWithoutHistory(tc.bucket, tc.prefix)
		if err != nil || n != 3 {
			t.Fatalf("%s %q: deleted %d, %v; want p/gone's, p/never's and p/open-extra's", tc.bucket, tc.prefix, n, err)
		}
		keys, err := d.Keys(tc.bucket)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(keys, ","); got != tc.want {
			t.Errorf("%s keys left %q, want %q", tc.bucket, got, tc.want)
		}
	}
}

func TestAPruneAfterTheClockCameBackFromAJumpAheadAcceptsNewPointsAgain(t *testing.T) {
	d := openTemp(t)
	// The clock jumped two days ahead for one prune, then came back.
	if _, err := d.Prune(t0.Add(48*time.Hour), t0.Add(48*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := d.WritePoints([]Point{{"p/requests", t0.Add(time.Hour), 1}}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Range("p/requests", time.Time{}, time.Time{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a point before the jumped cut was stored: %v", err)
	}
	if _, err := d.Prune(t0.Add(-24*time.Hour), t0.Add(-30*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := d.WritePoints([]Point{{"p/requests", t0.Add(2 * time.Hour), 2}}); err != nil {
		t.Fatal(err)
	}
	// Also after a restart: the cut moved back on disk too.
	c, err := Open(crashCopy(t, d), Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.WritePoints([]Point{{"p/requests", t0.Add(3 * time.Hour), 3}}); err != nil {
		t.Fatal(err)
	}
	got, err := c.Range("p/requests", time.Time{}, time.Time{})
	if err != nil || len(got) != 2 || got[0].V != 2 || got[1].V != 3 {
		t.Fatalf("points after the clock came back = %v, %v; want the two written since", got, err)
	}
}
