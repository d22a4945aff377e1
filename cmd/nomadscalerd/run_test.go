package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nomadscalerd/nomadscalerd/migrations"
	"github.com/nomadscalerd/nomadscalerd/nomadtest"
	"github.com/nomadscalerd/nomadscalerd/store"
)

func TestDaemonAnswersHealthAndWatchesNomad(t *testing.T) {
	agent := nomadtest.StartServer(t, nomadtest.Options{})
	port := nomadtest.FreePort(t)
	logs := &nomadtest.LockedBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runDaemon(ctx, settings{
			DB: filepath.Join(t.TempDir(), "d.db"), NomadAddr: agent.Addr,
			HTTPAddr: fmt.Sprintf("127.0.0.1:%d", port), CacheSize: 10, ForecastHorizon: 60,
		}, log)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("daemon: %v", err)
		}
	}()
	url := fmt.Sprintf("http://127.0.0.1:%d/health", port)
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Get(url)
		if err == nil {
			var body map[string]string
			_ = json.NewDecoder(res.Body).Decode(&body)
			res.Body.Close()
			if res.StatusCode == 200 && body["database"] == "ok" && body["nomad"] == "reachable" && strings.Contains(logs.String(), "watching nomad event stream") {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("health never 200 with a watching log line; logs:\n%s", logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestHealthIs503WhileNomadIsDown(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the daemon")
	}
	port := nomadtest.FreePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		_ = runDaemon(ctx, settings{DB: filepath.Join(t.TempDir(), "d.db"), NomadAddr: fmt.Sprintf("http://127.0.0.1:%d", nomadtest.FreePort(t)),
			HTTPAddr: fmt.Sprintf("127.0.0.1:%d", port), CacheSize: 10, ForecastHorizon: 60}, slog.New(slog.DiscardHandler))
	}()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		res, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/health", port))
		if err == nil {
			res.Body.Close()
			if res.StatusCode != http.StatusServiceUnavailable {
				t.Fatalf("status %d, want 503", res.StatusCode)
			}
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("daemon never listened")
}

func TestABinaryRefusesADatabaseFromANewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "future.db")
	d, err := store.Open(path, store.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	_ = d.PutUint64Meta(string(migrations.KeySchemaVersion), migrations.Latest()+1)
	d.Close()
	for _, args := range [][]string{{"db", "check"}, {"db", "migrate"}, {"run"}} {
		app := newApp()
		err := app.Run(append([]string{"nomadscalerd", "--db", path}, args...))
		if !errors.Is(err, migrations.ErrSchemaTooNew) {
			t.Errorf("%v: err = %v, want ErrSchemaTooNew", args, err)
		}
	}
}
