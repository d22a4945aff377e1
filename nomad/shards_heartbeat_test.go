package nomad

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/nomadscalerd/nomadscalerd/clock"
)

// fakeVarNomad is Nomad's variables API as a token that is not a
// management one sees it (Nomad v1.10): plain variables are written, read,
// listed and deleted (checked against their index), and no listing shows a
// lock, held or not.
type fakeVarNomad struct {
	mu      sync.Mutex
	index   uint64
	vars    map[string]*nomadapi.Variable
	deleted []string
	// showLocks lists locks as a management token sees them.
	showLocks bool
	// calls counts requests by kind: list, read, write, delete.
	calls map[string]int
	// failDeletes is how many deletes to come fail with a 500.
	failDeletes int
	// now, when set, is the servers' clock: a write stamps ModifyTime
	// with it, as Nomad's leader does.
	now func() time.Time
	// vanish holds paths that a read finds deleted (the variable is
	// removed between a list and the read that follows it): the read
	// deletes it and answers 404.
	vanish map[string]bool
}

func newFakeVarNomad(paths ...string) *fakeVarNomad {
	f := &fakeVarNomad{vars: map[string]*nomadapi.Variable{}, calls: map[string]int{}}
	for _, p := range paths {
		f.index++
		f.vars[p] = &nomadapi.Variable{Path: p, Namespace: "default", CreateIndex: f.index, ModifyIndex: f.index}
	}
	return f
}

func (f *fakeVarNomad) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w.Header().Set("X-Nomad-Index", strconv.FormatUint(f.index, 10))
	path := strings.TrimPrefix(r.URL.Path, "/v1/var/")
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/v1/vars":
		f.calls["list"]++
		out := []*nomadapi.VariableMetadata{}
		for p, v := range f.vars {
			if strings.HasPrefix(p, r.URL.Query().Get("prefix")) {
				m := v.Metadata() // without the lock
				if f.showLocks {
					m.Lock = v.Lock
				}
				out = append(out, m)
			}
		}
		sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
		_ = json.NewEncoder(w).Encode(out)
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v1/var/"):
		f.calls["read"]++
		if f.vanish[path] {
			delete(f.vars, path)
		}
		v, ok := f.vars[path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(v)
	case r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, "/v1/var/") && r.URL.RawQuery == "":
		f.calls["write"]++
		var v nomadapi.Variable
		if err := json.NewDecoder(r.Body).Decode(&v); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.index++
		v.Path, v.Namespace, v.ModifyIndex = path, "default", f.index
		v.CreateIndex = f.index
		if f.now != nil {
			v.ModifyTime = f.now().UnixNano()
		}
		if old, ok := f.vars[path]; ok {
			v.CreateIndex = old.CreateIndex
		}
		f.vars[path] = &v
		_ = json.NewEncoder(w).Encode(v)
	case r.Method == http.MethodDelete && strings.HasPrefix(r.URL.Path, "/v1/var/"):
		f.calls["delete"]++
		if f.failDeletes > 0 {
			f.failDeletes--
			http.Error(w, "raft apply failed: timed out enqueuing operation", http.StatusInternalServerError)
			return
		}
		v, ok := f.vars[path]
		if cas := r.URL.Query().Get("cas"); ok && cas != "" && cas != strconv.FormatUint(v.ModifyIndex, 10) {
			w.WriteHeader(http.StatusConflict)
			_ = json.NewEncoder(w).Encode(v)
			return
		}
		delete(f.vars, path)
		f.deleted = append(f.deleted, path+"?cas="+r.URL.Query().Get("cas"))
		w.WriteHeader(http.StatusNoContent)
	default:
		http.Error(w, "not in the fake: "+r.Method+" "+r.URL.String(), http.StatusNotImplemented)
	}
}

// shardsOnFakeNomad is a replica named name of n shards with a 10 s lock
// TTL, built by NewShards against fake served for the test's length.
func shardsOnFakeNomad(t *testing.T, fake *fakeVarNomad, n int, name string, clk clock.Clock) *Shards {
	t.Helper()
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	c, err := NewClient(srv.URL, "")
	if err != nil {
		t.Fatal(err)
	}
	return NewShards(c, n, name, 10*time.Second, nil, clk, slog.New(slog.DiscardHandler))
}

