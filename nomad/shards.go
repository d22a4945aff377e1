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

// HeartbeatPrefix prefixes the Nomad variables through which replicas see
// each other: each replica rewrites its own (a plain write, no lock) every
// quarter of the lock TTL with the shards it holds. Nomad shows variable
// locks to management tokens only, but any token that may list variables
// sees every variable's ModifyIndex, so a heartbeat whose index keeps
// changing is a live replica whatever the token.
const HeartbeatPrefix = "nomadscalerd/heartbeat/"

// HeldPrefix prefixes the Nomad variables in which each replica says which
// shards it holds, rewritten only when they change. Its heartbeat says so
// too (for replicas of earlier versions), but changes at every beat: the
// others read this one instead, so while no shard moves a look at them
// is one list and no read.
const HeldPrefix = "nomadscalerd/held/"

// legacyReplicaPrefix prefixes the variables whose locks counted replicas
// before heartbeats did: they are only removed now (Nomad refuses to delete
// one still locked by a replica of an older version).
const legacyReplicaPrefix = "nomadscalerd/replica/"

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

// shardView is what one replica knows of the others.
type shardView struct {
	// replicas counts the live replicas other than this one.
	replicas int
	// owned says, per shard, whether another replica holds it.
	owned []bool
}

// balancer runs Balance once a period against a view of the other
// replicas.
type balancer struct {
	n     int
	locks []shardLock
	// view looks at the other replicas; held, the shards this replica
	// holds, is what it tells them.
	view     func(ctx context.Context, held []bool) (shardView, error)
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

// step looks at the other replicas once and acts on Balance's decision.
func (b *balancer) step(ctx context.Context) {
	held := make([]bool, b.n)
	for s, l := range b.locks {
		held[s] = l.IsLeader()
	}
	v, err := b.view(ctx, held)
	if err != nil {
		// Without a view, balance gives way to availability: every
		// elector asks for its lock, as before there was balancing. The
		// locks keep each shard on one replica; a token that may not list
		// variables must not leave every shard unowned.
		if ctx.Err() == nil {
			if now := b.clk.Now(); b.warned.IsZero() || now.Sub(b.warned) >= time.Minute {
				b.warned = now
				b.log.Warn("looking at the other replicas failed; competing for every shard", "err", err)
			}
			for _, l := range b.locks {
				l.SetCompete(true)
			}
		}
		return
	}
	now := b.clk.Now()
	in := BalanceInput{Shards: b.n, Replicas: v.replicas + 1, Held: held, Unowned: map[int]time.Duration{},
		SinceMove: now.Sub(b.lastMove), Grace: b.grace, Cooldown: b.cooldown}
	if b.lastMove.IsZero() {
		in.SinceMove = b.cooldown
	}
	for s := range b.locks {
		if held[s] || (s < len(v.owned) && v.owned[s]) {
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
// holds. The lock is what keeps a shard on one replica. The replicas see
// each other through heartbeat variables (heartbeats), not through the
// locks, which Nomad shows to management tokens only: each counts the live
// replicas and the shards they hold, and one holding more than its fair
// share gives the excess away (Balance). A replica that stops releases its
// locks and removes its heartbeat and held shards; one that dies loses its locks after the
// lock TTL and stops being counted when its heartbeat stops changing;
// either way the others take its shards over.
type Shards struct {
	n       int
	leaders []*Leader
	hb      *heartbeats
	bal     *balancer
	log     *slog.Logger
}

// balancePeriod is how often a replica looks at the others and
// rebalances: one list request to Nomad, plus a read of each replica's
// held shards that changed and, every quarter of the lock TTL or when its
// shards change, a write of its own heartbeat (and, when they change, of
// its held shards).
const balancePeriod = time.Second

// NewShards builds n shard electors for the replica named replica;
// onChange runs (on its own goroutine) whenever this replica gains or
// loses a shard.
func NewShards(c *Client, n int, replica string, ttl time.Duration, onChange func(), clk clock.Clock, log *slog.Logger) *Shards {
	if log == nil {
		log = slog.Default()
	}
	if clk == nil {
		clk = clock.Real{}
	}
	s := &Shards{n: n, log: log}
	for i := range n {
		s.leaders = append(s.leaders, NewLeaderAt(c, fmt.Sprintf("%s%d", ShardLockPrefix, i), ttl, clk, func(bool) {
			if onChange != nil {
				go onChange()
			}
		}, log))
	}
	ttl = NomadLockTTL(ttl)
	locks := make([]shardLock, n)
	for i, l := range s.leaders {
		// Nothing is asked for until the first look at the others.
		l.SetCompete(false)
		locks[i] = l
	}
	// A heartbeat every quarter of the TTL, and a replica counted dead
	// once it has missed about four: it is then dropped from the count
	// well before Nomad frees its locks (twice the TTL plus the lock
	// delay), so the survivors are already asking for its shards.
	s.hb = &heartbeats{vars: c.api.Variables(), n: n, self: HeartbeatPrefix + replicaPath(replica),
		selfHeld: HeldPrefix + replicaPath(replica), clk: clk, every: ttl / 4, deadAfter: ttl, log: log, seen: map[string]*seenVar{}}
	// Grace and the poll bound how long a shard stays unowned: a quarter
	// of the TTL plus two periods. Cooldown a TTL: a shard given away and
	// taken back is not given away again within one.
	s.bal = &balancer{n: n, locks: locks, view: s.hb.view, clk: clk, period: balancePeriod, grace: ttl / 4, cooldown: ttl,
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
	return string(b[:min(len(b), 128-max(len(HeartbeatPrefix), len(HeldPrefix)))])
}

// heartbeats is one replica's side of the heartbeat variables: it keeps its
// own changing and judges the others' by what it has seen of them, and
// learns which shards each holds from its held shards variable (HeldPrefix)
// when that changes. Nomad
// lists every variable's ModifyIndex to any token that may list it, so
// this works without a management token. Liveness is judged on this
// replica's clock alone, so it needs no agreement between the clocks of
// replicas and servers: a heartbeat is live while this replica has seen
// its ModifyIndex change within deadAfter (one seen for the first time
// counts as changed when it was last written, by the servers' stamps: see
// stampAge).
//
// Only the balancer's goroutine uses it, and Run's way out after that.
type heartbeats struct {
	vars      *nomadapi.Variables
	n         int
	self      string
	selfHeld  string
	clk       clock.Clock
	every     time.Duration
	deadAfter time.Duration
	log       *slog.Logger

	// seen holds the other replicas' heartbeats and held shards, and
	// variables left by earlier versions, as last listed.
	seen map[string]*seenVar
	// beat numbers this replica's writes so that each changes the
	// variable: Nomad keeps the index of a write that changes nothing
	// (varSetTxn, nomad/state/state_store_variables.go:231 in v1.10.0),
	// and the others would count this replica dead.
	beat uint64
	// wrote is when the last write that succeeded was sent, wroteShards
	// what it said.
	wrote       time.Time
	wroteShards string
	// wroteHeld is what the last write of selfHeld that succeeded said;
	// heldWritten says selfHeld was written and, at the last list, was
	// still there: another replica removes it with this one's heartbeat
	// when it takes this one for dead (a long pause).
	wroteHeld   string
	heldWritten bool
}

// seenVar is what this replica has seen of another replica's variable.
type seenVar struct {
	index uint64
	// changed is when, on this replica's clock, index was first listed.
	changed time.Time
	// readPath and readAt are the variable (the replica's held shards,
	// or its heartbeat when it has none) and index whose items were read
	// into shards (readAt 0: unread); gone says the read found nothing
	// (deleted since it was listed).
	readPath string
	readAt   uint64
	shards   []int
	gone     bool
	// tried is when a delete was last sent at index: one that failed is
	// sent again only deadAfter later, so a variable Nomad refuses to
	// delete (still locked by a replica of an earlier version) costs one
	// request a TTL, while one that failed on a passing error is not left
	// behind for as long as this replica runs.
	tried time.Time
}

// view writes this replica's heartbeat if due, then lists the nomadscalerd/
// variables once, reads the held shards that changed since they were last
// read, and removes at most one dead variable.
func (h *heartbeats) view(ctx context.Context, held []bool) (shardView, error) {
	if err := h.write(ctx, held); err != nil {
		return shardView{}, err
	}
	vars, _, err := h.vars.PrefixList("nomadscalerd/", (&nomadapi.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return shardView{}, fmt.Errorf("list heartbeats and shard locks: %w", err)
	}
	now := h.clk.Now()
	v := shardView{owned: make([]bool, h.n)}
	listed := make(map[string]bool, len(vars))
	// ownTime is when the servers stamped this replica's last heartbeat
	// write (0: not listed).
	var ownTime int64
	for _, m := range vars {
		if m.Path == h.self {
			ownTime = m.ModifyTime
		}
	}
	heldListed := false
	for _, m := range vars {
		switch {
		case m.Path == h.self:
		case m.Path == h.selfHeld:
			heldListed = true
		case strings.HasPrefix(m.Path, HeartbeatPrefix), strings.HasPrefix(m.Path, HeldPrefix),
			strings.HasPrefix(m.Path, legacyReplicaPrefix):
			listed[m.Path] = true
			sv := h.seen[m.Path]
			switch {
			case sv == nil:
				// Never seen: it changed no later than its last write,
				// which is older than this replica's own by the gap
				// between the servers' stamps. Without it a replica just
				// started (or restarted under a new name) would count a
				// crashed predecessor's heartbeat, and the shards it
				// claims, for a whole TTL from its start.
				h.seen[m.Path] = &seenVar{index: m.ModifyIndex, changed: now.Add(-stampAge(ownTime, m.ModifyTime))}
			case sv.index != m.ModifyIndex:
				// What was read stays: it is read again only if it
				// came from this variable (readAt no longer matches).
				sv.index, sv.changed, sv.tried = m.ModifyIndex, now, time.Time{}
			}
		case strings.HasPrefix(m.Path, ShardLockPrefix):
			// A management token sees the locks themselves: a shard
			// whose holder has not said so yet, or has died with it, is
			// not taken for unowned.
			i, err := strconv.Atoi(strings.TrimPrefix(m.Path, ShardLockPrefix))
			if err == nil && i >= 0 && i < h.n && m.Lock != nil && m.Lock.ID != "" {
				v.owned[i] = true
			}
		}
	}
	// Written again at the next look if another replica removed it.
	h.heldWritten = h.heldWritten && heldListed
	stale := ""
	for p, sv := range h.seen {
		if !listed[p] {
			delete(h.seen, p)
			continue
		}
		dead := now.Sub(sv.changed) >= h.deadAfter
		if name, ok := strings.CutPrefix(p, HeldPrefix); ok {
			// Held shards change rarely: they go with their replica's
			// heartbeat, once that has been removed.
			dead = !listed[HeartbeatPrefix+name]
		}
		if dead {
			if (sv.tried.IsZero() || now.Sub(sv.tried) >= h.deadAfter) && (stale == "" || p < stale) {
				stale = p
			}
			continue
		}
		name, ok := strings.CutPrefix(p, HeartbeatPrefix)
		if !ok {
			continue // held shards, read for their heartbeat; or an earlier version's variable, never counted
		}
		// What a replica holds is read from its held shards, which change
		// only when its shards do, or from its heartbeat when it has none
		// (a replica of an earlier version, or one whose held shards were
		// removed while it was paused).
		src, index := p, sv.index
		if hs := h.seen[HeldPrefix+name]; hs != nil && listed[HeldPrefix+name] {
			src, index = HeldPrefix+name, hs.index
		}
		if sv.readPath != src || sv.readAt != index {
			hv, _, err := h.vars.Read(src, (&nomadapi.QueryOptions{}).WithContext(ctx))
			// Deleted since the list: a replica that stopped cleanly
			// removes its heartbeat and then its held shards, so it is
			// gone, and the look goes on rather than failing (a failed
			// look competes for every shard). Nomad's client reports a
			// 403 as not found too; the documented token may read every
			// nomadscalerd/ variable, and a replica not counted only
			// means more competition for locks, which keep each shard on
			// one replica.
			if errors.Is(err, nomadapi.ErrVariablePathNotFound) {
				hv, err = nil, nil
			}
			if err != nil {
				return shardView{}, fmt.Errorf("read %s: %w", src, err)
			}
			sv.readPath, sv.readAt, sv.gone, sv.shards = src, index, hv == nil, nil
			if hv != nil {
				sv.shards = parseShards(hv.Items[heartbeatShardsItem])
			}
		}
		if sv.gone {
			continue
		}
		v.replicas++
		for _, s := range sv.shards {
			if s < h.n {
				v.owned[s] = true
			}
		}
	}
	if stale != "" {
		h.remove(ctx, stale)
	}
	return v, nil
}

// stampAge is how much older a variable's ModifyTime is than this
// replica's own heartbeat's, both stamped by the Nomad servers (unix
// nanoseconds): how long before this replica's last write it was last
// written, so at most its age now. Zero when either is unknown or the
// variable is the newer. Only the servers' stamps are compared, never the
// replica's clock; servers whose clocks disagree by more than the part of
// the TTL a live heartbeat has left (three quarters at least) could make
// one look dead at first sight: it is then removed only if unchanged,
// and counts again at its next write.
func stampAge(own, other int64) time.Duration {
	if own == 0 || other == 0 || other >= own {
		return 0
	}
	return time.Duration(own - other)
}

// heartbeatShardsItem is the item of a heartbeat, and of held shards, that
// lists the shards its replica holds, as decimal numbers separated by
// commas.
const heartbeatShardsItem = "shards"

// write rewrites this replica's heartbeat every h.every, and at once when
// the shards it holds changed, and its held shards when they changed.
// Plain writes: they create the variables again if another replica
// removed them as dead (after a long pause).
func (h *heartbeats) write(ctx context.Context, held []bool) error {
	var b strings.Builder
	for s, ok := range held {
		if ok {
			if b.Len() > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Itoa(s))
		}
	}
	shards, now := b.String(), h.clk.Now()
	if h.wrote.IsZero() || shards != h.wroteShards || now.Sub(h.wrote) >= h.every {
		h.beat++
		items := nomadapi.VariableItems{heartbeatShardsItem: shards, "beat": strconv.FormatUint(h.beat, 10)}
		if _, _, err := h.vars.Update(&nomadapi.Variable{Path: h.self, Items: items}, (&nomadapi.WriteOptions{}).WithContext(ctx)); err != nil {
			return fmt.Errorf("write heartbeat %s: %w", h.self, err)
		}
		h.wrote, h.wroteShards = now, shards
	}
	// After the heartbeat: a list that shows held shards without their
	// heartbeat is a dead replica's, and they are removed.
	if !h.heldWritten || shards != h.wroteHeld {
		items := nomadapi.VariableItems{heartbeatShardsItem: shards}
		if _, _, err := h.vars.Update(&nomadapi.Variable{Path: h.selfHeld, Items: items}, (&nomadapi.WriteOptions{}).WithContext(ctx)); err != nil {
			return fmt.Errorf("write held shards %s: %w", h.selfHeld, err)
		}
		h.wroteHeld, h.heldWritten = shards, true
	}
	return nil
}

// parseShards reads a heartbeat's shards item; what is not a shard number
// is skipped.
func parseShards(s string) []int {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		if i, err := strconv.Atoi(f); err == nil && i >= 0 {
			out = append(out, i)
		}
	}
	return out
}

// remove deletes a dead replica's variable so the list does not grow with
// every restart, only if it is unchanged since listed: a replica that was
// only paused and wrote again keeps its heartbeat (and recreates it
// anyway if it was gone). Nomad refuses to delete a variable that is
// still locked (a replica of an earlier version's).
func (h *heartbeats) remove(ctx context.Context, path string) {
	sv := h.seen[path]
	sv.tried = h.clk.Now()
	if _, err := h.vars.CheckedDelete(path, sv.index, (&nomadapi.WriteOptions{}).WithContext(ctx)); err != nil {
		h.log.Debug("removing a stopped replica's variable", "path", path, "err", err)
		return
	}
	delete(h.seen, path)
}

// leave removes this replica's heartbeat on a clean stop, so the others
// stop counting it at once instead of after the lock TTL, then its held
// shards. Unchecked: a write cut off by the stop may have reached Nomad
// after all, with an index this replica never learnt, and no one else
// writes these variables.
func (h *heartbeats) leave(ctx context.Context) {
	if h.beat == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	for _, p := range []string{h.self, h.selfHeld} {
		if _, err := h.vars.Delete(p, (&nomadapi.WriteOptions{}).WithContext(ctx)); err != nil {
			h.log.Debug("removing this replica's variable", "path", p, "err", err)
		}
	}
}

// Run competes for shards, heartbeats and rebalances until ctx ends, then
// removes its heartbeat.
func (s *Shards) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, l := range s.leaders {
		wg.Go(func() { _ = l.Run(ctx) })
	}
	wg.Go(func() { s.bal.run(ctx) })
	wg.Wait()
	s.hb.leave(ctx)
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
