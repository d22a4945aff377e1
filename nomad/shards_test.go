package nomad

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/nomadscalerd/nomadscalerd/clock"
)

func TestAPolicyKeysShardIsStableAndTheKeysSpreadOverTheShards(t *testing.T) {
	counts := make([]int, 4)
	for i := range 4000 {
		key := fmt.Sprintf("default/job-%d/web", i)
		s := ShardOf(key, 4)
		if s != ShardOf(key, 4) {
			t.Fatalf("%s: shard changed between two calls", key)
		}
		counts[s]++
	}
	for i, n := range counts {
		if n < 800 || n > 1200 {
			t.Errorf("shard %d holds %d of 4000 keys, want about 1000: %v", i, n, counts)
		}
	}
	if ShardOf("default/a/b", 1) != 0 {
		t.Error("with one shard every key is in shard 0")
	}
}

func TestBalanceGivesAwayOnlyTheExcessOverTheFairShareAndWaitsForTheOthersBeforeTakingMore(t *testing.T) {
	const grace, cooldown = 2500 * time.Millisecond, 10 * time.Second
	long := time.Hour
	for _, c := range []struct {
		name         string
		shards, reps int
		held         []bool
		unowned      map[int]time.Duration
		sinceMove    time.Duration
		compete      []bool
		release      []int
		beyond       bool
	}{
		{name: "alone with every shard: keeps them", shards: 2, reps: 1, held: []bool{true, true}, sinceMove: long,
			compete: []bool{false, false}},
		{name: "alone and a shard unowned: asks for it at once", shards: 2, reps: 1, held: []bool{true, false},
			unowned: map[int]time.Duration{1: 0}, sinceMove: long, compete: []bool{false, true}},
		{name: "both shards and a second replica: gives the highest away", shards: 2, reps: 2, held: []bool{true, true},
			sinceMove: long, compete: []bool{false, false}, release: []int{1}},
		{name: "four shards of four with three replicas: gives two away", shards: 4, reps: 3, held: []bool{true, true, true, true},
			sinceMove: long, compete: []bool{false, false, false, false}, release: []int{3, 2}},
		{name: "at the fair share of three shards among two: keeps both", shards: 3, reps: 2, held: []bool{true, false, true},
			sinceMove: long, compete: []bool{false, false, false}},
		{name: "over the share but a shard is unowned: gives nothing away yet", shards: 3, reps: 3, held: []bool{true, true, false},
			unowned: map[int]time.Duration{2: time.Second}, sinceMove: long, compete: []bool{false, false, false}},
		{name: "over the share within the cooldown of a release: gives nothing away", shards: 2, reps: 2, held: []bool{true, true},
			sinceMove: cooldown - time.Second, compete: []bool{false, false}},
		{name: "below the share: asks for unowned shards only", shards: 4, reps: 2, held: []bool{false, false, false, false},
			unowned: map[int]time.Duration{0: 0, 3: 0}, sinceMove: long, compete: []bool{true, false, false, true}},
		{name: "at the share: leaves an unowned shard to others for the grace", shards: 2, reps: 2, held: []bool{true, false},
			unowned: map[int]time.Duration{1: grace - time.Millisecond}, sinceMove: long, compete: []bool{false, false}},
		{name: "at the share: takes a shard unowned past the grace", shards: 2, reps: 2, held: []bool{true, false},
			unowned: map[int]time.Duration{1: grace}, sinceMove: long, compete: []bool{false, true}, beyond: true},
		{name: "more replicas than shards: one each at most", shards: 2, reps: 5, held: []bool{false, true},
			sinceMove: long, compete: []bool{false, false}},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := Balance(BalanceInput{Shards: c.shards, Replicas: c.reps, Held: c.held, Unowned: c.unowned,
				SinceMove: c.sinceMove, Grace: grace, Cooldown: cooldown})
			if !slices.Equal(d.Compete, c.compete) {
				t.Errorf("compete %v, want %v", d.Compete, c.compete)
			}
			if !slices.Equal(d.Release, c.release) {
				t.Errorf("release %v, want %v", d.Release, c.release)
			}
			if d.BeyondShare != c.beyond {
				t.Errorf("beyond share %v, want %v", d.BeyondShare, c.beyond)
			}
		})
	}
}

// lockTable stands in for Nomad's shard and replica locks in a balancer
// test: a shard is owned by a replica's name or by no one ("").
type lockTable struct {
	owner []string
	alive map[string]bool
}