// shardsOnTable is a replica built by NewShards against a fake Nomad whose
// shard locks are the lock table's: the table decides who holds a shard,
// the fake Nomad carries whatever else the replicas write.
func shardsOnTable(t *testing.T, addr string, tab *lockTable, name string, clk clock.Clock) (*Shards, *replicaSim) {
	t.Helper()
	c, err := NewClient(addr, "")
	if err != nil {
		t.Fatal(err)
	}
	s := NewShards(c, len(tab.owner), name, 10*time.Second, nil, clk, slog.New(slog.DiscardHandler))
	r := &replicaSim{name: name, bal: s.bal}
	for i := range s.bal.locks {
		l := &tableLock{tab: tab, shard: i, name: name, steps: &r.releases}
		r.locks = append(r.locks, l)
		s.bal.locks[i] = l
	}
	return s, r
}

// Nomad v1.10 lists variable locks to management tokens only: with the
// token the README documents every lock looks free. The replicas still
// see each other, and who holds what, through their heartbeats.
func TestWithLocksHiddenTwoReplicasSeeEachOthersHeartbeatsOnAFakeNomadAndTakeOneShardEach(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC))
	fake := newFakeVarNomad(ShardLockPrefix+"0", ShardLockPrefix+"1")
	srv := httptest.NewServer(fake)
	defer srv.Close()
	tab := &lockTable{owner: []string{"a", "a"}, alive: map[string]bool{"a": true}}
	_, a := shardsOnTable(t, srv.URL, tab, "a", clk)
	// b's heartbeat appears only when it starts.
	keepsBothThenSplits(t, clk, tab, a, func() *replicaSim {
		_, b := shardsOnTable(t, srv.URL, tab, "b", clk)
		return b
	}, 5, 60)
}

// A replica that dies stops heartbeating: after the lock TTL the survivor
// no longer counts it, takes its shard once Nomad frees the lock, and
// removes its heartbeat and held shards variables (checked against the
// index it saw, so a replica that wrote again meanwhile keeps its own).
func TestADeadReplicasHeartbeatStopsCountingAndIsRemovedCheckedOnAFakeNomad(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC))
	fake := newFakeVarNomad(ShardLockPrefix+"0", ShardLockPrefix+"1")
	srv := httptest.NewServer(fake)
	defer srv.Close()
	tab := &lockTable{owner: []string{"a", "b"}, alive: map[string]bool{"a": true, "b": true}}
	_, a := shardsOnTable(t, srv.URL, tab, "a", clk)
	_, b := shardsOnTable(t, srv.URL, tab, "b", clk)
	ctx := context.Background()
	for range 10 {
		a.bal.step(ctx)
		b.bal.step(ctx)
		tab.acquire(a, b)
		clk.Advance(time.Second)
	}
	if tab.count("a") != 1 || tab.count("b") != 1 {
		t.Fatalf("before b dies: owners %q, want one each", tab.owner)
	}
	fake.mu.Lock()
	bIndex := map[string]uint64{}
	for _, p := range []string{HeartbeatPrefix + "b", HeldPrefix + "b"} {
		if v := fake.vars[p]; v != nil {
			bIndex[p] = v.ModifyIndex
		}
	}
	fake.mu.Unlock()
	if len(bIndex) != 2 {
		t.Fatalf("b wrote %v, want its heartbeat and its held shards", bIndex)
	}

	// b dies (SIGKILL): its shard lock is freed 2 x 10 s + 1 s after its
	// last renewal.
	delete(tab.alive, "b")
	for i := range 40 {
		if i == 21 {
			tab.owner[1] = ""
		}
		a.bal.step(ctx)
		tab.acquire(a)
		clk.Advance(time.Second)
	}
	if tab.count("a") != 2 {
		t.Errorf("owners %q 40 s after b died: want both with a", tab.owner)
	}
	fake.mu.Lock()
	defer fake.mu.Unlock()
	for p, i := range bIndex {
		want := p + "?cas=" + strconv.FormatUint(i, 10)
		if !slices.Contains(fake.deleted, want) {
			t.Errorf("deleted %v, want %s (b's variable, checked against its last index)", fake.deleted, want)
		}
	}
}

