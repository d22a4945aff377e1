package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/nomadscalerd/nomadscalerd/store"
)

// openForInspection opens the database read-only for the inspection
// commands. A running daemon holds the file's lock, so when the open times
// out the command reads a snapshot the daemon serves instead
// (GET /v1/db/snapshot at $NOMADSCALERD_ADDR, default
// http://127.0.0.1:8000, with $NOMADSCALERD_TOKEN).
func openForInspection(path string, stderr io.Writer) (*store.DB, func(), error) {
	db, err := store.Open(path, store.Options{ReadOnly: true, Timeout: time.Second})
	if err == nil {
		return db, func() { db.Close() }, nil
	}
	if !errors.Is(err, bolt.ErrTimeout) {
		return nil, nil, err
	}
	addr := os.Getenv("NOMADSCALERD_ADDR")
	if addr == "" {
		addr = "http://127.0.0.1:8000"
	}
	fmt.Fprintf(stderr, "%s is locked by a running daemon; reading a snapshot from %s\n", path, addr)
	tmp, serr := fetchSnapshot(strings.TrimRight(addr, "/"), os.Getenv("NOMADSCALERD_TOKEN"))
	if serr != nil {
		return nil, nil, fmt.Errorf("%w: a running daemon holds the database and no snapshot came from %s (%v); set NOMADSCALERD_ADDR and NOMADSCALERD_TOKEN, or read a `nomadscalerd db backup` copy", err, addr, serr)
	}
	db, err = store.Open(tmp, store.Options{ReadOnly: true})
	if err != nil {
		os.Remove(tmp)
		return nil, nil, err
	}
	return db, func() { db.Close(); os.Remove(tmp) }, nil
}

func fetchSnapshot(addr, token string) (string, error) {
	req, err := http.NewRequest("GET", addr+"/v1/db/snapshot", nil)
	if err != nil {
		return "", err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := (&http.Client{Timeout: time.Minute}).Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return "", fmt.Errorf("snapshot: %s", res.Status)
	}
	f, err := os.CreateTemp("", "nomadscalerd-snapshot-*.db")
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(f, res.Body); err != nil {
		f.Close()
		os.Remove(f.Name())
		return "", err
	}
	// A copy whose last write failed on close (a full disk) is no
	// snapshot: removed, not left in the temp directory.
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}
