package main

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nomadscalerd/nomadscalerd/history/promtest"
	"github.com/nomadscalerd/nomadscalerd/nomad"
	"github.com/nomadscalerd/nomadscalerd/reconciler"
	"github.com/nomadscalerd/nomadscalerd/store"
)

// benchTrafficEvery is how often benchTraffic increments every counter:
// several times per 1 s scrape, so a scrape never sees a whole second's
// increments late and rate() over 1m stays within a fraction of a percent
// of the level.
const benchTrafficEvery = 250 * time.Millisecond

// benchTrafficWarmup is how long the counters must have been incremented
// before the daemon launches: rate()'s 1m window full of them, and a few
// scrapes more.
const benchTrafficWarmup = 75 * time.Second

// benchSeriesSlots is, for each of the bench's policies, the index its
// series has among its shard's (benchSeriesNames' order): the index
// prefillHistory's benchCounts gave the series' history.
func benchSeriesSlots(policies, shards int) []int {
	slots := make([]int, policies)
	next := make([]int, max(shards, 1))
	for i := range policies {
		shard := 0
		if shards > 1 {
			shard = nomad.ShardOf(reconciler.PolicyKey("default", fmt.Sprintf("bench-%04d", i), "web"), shards)
		}
		slots[i] = next[shard]
		next[shard]++
	}
	return slots
}

// benchTraffic is the bench's live load with BENCH_SCALE_TRAFFIC=history:
// every benchTrafficEvery each policy's counter bench_requests_total
// {svc="sN"} grows by a whole number, drawn around the prefill's level for
// the series at that second times the time since the last round
// (Poisson-like: sd the square root of the mean), so the daemon's
// sum(rate(...[1m])) continues the prefilled day's curve instead of
// dropping to zero at launch.
type benchTraffic struct {
	counters []prometheus.Counter
	slots    []int
	gen      *benchCounts
	started  time.Time
	stop     chan struct{}
	done     sync.WaitGroup

	mu     sync.Mutex
	rounds int
	busy   time.Duration // in the rounds: the exporter's own cost
	late   int           // rounds more than a period after the previous one
}

func startBenchTraffic(reqs *prometheus.CounterVec, policies, shards int) *benchTraffic {
	t := &benchTraffic{slots: benchSeriesSlots(policies, shards), stop: make(chan struct{})}
	n := 0
	for i := range policies {
		t.counters = append(t.counters, reqs.WithLabelValues("s"+strconv.Itoa(i)))
		n = max(n, t.slots[i]+1)
	}
	t.gen = newBenchCounts(n, uint64(time.Now().UnixNano()))
	t.started = time.Now()
	t.done.Go(func() {
		tick := time.NewTicker(benchTrafficEvery)
		defer tick.Stop()
		last := t.started
		for {
			select {
			case <-t.stop:
				return
			case now := <-tick.C:
				t0 := time.Now()
				dt := now.Sub(last).Seconds()
				last = now
				unix := now.Unix()
				for i, c := range t.counters {
					mean := t.gen.level(t.slots[i], unix) * dt
					if inc := math.Round(mean + math.Sqrt(mean)*t.gen.r.NormFloat64()); inc > 0 {
						c.Add(inc)
					}
				}
				t.mu.Lock()
				t.rounds++
				t.busy += time.Since(t0)
				if dt > 2*benchTrafficEvery.Seconds() {
					t.late++
				}
				t.mu.Unlock()
			}
		}
	})
	return t
}

// levelSum is the generator's sum of every series' level at unix.
func (t *benchTraffic) levelSum(unix int64) float64 {
	sum := 0.0
	for i := range t.counters {
		sum += t.gen.level(t.slots[i], unix)
	}
	return sum
}

func (t *benchTraffic) close() {
	select {
	case <-t.stop:
	default:
		close(t.stop)
	}
	t.done.Wait()
}

// stats is the rounds so far, their mean cost and how many came late.
func (t *benchTraffic) stats() (rounds int, mean time.Duration, late int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.rounds, t.busy / time.Duration(max(t.rounds, 1)), t.late
}

// promScalar is the value of an instant query whose result is one sample.
func promScalar(b *testing.B, base, query string) float64 {
	raw := promtest.WaitQuery(b, base, query, 30*time.Second)
	var res []struct {
		Value [2]any `json:"value"`
	}
	if err := json.Unmarshal(raw, &res); err != nil || len(res) == 0 {
		b.Fatalf("query %q: %s: %v", query, raw, err)
	}
	s, _ := res[0].Value[1].(string)
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		b.Fatalf("query %q: value %q: %v", query, s, err)
	}
	return v
}

// TestBenchSeriesSlots checks that the live traffic gives each policy's
// counter the curve prefillHistory gave its series: the slot is the
// series' index among its shard's names, and a generator's curves do not
// depend on how many series it was made for.
func TestBenchSeriesSlots(t *testing.T) {
	for _, shards := range []int{1, 3} {
		slots := benchSeriesSlots(50, shards)
		for shard := range shards {
			names := benchSeriesNames(50, shard, shards)
			seen := 0
			for i, slot := range slots {
				key := reconciler.PolicyKey("default", fmt.Sprintf("bench-%04d", i), "web")
				if shards > 1 && nomad.ShardOf(key, shards) != shard {
					continue
				}
				seen++
				if slot >= len(names) || names[slot] != store.SeriesName(key, "requests") {
					t.Fatalf("shards %d: policy %d has slot %d, not its series' index in shard %d", shards, i, slot, shard)
				}
			}
			if seen != len(names) {
				t.Fatalf("shards %d, shard %d: %d policies for %d series", shards, shard, seen, len(names))
			}
		}
	}
	few, many := newBenchCounts(5, 1), newBenchCounts(50, 2)
	for s := range 5 {
		if few.level(s, 1e9) != many.level(s, 1e9) {
			t.Fatalf("series %d: level %v with 5 series, %v with 50", s, few.level(s, 1e9), many.level(s, 1e9))
		}
	}
}