// A replica that has just started (a restart under a new name: its name
// holds its pid) knows nothing of the heartbeats it lists, so it judges
// each by its age on the servers' clock, measured against its own
// heartbeat's, just written: a predecessor that crashed a minute ago
// counts for nothing and its shards are free at the first look (and its
// heartbeat is removed), while one written 4 s ago counts for the 6 s
// left of its lock TTL, as it does for a replica that saw it written.
// The servers' clock is an hour off the replica's: only the servers'
// times are compared with each other.
func TestOnAFakeNomadAReplicaJustStartedCountsAHeartbeatOnlyForWhatIsLeftOfItsTTLOnTheServersClock(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC))
	servers := func() time.Time { return clk.Now().Add(-time.Hour) }
	fake := newFakeVarNomad()
	fake.now = servers
	for _, hb := range []struct {
		name, shards string
		age          time.Duration
	}{{"host-100", "0,1", time.Minute}, {"other", "2", 4 * time.Second}} {
		fake.index++
		fake.vars[HeartbeatPrefix+hb.name] = &nomadapi.Variable{Path: HeartbeatPrefix + hb.name, ModifyIndex: fake.index,
			ModifyTime: servers().Add(-hb.age).UnixNano(), Items: nomadapi.VariableItems{heartbeatShardsItem: hb.shards}}
	}
	crashedIndex := fake.vars[HeartbeatPrefix+"host-100"].ModifyIndex
	s := shardsOnFakeNomad(t, fake, 3, "host-200", clk)
	ctx := context.Background()
	look := func() shardView {
		t.Helper()
		v, err := s.hb.view(ctx, []bool{false, false, false})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if v := look(); v.replicas != 1 || !slices.Equal(v.owned, []bool{false, false, true}) {
		t.Errorf("first look %+v: want only the heartbeat written 4 s ago counted, shards 0 and 1 free", v)
	}
	fake.mu.Lock()
	want := HeartbeatPrefix + "host-100?cas=" + strconv.FormatUint(crashedIndex, 10)
	if !slices.Contains(fake.deleted, want) {
		t.Errorf("deleted %v after the first look, want %s (the crashed replica's heartbeat, checked)", fake.deleted, want)
	}
	fake.mu.Unlock()
	clk.Advance(5 * time.Second)
	if v := look(); v.replicas != 1 {
		t.Errorf("5 s on (9 s after its last write) %+v: want the other still counted", v)
	}
	clk.Advance(time.Second)
	if v := look(); v.replicas != 0 || slices.Contains(v.owned, true) {
		t.Errorf("6 s on (a lock TTL after its last write) %+v: want no other replica counted", v)
	}
}

// A dead replica's heartbeat whose removal failed (Nomad answered a 500)
// is tried again a lock TTL later, not left in Nomad's variables for as
// long as the replica that saw it runs.
func TestOnAFakeNomadADeadHeartbeatWhoseRemovalFailedIsRemovedAtALaterTry(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC))
	fake := newFakeVarNomad(HeartbeatPrefix + "dead")
	s := shardsOnFakeNomad(t, fake, 2, "self", clk)
	ctx := context.Background()
	gone := func() bool {
		fake.mu.Lock()
		defer fake.mu.Unlock()
		_, ok := fake.vars[HeartbeatPrefix+"dead"]
		return !ok
	}
	fake.failDeletes = 1
	for range 30 {
		if _, err := s.hb.view(ctx, []bool{true, true}); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Second)
	}
	if !gone() {
		t.Errorf("30 s on (the first removal failed at 10 s), the dead heartbeat is still there: deleted %v", fake.deleted)
	}
}

