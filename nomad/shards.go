package nomad

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/nomadscalerd/nomadscalerd/clock"
	"github.com/nomadscalerd/nomadscalerd/reconciler"
)

// ShardLockPrefix prefixes the Nomad variables whose locks assign shards.
const ShardLockPrefix = "nomadscalerd/shard/"

// ReplicaLockPrefix prefixes the Nomad variables whose locks say which
// replicas are alive: each replica holds the lock of its own, so Nomad
// drops a dead replica from the count when its lock runs out.
const ReplicaLockPrefix = "nomadscalerd/replica/"

// ShardOf is the shard of a policy key among n: a stable hash, so every
// replica agrees without talking to the others.
func ShardOf(key string, n int) int {
	if n <= 1 {
		return 0
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return int(h.Sum32() % uint32(n))
}

// BalanceInput is what one replica knows when it rebalances.
type BalanceInput struct {
	// Shards is the number of shards, Replicas the live replicas counting
	// this one (at least 1).
	Shards, Replicas int
	// Held says, per shard, whether this replica holds it.
	Held []bool
	// Unowned holds, for each shard no replica holds, how long this
	// replica has seen it so.
	Unowned map[int]time.Duration
	// SinceMove is how long ago this replica last gave a shard away or
	// asked for one beyond its fair share (a large value when it never
	// did).
	SinceMove time.Duration
	// Grace is how long an unowned shard is left to the replicas below
	// their fair share before one at or above it takes it too; Cooldown
	// is how long a replica waits after giving shards away before it
	// gives any more.
	Grace, Cooldown time.Duration
}

// BalanceDecision is what a replica does about its shards.
type BalanceDecision struct {
	// Compete says, per shard, whether to ask for its lock.
	Compete []bool
	// Release lists the held shards to give away.
	Release []int
	// BeyondShare is set when Compete asks for a shard that would put
	// this replica over its fair share (one unowned past the grace): the
	// caller counts the cooldown from it, so the shard is not given away
	// again at once.
	BeyondShare bool
}

// FairShare is the most shards a replica holds when the shards are spread
// over replicas: ceil(shards / replicas).
func FairShare(shards, replicas int) int {
	replicas = max(replicas, 1)
	return (shards + replicas - 1) / replicas
}

// Balance decides, from one replica's view, which shard locks it asks for
// and which it gives away, so that the replicas come to hold at most their
// fair share each:
//
//   - below its fair share a replica asks for every unowned shard (the lock
//     decides between replicas; one that wins too many gives the excess
//     back later);
//   - at or above it, it asks for an unowned shard only once the shard
//     has been unowned for Grace, so a shard is never left unowned for
//     long even when the replica count is wrong (a dead replica still
//     counted until its lock runs out);
//   - above it, it gives the excess away (the highest-numbered shards),
//     but only when no shard is unowned (the others have not taken what
//     is free yet) and Cooldown after its last release or reach beyond
//     its share, so a shard no one takes comes back after Grace and is
//     not given away again at once.
func Balance(in BalanceInput) BalanceDecision {
	fair := FairShare(in.Shards, in.Replicas)
	held := 0
	for _, h := range in.Held {
		if h {
			held++
		}
	}
	d := BalanceDecision{Compete: make([]bool, in.Shards)}
	for s := range in.Shards {
		if s < len(in.Held) && in.Held[s] {
			continue
		}
		since, unowned := in.Unowned[s]
		d.Compete[s] = unowned && (held < fair || since >= in.Grace)
		d.BeyondShare = d.BeyondShare || d.Compete[s] && held >= fair
	}
	if held <= fair || in.Replicas <= 1 || len(in.Unowned) > 0 || in.SinceMove < in.Cooldown {
		return d
	}
	for s := len(in.Held) - 1; s >= 0 && held > fair; s-- {
		if in.Held[s] {
			d.Release = append(d.Release, s)
			held--
		}
	}
	return d
}

// shardLock is what the balancer needs of one shard's elector (a Leader).
type shardLock interface {
	IsLeader() bool
	SetCompete(bool)
	StepDown()
}

// shardView is what Nomad says about the shard and replica locks.
type shardView struct {
	// replicas counts the live replicas other than this one.
	replicas int
	// owned says, per shard, whether some replica holds its lock.
	owned []bool
}

// balancer runs Balance once a period against Nomad's view of the locks.
type balancer struct {
	n        int
	locks    []shardLock
	view     func(ctx context.Context) (shardView, error)
	clk      clock.Clock
	period   time.Duration
	grace    time.Duration
	cooldown time.Duration
	log      *slog.Logger

	unownedSince map[int]time.Time
	// lastMove is when this replica last gave a shard away or asked for
	// one beyond its share.
	lastMove time.Time
	// warned is when a failed view was last logged: once a minute.
	warned time.Time
}

func (b *balancer) run(ctx context.Context) {
	for {
		b.step(ctx)
		select {
		case <-ctx.Done():
			return
		case <-b.clk.After(b.period):
		}
	}
}

// step reads the locks once and acts on Balance's decision.
func (b *balancer) step(ctx context.Context) {
	v, err := b.view(ctx)
	if err != nil {
		// Without a view, balance gives way to availability: every
		// elector asks for its lock, as before there was balancing. The
		// locks keep each shard on one replica; a token that may not list
		// variables must not leave every shard unowned.
		if ctx.Err() == nil {
			if now := b.clk.Now(); b.warned.IsZero() || now.Sub(b.warned) >= time.Minute {
				b.warned = now
				b.log.Warn("reading shard locks failed; competing for every shard", "err", err)
			}
			for _, l := range b.locks {
				l.SetCompete(true)
			}
		}
		return
	}
	now := b.clk.Now()
	in := BalanceInput{Shards: b.n, Replicas: v.replicas + 1, Held: make([]bool, b.n), Unowned: map[int]time.Duration{},
		SinceMove: now.Sub(b.lastMove), Grace: b.grace, Cooldown: b.cooldown}
	if b.lastMove.IsZero() {
		in.SinceMove = b.cooldown
	}
	for s, l := range b.locks {
		in.Held[s] = l.IsLeader()
		if in.Held[s] || (s < len(v.owned) && v.owned[s]) {
			delete(b.unownedSince, s)
			continue
		}
		if _, ok := b.unownedSince[s]; !ok {
			b.unownedSince[s] = now
		}
		in.Unowned[s] = now.Sub(b.unownedSince[s])
	}
	d := Balance(in)
	for s, l := range b.locks {
		l.SetCompete(d.Compete[s])
	}
	if d.BeyondShare {
		b.lastMove = now
	}
	for _, s := range d.Release {
		b.log.Info("giving a shard away to spread shards over replicas", "shard", s, "replicas", in.Replicas, "fair_share", FairShare(b.n, in.Replicas))
		b.locks[s].StepDown()
		b.lastMove = now
	}
}

// Shards splits policies between replicas: shard i is held by whichever
// replica holds the lock of the Nomad variable nomadscalerd/shard/i, and a
// replica reconciles and records only the policies of the shards it
// holds. Each replica also holds the lock of its own variable under
// nomadscalerd/replica/, so every replica can count the live ones; one
// holding more than its fair share gives the excess away (Balance). A
// replica that stops releases its locks; one that dies loses them after
// the lock TTL; either way the others take them over.
type Shards struct {
	n        int
	leaders  []*Leader
	presence *Leader
	bal      *balancer
	api      *nomadapi.Client
	self     string
	log      *slog.Logger
}

// balancePeriod is how often a replica reads the locks and rebalances:
// one list request to Nomad.
const balancePeriod = time.Second

// NewShards builds n shard electors for the replica named replica;
// onChange runs (on its own goroutine) whenever this replica gains or
// loses a shard.
func NewShards(c *Client, n int, replica string, ttl time.Duration, onChange func(), clk clock.Clock, log *slog.Logger) *Shards {
	if log == nil {
		log = slog.Default()
	}
	s := &Shards{n: n, api: c.api, self: ReplicaLockPrefix + replicaPath(replica), log: log}
	for i := range n {
		s.leaders = append(s.leaders, NewLeaderAt(c, fmt.Sprintf("%s%d", ShardLockPrefix, i), ttl, clk, func(bool) {
			if onChange != nil {
				go onChange()
			}
		}, log))
	}
	s.presence = NewLeaderAt(c, s.self, ttl, clk, nil, log)
	ttl = s.presence.ttl
	locks := make([]shardLock, n)
	for i, l := range s.leaders {
		// Nothing is asked for until the first look at the locks.
		l.SetCompete(false)
		locks[i] = l
	}
	// Grace and the poll bound how long a shard stays unowned: a quarter
	// of the TTL plus two periods. Cooldown a TTL: a shard given away and
	// taken back is not given away again within one.
	s.bal = &balancer{n: n, locks: locks, view: s.view, clk: clk, period: balancePeriod, grace: ttl / 4, cooldown: ttl,
		log: log, unownedSince: map[int]time.Time{}}
	return s
}

// replicaPath makes a replica's name a variable path element: Nomad allows
// letters, digits and -_~ (and / between elements) in at most 128
// characters.
func replicaPath(name string) string {
	b := []byte(name)
	for i, c := range b {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '~'
		if !ok {
			b[i] = '-'
		}
	}
	return string(b[:min(len(b), 128-len(ReplicaLockPrefix))])
}

// ErrLocksHidden is the balancer's view failing because Nomad hides
// variable locks from the token: it lists them with no lock to any token
// but a management one (Variables.List in nomad/variables_endpoint.go,
// v1.10.0), so every replica would look dead and every shard unowned.
var ErrLocksHidden = errors.New("the Nomad token cannot see variable locks (Nomad shows them to management tokens only): shards are not spread over replicas")

// view lists the locks under nomadscalerd/ in one request.
func (s *Shards) view(ctx context.Context) (shardView, error) {
	vars, _, err := s.api.Variables().PrefixList("nomadscalerd/", (&nomadapi.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return shardView{}, fmt.Errorf("list shard and replica locks: %w", err)
	}
	v := shardView{owned: make([]bool, s.n)}
	var stale *nomadapi.VariableMetadata
	// hidden: a lock this replica holds is listed as free, so the list
	// shows no lock at all and says nothing about the others.
	hidden := false
	for _, m := range vars {
		locked := m.Lock != nil && m.Lock.ID != ""
		switch {
		case m.Path == s.self:
			hidden = hidden || !locked && s.presence.IsLeader()
		case strings.HasPrefix(m.Path, ReplicaLockPrefix):
			if locked && m.Path != s.self {
				v.replicas++
			}
			if !locked && m.Path != s.self {
				stale = m
			}
		case strings.HasPrefix(m.Path, ShardLockPrefix):
			i, err := strconv.Atoi(strings.TrimPrefix(m.Path, ShardLockPrefix))
			if err == nil && i >= 0 && i < s.n {
				v.owned[i] = locked
				hidden = hidden || !locked && s.leaders[i].IsLeader()
			}
		}
	}
	if hidden {
		// Nothing is deleted either: a live replica's variable would look
		// stopped.
		return shardView{}, ErrLocksHidden
	}
	if stale != nil {
		// A stopped or dead replica's variable: removed (one a look, only
		// if unchanged since listed) so the list does not grow with every
		// restart. A replica that was only paused recreates its own when
		// it takes its lock again.
		if _, err := s.api.Variables().CheckedDelete(stale.Path, stale.ModifyIndex, (&nomadapi.WriteOptions{}).WithContext(ctx)); err != nil {
			s.log.Debug("removing a stopped replica's variable", "path", stale.Path, "err", err)
		}
	}
	return v, nil
}

// Run holds this replica's presence lock, competes for shards and
// rebalances until ctx ends.
func (s *Shards) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { _ = s.presence.Run(ctx) })
	for _, l := range s.leaders {
		wg.Go(func() { _ = l.Run(ctx) })
	}
	wg.Go(func() { s.bal.run(ctx) })
	wg.Wait()
	return nil
}

// Owns reports whether this replica holds the shard of key now.
func (s *Shards) Owns(key string) bool {
	return s.leaders[ShardOf(key, s.n)].IsLeader()
}

// ContextOf is the current term of this replica's hold on key's shard
// (Leader.Context): it ends when the shard's lock is lost or given away,
// so a scale of one of its policies in flight is cut off then.
func (s *Shards) ContextOf(key string) context.Context {
	return s.leaders[ShardOf(key, s.n)].Context()
}

var _ reconciler.OwnerLease = (*Shards)(nil)

// Held lists the shards this replica holds.
func (s *Shards) Held() []int {
	var out []int
	for i, l := range s.leaders {
		if l.IsLeader() {
			out = append(out, i)
		}
	}
	return out
}
