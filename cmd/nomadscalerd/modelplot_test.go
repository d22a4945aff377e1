package main

import (
	"bytes"
	"fmt"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nomadscalerd/nomadscalerd/store"
	"github.com/urfave/cli/v2"
)

func TestModelPlotDrawsAFitAndPrintsItsPlan(t *testing.T) {
	dir := t.TempDir()
	var csv strings.Builder
	csv.WriteString("y\n")
	for s := 0; s < 1200; s++ {
		// A slow wave with a deterministic wiggle.
		fmt.Fprintf(&csv, "%.3f\n", 80+30*math.Sin(2*math.Pi*float64(s)/900)+3*math.Sin(float64(s)*1.7))
	}
	in := filepath.Join(dir, "history.csv")
	if err := os.WriteFile(in, []byte(csv.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "fit.png")
	if path := os.Getenv("MODELPLOT_KEEP"); path != "" {
		out = path
	}
	var stdout bytes.Buffer
	app := &cli.App{Writer: &stdout, Commands: []*cli.Command{{Name: "model", Subcommands: []*cli.Command{modelPlotCommand()}}}}
	if err := app.Run([]string{"nomadscalerd", "model", "plot", "--input", in, "--out", out, "--steps", "120", "--orders", "1,1,1"}); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s is not a PNG: %v", out, err)
	}
	if b := img.Bounds(); b.Dx() < 500 || b.Dy() < 300 {
		t.Errorf("picture is %v, too small to read", b)
	}
	if !strings.Contains(stdout.String(), "order 1,1,1") || !strings.Contains(stdout.String(), "forecast 120 steps") {
		t.Errorf("summary %q does not name the order and the steps", stdout.String())
	}
}

func TestModelPlotRejectsAHistoryWithoutY(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "history.csv")
	if err := os.WriteFile(in, []byte("x\n1\n2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	app := &cli.App{Writer: &bytes.Buffer{}, Commands: []*cli.Command{{Name: "model", Subcommands: []*cli.Command{modelPlotCommand()}}}}
	if err := app.Run([]string{"nomadscalerd", "model", "plot", "--input", in, "--out", filepath.Join(dir, "x.png")}); err == nil {
		t.Fatal("history without y accepted")
	}
}

func TestModelPlotReadsAPolicysHistoryFromTheDatabase(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "h.db")
	db, err := store.Open(path, store.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Truncate(time.Second)
	var pts []store.Point
	for i := 600; i > 0; i-- {
		pts = append(pts, store.Point{Series: "default/shop/web/requests", T: now.Add(-time.Duration(i) * time.Second), V: 50 + 20*math.Sin(float64(i)/40)})
	}
	if err := db.WritePoints(pts); err != nil {
		t.Fatal(err)
	}
	db.Close()
	out := filepath.Join(dir, "fit.png")
	app := newApp()
	app.Writer, app.ErrWriter = io.Discard, io.Discard
	if err := app.Run([]string{"nomadscalerd", "--db", path, "model", "plot", "--policy", "default/shop/web", "--out", out, "--steps", "60", "--orders", "1,0,0"}); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(out); err != nil || st.Size() < 1000 {
		t.Fatalf("png: %v", err)
	}
	err = newApp().Run([]string{"nomadscalerd", "--db", path, "model", "plot", "--policy", "default/shop/nope", "--out", out})
	if err == nil || !strings.Contains(err.Error(), "no history") {
		t.Fatalf("unknown policy: err = %v", err)
	}
}
