package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nomadscalerd/nomadscalerd/history"
	"github.com/nomadscalerd/nomadscalerd/nomad"
	"github.com/nomadscalerd/nomadscalerd/reconciler"
	"github.com/nomadscalerd/nomadscalerd/store"
)

// benchHistoryVersion names the prefill generator in the cache's file
// names: change it when benchCounts or prefillHistory writes differently.
const benchHistoryVersion = "v1"

// benchRawRetention is the daemon's default --raw-retention, and
// benchPrefillMargin what the prefilled span stays under it: more than a
// bench-scale run lasts, so the daemon prunes none of the prefilled day
// while it is measured (its growth figure would otherwise mix in pruned
// chunks).
const (
	benchRawRetention    = 24 * time.Hour
	benchRollupRetention = 30 * 24 * time.Hour // the daemon's default --rollup-retention
	benchPrefillMargin   = 15 * time.Minute
)

// benchSeriesNames are the raw series the daemon writes for the bench's
// policies of one shard (all of them with shards <= 1): one check,
// "requests", per policy (benchJob).
func benchSeriesNames(policies, shard, shards int) []string {
	var names []string
	for i := range policies {
		key := reconciler.PolicyKey("default", fmt.Sprintf("bench-%04d", i), "web")
		if shards > 1 && nomad.ShardOf(key, shards) != shard {
			continue
		}
		names = append(names, store.SeriesName(key, "requests"))
	}
	return names
}

// benchCounts mirrors bench-store's "counts" values (store/bench_test.go
// valueGen): requests per second sampled each second, whole numbers with
// Poisson-like noise around a level between 10 and 2,000 that drifts by
// +-30% over a day. The level is a function of the unix second, so a file
// topped up later continues the same curves.
type benchCounts struct {
	base, phase []float64
	r           *rand.Rand
}

// newBenchCounts draws the series' bases and phases in index order from a
// fixed source (the seed drives only the noise), so series s has the same
// curve whatever the count: in every shard's file and in benchTraffic.
func newBenchCounts(series int, seed uint64) *benchCounts {
	shape := rand.New(rand.NewPCG(1, 2))
	g := &benchCounts{base: make([]float64, series), phase: make([]float64, series), r: rand.New(rand.NewPCG(seed, 3))}
	for s := range g.base {
		g.base[s] = math.Exp(math.Log(10) + shape.Float64()*math.Log(200))
		g.phase[s] = shape.Float64() * 2 * math.Pi
	}
	return g
}

// level is series s's mean requests per second at the unix second: its
// base times the day's +-30% sine at its phase. The live traffic
// (benchTraffic) increments the bench's counters at it, so rate() goes on
// from where the prefilled history ends.
func (g *benchCounts) level(s int, unix int64) float64 {
	return g.base[s] * (1 + 0.3*math.Sin(2*math.Pi*float64(unix)/86400+g.phase[s]))
}

func (g *benchCounts) value(s int, unix int64) float64 {
	l := g.level(s, unix)
	return math.Max(0, math.Round(l+math.Sqrt(l)*g.r.NormFloat64()))
}

// prefillTicksPerWrite is how many 1 s ticks one WritePoints call of the
// prefill carries. The recorder writes one; a day of them one by one took
// about 8 minutes for 1,000 series on the shared 2-core host, CPU-bound.
// Sealing is the same either way: a round still begins with the first
// write of a window and seals each due series once, appending its window
// to its last chunk, so every series bucket goes through the same changes
// in the same order; only the number of series sealed per commit (a
// round's share) and the open window's log records differ.
const prefillTicksPerWrite = 10

// benchPrefill is what prefillHistory did.
type benchPrefill struct {
	span             time.Duration // the history the file holds, up to end
	end              time.Time     // its last tick (later than asked: the fill catches up with the clock)
	written          int           // points written now (all, or the top-up)
	ticks            int
	took             time.Duration
	cached           string // the cache file, and whether it was there
	fromCache        bool
	toppedUp         time.Duration
	rollups, pruned  int
	foot             store.Footprint
	points, rolledUp int           // the file's raw points and rollups (ListSeries, ListRollups)
	older            time.Duration // minute rollups written before span (a fresh fill only)
	olderRollups     int
}