// While no shard moves, a replica looks at the others with one list a
// period and reads nothing: what another holds is read only when it
// changes, not at each of its heartbeats (every 2.5 s here), so the
// requests do not grow with the replicas beyond the list's length.
func TestOnAFakeNomadWhileNoShardMovesEachReplicaLooksAtTheOthersWithOneListAPeriodAndNoRead(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC))
	fake := newFakeVarNomad()
	srv := httptest.NewServer(fake)
	defer srv.Close()
	names := []string{"a", "b", "c"}
	tab := &lockTable{owner: slices.Clone(names), alive: map[string]bool{"a": true, "b": true, "c": true}}
	var rs []*replicaSim
	for _, n := range names {
		_, r := shardsOnTable(t, srv.URL, tab, n, clk)
		rs = append(rs, r)
	}
	ctx := context.Background()
	steps := func(n int) {
		for range n {
			for _, r := range rs {
				r.bal.step(ctx)
			}
			tab.acquire(rs...)
			clk.Advance(time.Second)
		}
	}
	steps(10)
	fake.mu.Lock()
	clear(fake.calls)
	fake.mu.Unlock()
	steps(20)
	if !slices.Equal(tab.owner, names) {
		t.Fatalf("owners %q, want one shard each as they started", tab.owner)
	}
	fake.mu.Lock()
	defer fake.mu.Unlock()
	if fake.calls["list"] != 3*20 || fake.calls["read"] != 0 {
		t.Errorf("in 20 periods three replicas sent %d lists and %d reads, want 60 (one a period each) and none", fake.calls["list"], fake.calls["read"])
	}
	t.Logf("requests in 20 periods: %v", fake.calls)
}

// A replica's held shards removed by another (which took it for dead
// during a long pause) are written again at its next look, though its
// shards did not change: the others would otherwise fall back to reading
// its heartbeat at every beat.
func TestOnAFakeNomadAReplicaWritesItsHeldShardsAgainWhenAnotherRemovedThem(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC))
	fake := newFakeVarNomad()
	s := shardsOnFakeNomad(t, fake, 2, "self", clk)
	ctx := context.Background()
	look := func() {
		t.Helper()
		if _, err := s.hb.view(ctx, []bool{true, false}); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Second)
	}
	look()
	fake.mu.Lock()
	delete(fake.vars, HeldPrefix+"self")
	fake.mu.Unlock()
	look() // sees it gone
	look()
	fake.mu.Lock()
	defer fake.mu.Unlock()
	if v := fake.vars[HeldPrefix+"self"]; v == nil || v.Items[heartbeatShardsItem] != "0" {
		t.Errorf("held shards %+v two looks after they were removed, want them written again saying shard 0", v)
	}
}

// A replica that stops cleanly deletes its heartbeat and then its held
// shards; another that listed both just before reads the held shards
// after they are gone. That is a replica leaving, not a failed look: it
// is not counted, and the look goes on (a failed look has the replica
// compete for every shard for a period and log a warning).
func TestOnAFakeNomadHeldShardsDeletedBetweenTheListAndTheirReadCountAsAReplicaGone(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC))
	fake := newFakeVarNomad()
	for _, p := range []string{HeartbeatPrefix + "leaving", HeldPrefix + "leaving", HeartbeatPrefix + "staying", HeldPrefix + "staying"} {
		fake.index++
		fake.vars[p] = &nomadapi.Variable{Path: p, ModifyIndex: fake.index, Items: nomadapi.VariableItems{heartbeatShardsItem: "0"}}
	}
	fake.vars[HeldPrefix+"staying"].Items[heartbeatShardsItem] = "2"
	fake.vanish = map[string]bool{HeldPrefix + "leaving": true}
	s := shardsOnFakeNomad(t, fake, 3, "me", clk)
	v, err := s.hb.view(context.Background(), []bool{false, false, false})
	if err != nil {
		t.Fatalf("look failed on a replica leaving between the list and the read: %v", err)
	}
	if v.replicas != 1 || !slices.Equal(v.owned, []bool{false, false, true}) {
		t.Errorf("look %+v: want only the staying replica counted, holding shard 2", v)
	}
}