type tableLock struct {
	tab     *lockTable
	shard   int
	name    string
	compete bool
	steps   *int
}

func (l *tableLock) IsLeader() bool    { return l.tab.owner[l.shard] == l.name }
func (l *tableLock) SetCompete(v bool) { l.compete = v }
func (l *tableLock) StepDown() {
	if l.IsLeader() {
		l.tab.owner[l.shard] = ""
		*l.steps++
	}
}

// replicaSim is one replica's balancer over the table, and its locks.
type replicaSim struct {
	name     string
	bal      *balancer
	locks    []*tableLock
	releases int
}

func newReplicaSim(tab *lockTable, name string, clk clock.Clock) *replicaSim {
	r := &replicaSim{name: name}
	locks := make([]shardLock, len(tab.owner))
	for s := range tab.owner {
		l := &tableLock{tab: tab, shard: s, name: name, steps: &r.releases}
		r.locks = append(r.locks, l)
		locks[s] = l
	}
	r.bal = &balancer{n: len(tab.owner), locks: locks, clk: clk, period: time.Second, grace: 2500 * time.Millisecond,
		cooldown: 10 * time.Second, log: slog.New(slog.DiscardHandler), unownedSince: map[int]time.Time{},
		view: func(context.Context, []bool) (shardView, error) {
			v := shardView{owned: make([]bool, len(tab.owner))}
			for other, ok := range tab.alive {
				if ok && other != name {
					v.replicas++
				}
			}
			for s, o := range tab.owner {
				v.owned[s] = o != ""
			}
			return v, nil
		}}
	return r
}

// acquire is the electors' poll: each replica, in turn, takes the unowned
// shards it asks for.
func (tab *lockTable) acquire(rs ...*replicaSim) {
	for _, r := range rs {
		if !tab.alive[r.name] {
			continue
		}
		for _, l := range r.locks {
			if l.compete && tab.owner[l.shard] == "" {
				tab.owner[l.shard] = r.name
			}
		}
	}
}

func (tab *lockTable) count(name string) int {
	n := 0
	for _, o := range tab.owner {
		if o == name {
			n++
		}
	}
	return n
}

func TestAReplicaGivesItsExtraShardToASecondOneOnceAndTheyStaySplit(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC))
	tab := &lockTable{owner: []string{"a", "a"}, alive: map[string]bool{"a": true}}
	a := newReplicaSim(tab, "a", clk)
	b := newReplicaSim(tab, "b", clk)
	keepsBothThenSplits(t, clk, tab, a, func() *replicaSim { return b }, 3, 120)
}

// keepsBothThenSplits steps a alone for 5 s, in which it must keep both
// shards, then starts b (join) and steps both for steps seconds: from
// settle seconds on each must hold one shard, and a must have released
// one shard in all (no flapping).
func keepsBothThenSplits(t *testing.T, clk *clock.Fake, tab *lockTable, a *replicaSim, join func() *replicaSim, settle, steps int) {
	t.Helper()
	ctx := context.Background()
	for range 5 {
		a.bal.step(ctx)
		tab.acquire(a)
		clk.Advance(time.Second)
	}
	if tab.count("a") != 2 || a.releases != 0 {
		t.Fatalf("alone: a holds %d shards after %d releases, want 2 and 0", tab.count("a"), a.releases)
	}
	b := join()
	tab.alive["b"] = true
	for i := range steps {
		a.bal.step(ctx)
		b.bal.step(ctx)
		tab.acquire(b, a)
		clk.Advance(time.Second)
		if i >= settle && (tab.count("a") != 1 || tab.count("b") != 1) {
			t.Fatalf("%d s after b started: owners %q, want one shard each", i+1, tab.owner)
		}
	}
	if a.releases != 1 || b.releases != 0 {
		t.Errorf("releases: a %d, b %d, want 1 and 0 (no flapping)", a.releases, b.releases)
	}
}