// prefillHistory writes to path a database holding span of 1 s history,
// up to end, for names, as a daemon that had recorded them all along
// would have it: store.Open and WritePoints one tick at a time (the
// recorder's path), and every simulated minute the recorder's
// maintenance, history.RollUp of the completed minutes and store.Prune
// at end-of-minute minus span (raw) and 30 days (rollups).
//
// The result is cached in cacheDir under the names' count, shard, span
// and benchHistoryVersion. A later run copies the cache and tops the copy
// up to its own end the same way (the ticks since the cache's last one,
// then a prune to span), so the cache is never the file a daemon opens,
// and the copy, topped up, is saved back.
func prefillHistory(b *testing.B, path, cacheDir string, names []string, shard, shards int, span, older time.Duration, end time.Time) benchPrefill {
	p := benchPrefill{span: span, end: end, older: older}
	rollupsPart := ""
	if older > 0 {
		rollupsPart = fmt.Sprintf("-rollups%s", older)
	}
	p.cached = filepath.Join(cacheDir, fmt.Sprintf("history-%dseries-shard%dof%d-%s%s-%s.db", len(names), shard, max(shards, 1), span, rollupsPart, benchHistoryVersion))
	t0 := time.Now()
	from := end.Add(-span + time.Second)
	if _, err := os.Stat(p.cached); err == nil {
		if err := copyFile(p.cached, path); err != nil {
			b.Fatal(err)
		}
		p.fromCache = true
	}
	db, err := store.Open(path, store.Options{Migrate: true})
	if err != nil {
		b.Fatal(err)
	}
	if p.fromCache {
		series, err := db.ListSeries()
		if err != nil {
			b.Fatal(err)
		}
		var last time.Time
		for _, s := range series {
			if s.Last.After(last) {
				last = s.Last
			}
		}
		if len(series) != len(names) || !last.After(from) || last.After(end) {
			// Of other series, or too old to top up for less than a new
			// file costs: start again.
			b.Logf("history cache %s: %d series, last point %s: not used", p.cached, len(series), last.Format(time.RFC3339))
			if err := db.Close(); err != nil {
				b.Fatal(err)
			}
			if err := os.Remove(path); err != nil {
				b.Fatal(err)
			}
			p.fromCache = false
			if db, err = store.Open(path, store.Options{Migrate: true}); err != nil {
				b.Fatal(err)
			}
		} else {
			p.toppedUp = end.Sub(last)
			from = last.Add(time.Second)
		}
	}
	gen := newBenchCounts(len(names), uint64(from.Unix()))
	ctx := context.Background()
	maintain := func(now time.Time) {
		n, err := history.RollUp(ctx, db, time.Minute, now)
		if err != nil {
			b.Fatal(err)
		}
		pruned, err := db.Prune(now.Add(-span), now.Add(-30*24*time.Hour))
		if err != nil {
			b.Fatal(err)
		}
		p.rollups, p.pruned = p.rollups+n, p.pruned+pruned
	}
	// A write holds prefillTicksPerWrite ticks (unix seconds k*10 to
	// k*10+9), series by series; see prefillTicksPerWrite.
	pts := make([]store.Point, 0, len(names)*prefillTicksPerWrite)
	write := func(from, end time.Time) {
		total := int(end.Sub(from)/time.Second) + 1
		for at := from; !at.After(end); {
			next := time.Unix((at.Unix()/prefillTicksPerWrite+1)*prefillTicksPerWrite, 0).UTC()
			if next.After(end) {
				next = end.Add(time.Second)
			}
			pts = pts[:0]
			for s, name := range names {
				for t := at; t.Before(next); t = t.Add(time.Second) {
					pts = append(pts, store.Point{Series: name, T: t, V: gen.value(s, t.Unix())})
				}
			}
			if err := db.WritePoints(pts); err != nil {
				b.Fatal(err)
			}
			p.written += len(pts)
			for t := at; t.Before(next); t = t.Add(time.Second) {
				p.ticks++
				if t.Unix()%60 == 0 {
					maintain(t)
				}
				if p.ticks%7200 == 0 {
					b.Logf("prefill: %d ticks of %d written in %s", p.ticks, total, time.Since(t0).Round(time.Second))
				}
			}
			at = next
		}
	}
	if !p.fromCache && older > 0 {
		p.olderRollups = prefillRollups(b, db, gen, names, from.Add(-older).Truncate(time.Minute), from.Truncate(time.Minute))
		b.Logf("prefill: %d minute rollups of the %s before the raw history written in %s", p.olderRollups, older, time.Since(t0).Round(time.Second))
	}
	write(from, end)
	// Writing a day takes minutes: catch up with the clock, so the last
	// point is seconds before launch, not the fill's duration.
	for {
		now := time.Now().Truncate(time.Second).Add(-2 * time.Second)
		if now.Sub(end) < 3*time.Second {
			break
		}
		write(end.Add(time.Second), now)
		end = now
	}
	p.end = end
	maintain(end)
	series, err := db.ListSeries()
	if err != nil {
		b.Fatal(err)
	}
	for _, s := range series {
		p.points += s.Count
	}
	rolled, err := db.ListRollups()
	if err != nil {
		b.Fatal(err)
	}
	for _, s := range rolled {
		p.rolledUp += s.Count
	}
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
	// Footprint of the closed file, read-only as the bench reads the
	// daemon's at the end: every part is exact.
	ro, err := store.Open(path, store.Options{ReadOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	if p.foot, err = ro.Footprint(); err != nil {
		b.Fatal(err)
	}
	if err := ro.Close(); err != nil {
		b.Fatal(err)
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		b.Fatal(err)
	}
	tmp := p.cached + ".tmp"
	if err := copyFile(path, tmp); err != nil {
		b.Fatal(err)
	}
	if err := os.Rename(tmp, p.cached); err != nil {
		b.Fatal(err)
	}
	p.took = time.Since(t0)
	return p
}

// copyFile copies src to dst (created or truncated) and syncs it.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// prefillRollups writes names' minute rollups from from to to (exclusive)
// as the recorder's rollup round (history.Rollups) would have left them,
// had the daemon recorded the series that long: the raw seconds behind
// them are long pruned, so only the rollups are written, a day of every
// series at a time, series by series in batches as a round commits them.
func prefillRollups(b *testing.B, db *store.DB, gen *benchCounts, names []string, from, to time.Time) int {
	const batchSeries = 100
	written := 0
	var raw []store.Sample
	for day := from; day.Before(to); day = day.Add(24 * time.Hour) {
		dayEnd := day.Add(24 * time.Hour)
		if dayEnd.After(to) {
			dayEnd = to
		}
		for lo := 0; lo < len(names); lo += batchSeries {
			batch := make([]store.SeriesRollups, 0, batchSeries)
			for s := lo; s < min(lo+batchSeries, len(names)); s++ {
				// The day's seconds, aggregated as the rollup round does.
				raw = raw[:0]
				for t := day; t.Before(dayEnd); t = t.Add(time.Second) {
					raw = append(raw, store.Sample{T: t, V: gen.value(s, t.Unix())})
				}
				rs := history.Rollups(raw, time.Minute, dayEnd)
				batch = append(batch, store.SeriesRollups{Series: names[s], Rollups: rs})
				written += len(rs)
			}
			if err := db.WriteRollupsOf(batch); err != nil {
				b.Fatal(err)
			}
		}
		if err := db.ReleaseMapped(); err != nil {
			b.Fatal(err)
		}
	}
	return written
}
