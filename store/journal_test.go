package store

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestOpenActionsAndLastActionComeFromTheIndexesAmongHundredsOfSettledActions(t *testing.T) {
	d := openTemp(t)
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	app := func(id, state, target string, at time.Time) {
		t.Helper()
		if _, err := d.Append(JournalEntry{ActionID: id, Kind: "scale", State: state, Target: target, Time: at}); err != nil {
			t.Fatal(err)
		}
	}
	app("early", StateIntent, "p/a", t0) // open the whole time
	for i := range 300 {
		id := fmt.Sprintf("a%d", i)
		at := t0.Add(time.Duration(i) * time.Second)
		app(id, StateIntent, fmt.Sprintf("p/%d", i%10), at)
		app(id, StateDone, fmt.Sprintf("p/%d", i%10), at)
	}
	app("drain", StateIntent, "pool/x", t0.Add(time.Hour))
	app("drain", StateIntent, "pool/x", t0.Add(time.Hour+time.Second)) // a later phase, still open
	open, err := d.OpenActions()
	if err != nil {
		t.Fatal(err)
	}
	if len(open) != 2 || open[0].ActionID != "early" || open[1].ActionID != "drain" || !open[1].Time.Equal(t0.Add(time.Hour+time.Second)) {
		t.Fatalf("open actions %+v, want early then drain at its latest entry", open)
	}
	last, err := d.LastAction("p/3")
	if err != nil || last.ActionID != "a293" || last.State != StateDone {
		t.Fatalf("last action of p/3 = %+v, %v; want a293 done", last, err)
	}
	if _, err := d.LastAction("p/none"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("last action of an unknown target: %v, want ErrNotFound", err)
	}

	// Compaction past a retention keeps open actions and each target's
	// last entry, and nothing else older.
	n, err := d.CompactJournal(t0.Add(2 * time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	rest, err := d.Entries(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	// 603 entries: the open early intent, two drain intents, and one
	// last entry for each of p/0..p/9 stay.
	if n != 603-13 || len(rest) != 13 {
		t.Fatalf("compaction deleted %d and kept %d, want 590 deleted and 13 kept", n, len(rest))
	}
	if last, err := d.LastAction("p/3"); err != nil || last.ActionID != "a293" {
		t.Fatalf("after compaction the last action of p/3 = %+v, %v", last, err)
	}
	if open, err := d.OpenActions(); err != nil || len(open) != 2 {
		t.Fatalf("after compaction open actions %d, %v; want 2", len(open), err)
	}
}