func TestASurvivorTakesADeadReplicasShardAtOnceAndAShardNoOneTakesComesBackWithinTheGrace(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC))
	tab := &lockTable{owner: []string{"a", "b"}, alive: map[string]bool{"a": true, "b": true}}
	a := newReplicaSim(tab, "a", clk)
	ctx := context.Background()
	a.bal.step(ctx)
	// b dies: its shard lock runs out while its replica lock still
	// counts it for a few seconds.
	tab.owner[1] = ""
	unowned := 0
	for i := range 20 {
		a.bal.step(ctx)
		tab.acquire(a)
		clk.Advance(time.Second)
		if tab.owner[1] == "" {
			unowned++
		}
		if i == 6 {
			delete(tab.alive, "b")
		}
	}
	if tab.count("a") != 2 {
		t.Fatalf("owners %q after b died: want both with a", tab.owner)
	}
	// Taken past the grace (2.5 s), though b still counted: at most the
	// grace rounded up to periods plus one.
	if unowned > 4 {
		t.Errorf("b's shard stayed unowned %d s, want at most 4 (grace 2.5 s)", unowned)
	}

	// A replica that counts as live but never takes a shard (stuck): a
	// gives the shard away, takes it back after the grace, and gives it
	// away again no sooner than the cooldown.
	tab.alive["stuck"] = true
	longest, run := 0, 0
	for range 60 {
		a.bal.step(ctx)
		tab.acquire(a)
		clk.Advance(time.Second)
		if tab.owner[1] == "" {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	if a.releases > 6 {
		t.Errorf("%d releases in 60 s with a 10 s cooldown, want at most 6", a.releases)
	}
	if a.releases == 0 {
		t.Error("a never gave the shard away to the replica it counts")
	}
	if longest > 4 {
		t.Errorf("a shard stayed unowned %d s, want at most 4", longest)
	}
}

func TestTheBalancerLooksAtTheOtherReplicasOncePerPeriodOfItsClock(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC))
	tab := &lockTable{owner: []string{"", ""}, alive: map[string]bool{"a": true}}
	a := newReplicaSim(tab, "a", clk)
	looks := 0
	view := a.bal.view
	a.bal.view = func(ctx context.Context, held []bool) (shardView, error) { looks++; return view(ctx, held) }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.bal.run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	for i := range 3 {
		if !clk.BlockUntil(1, 5*time.Second) {
			t.Fatalf("the balancer is not waiting on the clock after %d periods", i)
		}
		clk.Advance(time.Second)
	}
	if !clk.BlockUntil(1, 5*time.Second) {
		t.Fatal("the balancer is not waiting on the clock")
	}
	// The first look at start, then one per period advanced.
	if looks != 4 {
		t.Errorf("%d looks after 3 periods, want 4", looks)
	}
	for s, l := range a.locks {
		if !l.compete {
			t.Errorf("shard %d is unowned and the replica alone, but it does not ask for it", s)
		}
	}
}

func TestAReplicaThatCannotLookAtTheOtherReplicasCompetesForEveryShardRatherThanNone(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC))
	tab := &lockTable{owner: []string{"", ""}, alive: map[string]bool{"a": true}}
	a := newReplicaSim(tab, "a", clk)
	a.bal.view = func(context.Context, []bool) (shardView, error) {
		return shardView{}, errors.New("Permission denied: 403 listing variables")
	}
	for _, l := range a.locks {
		l.compete = false // as NewShards starts them
	}
	a.bal.step(context.Background())
	tab.acquire(a)
	if tab.count("a") != 2 {
		t.Errorf("without a view of the locks the replica holds %d of 2 shards, want both (owners %q)", tab.count("a"), tab.owner)
	}
}

func TestAReplicaNameBecomesAValidVariablePathElement(t *testing.T) {
	got := replicaPath("host.example/1234/127.0.0.1:8080")
	if got != "host-example-1234-127-0-0-1-8080" {
		t.Errorf("got %q", got)
	}
	long := replicaPath(strings.Repeat("x", 300))
	if n := len(HeartbeatPrefix + long); n != 128 {
		t.Errorf("a long name makes a %d-character path, want 128", n)
	}
}

