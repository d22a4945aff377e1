package history

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nomadscalerd/nomadscalerd/store"
)

// BenchmarkRollUpAMinuteOfAThousandSeries is one round of the recorder's
// maintenance at 1,000 policies: a minute of 1 s points of each series
// rolled up and written (a real bbolt file, fdatasync included).
func BenchmarkRollUpAMinuteOfAThousandSeries(b *testing.B) {
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		db, err := store.Open(b.TempDir()+"/b.db", store.Options{Migrate: true})
		if err != nil {
			b.Fatal(err)
		}
		var pts []store.Point
		for s := range 1000 {
			for k := range 60 {
				pts = append(pts, store.Point{Series: fmt.Sprintf("p%04d/m", s), T: t0.Add(time.Duration(k) * time.Second), V: float64(k)})
			}
		}
		if err := db.WritePoints(pts); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		n, err := RollUp(context.Background(), db, time.Minute, t0.Add(time.Minute))
		if err != nil || n != 1000 {
			b.Fatalf("%d rollups, %v", n, err)
		}
		b.StopTimer()
		if err := db.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
