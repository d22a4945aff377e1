package store

import (
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkRangeOfASeries reads one series of an hour of one-second points
// (sealed chunks and the open window) as the daemon does: the last five
// minutes (every reconcile's recent demand) and the whole hour (a plan).
func BenchmarkRangeOfASeries(b *testing.B) {
	d, err := Open(filepath.Join(b.TempDir(), "r.db"), Options{Migrate: true})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	const name = "default/web/api/requests"
	for s := range 3600 {
		if err := d.WritePoints([]Point{{Series: name, T: t0.Add(time.Duration(s) * time.Second), V: float64(s % 97)}}); err != nil {
			b.Fatal(err)
		}
	}
	end := t0.Add(time.Hour)
	for _, c := range []struct {
		name   string
		window time.Duration
	}{{"last_5m", 5 * time.Minute}, {"last_1h", time.Hour}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				pts, err := d.Range(name, end.Add(-c.window), end)
				if err != nil || len(pts) != int(c.window/time.Second) {
					b.Fatalf("%d points, %v", len(pts), err)
				}
			}
		})
	}
}
