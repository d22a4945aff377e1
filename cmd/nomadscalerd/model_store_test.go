package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nomadscalerd/nomadscalerd/migrations"
	"github.com/nomadscalerd/nomadscalerd/model"
	"github.com/nomadscalerd/nomadscalerd/reconciler"
	"github.com/nomadscalerd/nomadscalerd/store"
)

func TestModelShowIncludesThePolicysSelfTuning(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.db")
	db, err := store.Open(path, store.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	key := "default/web/api"
	at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	if err := db.PutJSON(migrations.BucketFits, key, model.Record{Order: model.Order{P: 1, D: 1, Q: 1}, TrainedAt: at}); err != nil {
		t.Fatal(err)
	}
	if err := db.PutJSON(migrations.BucketState, reconciler.TuningKey(key),
		reconciler.Tuning{At: at, ForecastMargin: 1.5, ModelStep: 30 * time.Second, Cost: 900, PolicyCost: 1000, Unmet: 12, PolicyUnmet: 15, Seconds: 39600, Candidates: 8}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	out, err := runApp(t, "--db", path, "model", "show", key)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "forecast_margin 1.5, model_step 30s: cost 900 against the policy's own 1000, unmet requests 12 against 15, over 11h0m0s") {
		t.Errorf("model show does not report the tuning:\n%s", out)
	}
}

func TestModelLsShowsAFitsWindowAsItsLength(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.db")
	db, err := store.Open(path, store.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	// The daemon's default fit: 10,000 one-minute steps ending when trained.
	at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	from := at.Add(-10000 * time.Minute)
	rec := model.Record{Order: model.Order{P: 1, D: 1, Q: 1}, TrainedAt: at, Window: model.Window{From: from, To: at}}
	if err := db.PutJSON(migrations.BucketFits, "default/web/api", rec); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	out, err := runApp(t, "--db", path, "model", "ls")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "166h40m0s") {
		t.Errorf("model ls does not show the window's 166h40m of history:\n%s", out)
	}
	if strings.Contains(out, "13:20:00..12:00:00") {
		t.Errorf("model ls shows the window as times of day that run backwards:\n%s", out)
	}
}