// A management token lists the locks too: a shard seen locked counts as
// owned though no heartbeat claims it yet (its holder's next one is due).
// The leader lock, a shard beyond --shards and this replica's own
// heartbeat count for nothing; dead variables, a heartbeat and one an
// earlier version left under nomadscalerd/replica/, go one a look.
func TestTheShardViewCountsLiveHeartbeatsTakesALockedShardForOwnedAndRemovesDeadVariablesOneALook(t *testing.T) {
	locked := &nomadapi.VariableLock{ID: "x", TTL: "10s"}
	fake := newFakeVarNomad("nomadscalerd/leader", ShardLockPrefix+"0", ShardLockPrefix+"1", ShardLockPrefix+"2",
		ShardLockPrefix+"9", legacyReplicaPrefix+"old")
	fake.showLocks = true
	fake.vars["nomadscalerd/leader"].Lock = locked
	fake.vars[ShardLockPrefix+"2"].Lock = locked
	fake.vars[ShardLockPrefix+"9"].Lock = locked
	fake.index++
	fake.vars[HeartbeatPrefix+"other"] = &nomadapi.Variable{Path: HeartbeatPrefix + "other", ModifyIndex: fake.index,
		Items: nomadapi.VariableItems{"shards": "0,7,x"}}
	otherIndex, oldIndex := fake.index, fake.vars[legacyReplicaPrefix+"old"].ModifyIndex
	clk := clock.NewFake(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC))
	s := shardsOnFakeNomad(t, fake, 3, "self", clk)
	ctx := context.Background()
	v, err := s.hb.view(ctx, []bool{false, true, false})
	if err != nil {
		t.Fatal(err)
	}
	if v.replicas != 1 || !slices.Equal(v.owned, []bool{true, false, true}) {
		t.Errorf("view %+v: want 1 other live replica and shards 0 and 2 owned by others", v)
	}
	fake.mu.Lock()
	if own := fake.vars[HeartbeatPrefix+"self"]; own == nil || own.Items["shards"] != "1" {
		t.Errorf("own heartbeat %+v, want one saying shard 1", own)
	}
	fake.mu.Unlock()

	// Neither changes for the lock TTL (10 s): both dead, removed one a
	// look, each checked against the index listed.
	clk.Advance(10 * time.Second)
	for range 2 {
		if v, err = s.hb.view(ctx, []bool{false, true, false}); err != nil {
			t.Fatal(err)
		}
	}
	if v.replicas != 0 || !slices.Equal(v.owned, []bool{false, false, true}) {
		t.Errorf("view %+v: want no other live replica and only the locked shard 2 owned", v)
	}
	fake.mu.Lock()
	defer fake.mu.Unlock()
	want := []string{HeartbeatPrefix + "other?cas=" + strconv.FormatUint(otherIndex, 10),
		legacyReplicaPrefix + "old?cas=" + strconv.FormatUint(oldIndex, 10)}
	if !slices.Equal(fake.deleted, want) {
		t.Errorf("deleted %v, want %v, in two looks", fake.deleted, want)
	}
}

// A clean stop removes the replica's heartbeat, so the others stop
// counting it at once rather than a lock TTL later, and its held shards.
func TestAReplicaThatStopsRemovesItsHeartbeat(t *testing.T) {
	fake := newFakeVarNomad()
	s := shardsOnFakeNomad(t, fake, 2, "self", clock.NewFake(time.Now()))
	ctx, cancel := context.WithCancel(context.Background())
	if _, err := s.hb.view(ctx, []bool{true, false}); err != nil {
		t.Fatal(err)
	}
	cancel()
	s.hb.leave(ctx)
	fake.mu.Lock()
	defer fake.mu.Unlock()
	for _, p := range []string{HeartbeatPrefix + "self", HeldPrefix + "self"} {
		if _, ok := fake.vars[p]; ok {
			t.Errorf("%s is still there after a clean stop (deleted %v)", p, fake.deleted)
		}
	}
}

func TestAShardsContextOfAPolicyEndsWhenThisReplicaLosesThatShardAndNotAnother(t *testing.T) {
	mk := func(i int) *Leader {
		return newLeader(nil, fmt.Sprintf("%s%d", ShardLockPrefix, i), 10*time.Second, clock.Real{}, nil, slog.New(slog.DiscardHandler))
	}
	s := &Shards{n: 2, leaders: []*Leader{mk(0), mk(1)}}
	var keys [2]string
	for i := 0; keys[0] == "" || keys[1] == ""; i++ {
		k := fmt.Sprintf("default/web-%d/api", i)
		keys[ShardOf(k, 2)] = k
	}
	if s.ContextOf(keys[0]).Err() == nil {
		t.Fatal("a shard never held has a live context")
	}
	for _, l := range s.leaders {
		l.extend(time.Now())
		l.set(true)
	}
	held0, held1 := s.ContextOf(keys[0]), s.ContextOf(keys[1])
	if held0.Err() != nil || held1.Err() != nil {
		t.Fatal("a held shard's context is ended")
	}
	s.leaders[0].set(false)
	select {
	case <-held0.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("losing shard 0 did not end the context of its policy")
	}
	if held1.Err() != nil {
		t.Fatal("losing shard 0 ended the context of a policy of shard 1")
	}
}
