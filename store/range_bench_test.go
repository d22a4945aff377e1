package store

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/nomadscalerd/nomadscalerd/migrations"
)

// BenchmarkRangeOfASeries reads one series of an hour of one-second points
// (sealed chunks and the open window) as the daemon does: the last five
// minutes (every reconcile's recent demand) and the whole hour (a plan),
// and the last 30 s, which the open window holds (read from memory).
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
	}{{"last_30s", 30 * time.Second}, {"last_5m", 5 * time.Minute}, {"last_1h", time.Hour}} {
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

// BenchmarkReleaseMapped reads 32 MiB of database pages, mapping every
// one, with and without unmapping them after (the daemon releases every
// 2 s, with 10-20 MiB mapped in between at a thousand policies): the
// difference is a release's cost, and what reading them again costs.
func BenchmarkReleaseMapped(b *testing.B) {
	d, err := Open(filepath.Join(b.TempDir(), "m.db"), Options{Migrate: true})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	const n = 2048 // values of 16 KiB
	values := make(map[string]any, n)
	for i := range n {
		values[fmt.Sprintf("p%05d", i)] = strings.Repeat("x", 16<<10)
	}
	if err := d.PutJSONs(migrations.BucketPlans, values); err != nil {
		b.Fatal(err)
	}
	for _, release := range []bool{false, true} {
		b.Run(fmt.Sprintf("release=%v", release), func(b *testing.B) {
			for b.Loop() {
				// A byte of every page of every value, read in place.
				sum := 0
				if err := d.bolt.View(func(tx *bolt.Tx) error {
					return tx.Bucket(migrations.BucketPlans).ForEach(func(_, v []byte) error {
						for i := 0; i < len(v); i += 4096 {
							sum += int(v[i])
						}
						return nil
					})
				}); err != nil || sum == 0 {
					b.Fatal(sum, err)
				}
				if release {
					if err := d.ReleaseMapped(); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
