package nomad

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/nomadscalerd/nomadscalerd/clock"
)

// LeaderLockPath is the Nomad variable whose lock elects the leader.
const LeaderLockPath = "nomadscalerd/leader"

// Leader runs leader election through a Nomad variable lock. Only the
// holder scales; the others keep recording.
//
// It keeps the lease itself rather than through api.LockLeaser: the leaser
// waits on time.Ticker (so its renewals and polls cannot run on an injected
// clock), renews at 0.7 of the TTL and ends the term on the first renewal
// that fails (after api.Locks' own retries), and does not end a term while
// a renewal request hangs. Here every wait is on clk, a failed renewal
// is retried every second until the lease runs out, and a watchdog on clk
// ends the term when it does, whatever the renewal request is doing.
// Every lock request runs under the context of its caller (ctxLocks).
type Leader struct {
	newLocker func() (nomadapi.Locker, error)
	path      string
	ttl       time.Duration // the lock TTL asked of Nomad: the lease
	clk       clock.Clock
	log       *slog.Logger
	leader    atomic.Bool
	onChange  func(bool)

	// validUntil is when the lock held may have expired on the servers:
	// the TTL counted from when the last successful acquire or renewal was
	// sent. Past it this replica is not the leader, whether or not the
	// renewal loop noticed (a process paused past the TTL must not act on
	// waking).
	mu         sync.Mutex
	validUntil time.Time
	// term is cancelled when the current term ends (endTerm); outside a
	// term it is an already cancelled context.
	term    context.Context
	endTerm context.CancelFunc
	// yield, inside a term, ends it voluntarily (StepDown): the lock is
	// released at once instead of running out.
	yield context.CancelFunc

	// holdOff, when set, keeps this elector from asking for the lock (see
	// SetCompete): a shard this replica gave away is left to the others.
	holdOff atomic.Bool
}

// NewLeader builds an elector whose waits run on clk (clock.Real in the
// daemon). handOver is how long Nomad may keep a dead leader's lock: the
// elector asks Nomad for the lock TTL whose expiry that is (NomadLockTTL),
// so a leader that dies without releasing is replaced within handOver plus
// a follower poll. onChange, if not nil, is called on every change of
// leadership.
func NewLeader(c *Client, handOver time.Duration, clk clock.Clock, onChange func(bool), log *slog.Logger) *Leader {
	return NewLeaderAt(c, LeaderLockPath, handOver, clk, onChange, log)
}

// NewLeaderAt is NewLeader on the lock of another variable path (a shard's).
func NewLeaderAt(c *Client, path string, handOver time.Duration, clk clock.Clock, onChange func(bool), log *slog.Logger) *Leader {
	ttl := NomadLockTTL(handOver)
	// api.Client.Locks reconfigures the client it is called on, so the
	// elector gets a client nothing else uses (NewClient cannot fail for an
	// address that already built one).
	own, err := c.Clone()
	if err != nil {
		own = c
	}
	v := nomadapi.Variable{Path: path, Lock: &nomadapi.VariableLock{TTL: ttl.String(), LockDelay: lockDelay.String()}}
	newLocker := func() (nomadapi.Locker, error) {
		// A fresh Locks a term: a Locks keeps the lock ID of its last
		// acquire and would send it again.
		lk, err := own.api.Locks(nomadapi.WriteOptions{}, v)
		if err != nil {
			return nil, fmt.Errorf("leader lock %s: %w", path, err)
		}
		return &ctxLocks{lk: lk}, nil
	}
	return newLeader(newLocker, path, ttl, clk, onChange, log)
}

// ctxLocks is Nomad's api.Locks with each request sent under the context
// the call is given. api.Locks checks its ctx only between its retries and
// sends every request with the context of the WriteOptions it was built
// with, none here (Locks.Acquire, Renew and Release in locks.go, through
// retryPut in retry.go, in the api version go.mod requires), so an
// acquire or a release to a Nomad that does not answer held its caller, a
// stopping daemon included, for as long as the connection stayed open.
// The request's context lives in the Locks' WriteOptions, so calls are
// serialised (the Leader makes one at a time anyway).
type ctxLocks struct {
	mu sync.Mutex
	lk *nomadapi.Locks
}

var _ nomadapi.Locker = (*ctxLocks)(nil)

// under sends the Locks' next request under ctx; it returns the unlock.
func (c *ctxLocks) under(ctx context.Context) func() {
	c.mu.Lock()
	c.lk.WriteOptions = *c.lk.WriteOptions.WithContext(ctx)
	return c.mu.Unlock
}

// Acquire implements nomadapi.Locker.
func (c *ctxLocks) Acquire(ctx context.Context) (string, error) {
	defer c.under(ctx)()
	return c.lk.Acquire(ctx)
}

// Renew implements nomadapi.Locker.
func (c *ctxLocks) Renew(ctx context.Context) error {
	defer c.under(ctx)()
	return c.lk.Renew(ctx)
}

// Release implements nomadapi.Locker.
func (c *ctxLocks) Release(ctx context.Context) error {
	defer c.under(ctx)()
	return c.lk.Release(ctx)
}

// LockTTL implements nomadapi.Locker.
func (c *ctxLocks) LockTTL() time.Duration { return c.lk.LockTTL() }

// newLeader is the elector on any lock API: Nomad's, or a test's fake.
func newLeader(newLocker func() (nomadapi.Locker, error), path string, ttl time.Duration, clk clock.Clock, onChange func(bool), log *slog.Logger) *Leader {
	if log == nil {
		log = slog.Default()
	}
	if clk == nil {
		clk = clock.Real{}
	}
	return &Leader{newLocker: newLocker, path: path, ttl: lockTTL(ttl), clk: clk, log: log.With("lock", path), onChange: onChange}
}

// lockTTL is ttl within what Nomad accepts.
func lockTTL(ttl time.Duration) time.Duration {
	if ttl <= 0 {
		ttl = nomadapi.DefaultLockTTL
	}
	return max(ttl, minLockTTL)
}

// minLockTTL is the shortest lock TTL Nomad accepts (minVariableLockTTL,
// nomad/structs/variables.go:56 in v1.10.0, checked by
// VariableLock.Validate at :263; shorter ones are refused).
const minLockTTL = 10 * time.Second

// lockDelay is how long Nomad keeps an expired lock before freeing it. A
// zero delay cannot be asked for (VariableLock.Canonicalize,
// nomad/structs/variables.go:247, reads 0 as its 15 s default). It adds
// nothing to safety here: a leader stops acting TTL - leaseMargin after it
// sent its last renewal, and Nomad frees the lock no sooner than TTL after
// it received it (its documented contract), so 1 s is only a small cost.
const lockDelay = time.Second

// MinHandOver is the shortest time Nomad can take to free a dead leader's
// lock: twice its shortest TTL plus the lock delay (see NomadLockTTL).
const MinHandOver = 2*minLockTTL + lockDelay

// NomadLockTTL is the lock TTL to ask Nomad for so that it frees a dead
// leader's lock handOver after the last renewal it received.
//
// Nomad v1.10.0 does not expire a lock at its TTL: the servers' timer runs
// for twice the TTL ("to give a client a grace period",
// CreateVariableLockTTLTimer and RenewTTLTimer, nomad/locks.go:52 and :130),
// and when it fires they wait the lock delay more before removing the lock
// (nomad/locks.go:69). A lock asked for with TTL t is therefore freed
// 2t + lockDelay after the last renewal, so t = (handOver - lockDelay) / 2.
// The leader still treats t as the lease (it stops acting at t -
// leaseMargin and renews every t/2): t is what Nomad promises, the
// doubling is not, and if a later Nomad drops it a dead leader is only
// replaced sooner. Nomad refuses TTLs under 10 s, so a handOver under
// MinHandOver (21 s) is not possible: it is raised to it.
func NomadLockTTL(handOver time.Duration) time.Duration {
	return lockTTL((max(handOver, MinHandOver) - lockDelay) / 2)
}

// Context is the current term's: it is cancelled when the term ends (the
// lease ran out or could not be renewed, or the replica stopped), and
// outside a term it is cancelled already. Work that acts for the leader
// runs under it, so losing the lock stops it in flight (when the lease
// runs out) instead of letting it finish beside a new leader.
func (l *Leader) Context() context.Context {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.term == nil {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		return ctx
	}
	return l.term
}

// leaseMargin is how long before the lock's TTL runs out a leader stops
// acting: the servers' clock starts the TTL after the request was sent.
const leaseMargin = time.Second

// IsLeader reports whether this replica holds the lock and its lease has
// not run out.
func (l *Leader) IsLeader() bool {
	if !l.leader.Load() {
		return false
	}
	return l.clk.Now().Before(l.leaseEnd())
}

// leaseEnd is when this replica stops acting unless a renewal sent before
// then succeeds.
func (l *Leader) leaseEnd() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.validUntil.Add(-leaseMargin)
}

// extend records a successful acquire or renewal sent at sent.
func (l *Leader) extend(sent time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.validUntil = sent.Add(l.ttl)
}

func (l *Leader) set(v bool) {
	l.mu.Lock()
	switch {
	case v && (l.term == nil || l.term.Err() != nil):
		l.term, l.endTerm = context.WithCancel(context.Background())
	case !v && l.endTerm != nil:
		l.endTerm()
	}
	l.mu.Unlock()
	if l.leader.Swap(v) != v {
		l.log.Info("leadership changed", "leader", v)
		if l.onChange != nil {
			l.onChange(v)
		}
	}
}

// followerPoll is how often a follower asks for the lock: a dead leader's
// lock is taken within a second of Nomad releasing it, for one cheap
// request a second (the leaser's default is 1.1 x the TTL).
const followerPoll = time.Second

// renewRetry is how soon a failed renewal is sent again; retries continue
// until the lease runs out.
const renewRetry = time.Second

// releaseTimeout bounds the release sent on the way out, which cannot run
// under the run's context (ended by then): a clean shutdown hands over at
// once when Nomad answers within it, and otherwise stops anyway, leaving
// the lock to expire on the servers (what a crash costs).
const releaseTimeout = 3 * time.Second

// errLeaseExpired ends a term whose lease was not renewed in time.
var errLeaseExpired = errors.New("leader lease expired before it was renewed")

// SetCompete says whether this elector asks for the lock (the default);
// one that does not keeps a lock it holds until StepDown.
func (l *Leader) SetCompete(v bool) { l.holdOff.Store(!v) }

// StepDown ends the current term, if any, and releases the lock so another
// replica can take it at once; with SetCompete(false) first, this replica
// does not take it back.
func (l *Leader) StepDown() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.yield != nil {
		l.yield()
	}
}

// Run competes for the lock until ctx ends, releasing it on the way out so a
// follower takes over without waiting for the servers to expire it. No
// leadership change happens after Run has returned.
func (l *Leader) Run(ctx context.Context) error {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval, b.MaxElapsedTime = 500*time.Millisecond, 10*time.Second, 0
	var locker nomadapi.Locker
	for ctx.Err() == nil {
		wait := followerPoll
		err := func() error {
			if l.holdOff.Load() {
				// Not competing: ask Nomad for nothing, look again in a
				// second.
				return nil
			}
			if locker == nil {
				lk, err := l.newLocker()
				if err != nil {
					return err
				}
				locker = lk
			}
			sent := l.clk.Now()
			id, err := locker.Acquire(ctx)
			switch {
			case err == nil && id != "":
				termErr := l.lead(ctx, locker, sent)
				locker = nil
				return termErr
			case err == nil || errors.Is(err, nomadapi.ErrLockConflict):
				return nil // another replica leads: ask again in a second
			default:
				return fmt.Errorf("acquire leader lock: %w", err)
			}
		}()
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			if errors.Is(err, errLeaseExpired) || errors.Is(err, nomadapi.ErrLockConflict) {
				l.log.Warn("leader term ended; following", "err", err)
			} else {
				wait = b.NextBackOff()
				l.log.Warn("leader election interrupted; retrying", "err", err, "retry_in", wait)
			}
		} else {
			b.Reset()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-l.clk.After(wait):
		}
	}
	return nil
}

// lead holds a term that began with an acquire sent at sent: it renews the
// lock every half TTL until ctx ends, the lock is lost, or the lease runs
// out, then steps down and releases the lock.
func (l *Leader) lead(ctx context.Context, locker nomadapi.Locker, sent time.Time) error {
	l.extend(sent)
	termCtx, endTerm := context.WithCancel(ctx)
	// StepDown ends the term the same way ctx does: renew returns, the
	// lock is released. It is armed before the replica reports leader, or
	// a StepDown called as soon as it does would find nothing to end.
	l.mu.Lock()
	l.yield = endTerm
	l.mu.Unlock()
	l.set(true)
	defer func() {
		l.mu.Lock()
		l.yield = nil
		l.mu.Unlock()
	}()
	var expired atomic.Bool
	var wg sync.WaitGroup
	// The watchdog steps down when the lease runs out without a renewal,
	// even while a renewal request hangs.
	wg.Go(func() {
		for {
			end, now := l.leaseEnd(), l.clk.Now()
			if !now.Before(end) {
				expired.Store(true)
				l.log.Warn("leader lease ran out without a renewal; stepping down")
				l.set(false)
				endTerm()
				return
			}
			select {
			case <-termCtx.Done():
				return
			case <-l.clk.After(end.Sub(now)):
			}
		}
	})
	err := l.renew(termCtx, locker)
	endTerm()
	wg.Wait()
	l.set(false)
	if !errors.Is(err, nomadapi.ErrLockConflict) {
		// Ours or already expired on the servers: releasing lets a
		// follower in now rather than after the servers' expiry.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
		if rerr := locker.Release(rctx); rerr != nil && !errors.Is(rerr, nomadapi.ErrLockConflict) {
			l.log.Warn("leader lock not released; followers wait for the servers to expire it", "err", rerr)
		}
		cancel()
	}
	if expired.Load() {
		return errLeaseExpired
	}
	return err
}

// renew renews the lock every half TTL (a failed renewal again every
// renewRetry) until ctx ends, returning nil then, or until the servers say
// the lock is not ours. Half the TTL leaves a leader room for several
// retries before its lease runs out at TTL - leaseMargin.
func (l *Leader) renew(ctx context.Context, locker nomadapi.Locker) error {
	wait := l.ttl / 2
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-l.clk.After(wait):
		}
		sent := l.clk.Now()
		if !sent.Before(l.leaseEnd()) {
			// Too late: the watchdog ends the term at this instant, and
			// a renewal now would only race it.
			<-ctx.Done()
			return nil
		}
		// Under the term's context: a term that ends (the watchdog, a
		// stop) cuts the request off.
		err := locker.Renew(ctx)
		if ctx.Err() != nil {
			return nil
		}
		switch {
		case err == nil:
			// A renewal that returns after the lease ran out extends
			// nothing: the watchdog has ended the term (and cancelled
			// ctx), and IsLeader reads the leader flag first.
			l.extend(sent)
			// The next one is due half a TTL after this one was sent,
			// as the lease counts from then: counted from a late answer
			// (api.Locks retries a 5xx for seconds) it would leave the
			// next renewal under a second before the lease runs out.
			wait = max(sent.Add(l.ttl/2).Sub(l.clk.Now()), 0)
		case errors.Is(err, nomadapi.ErrLockConflict):
			return fmt.Errorf("renew leader lock: %w", err)
		default:
			l.log.Warn("leader lock renewal failed; retrying until the lease runs out", "err", err, "lease_end", l.leaseEnd())
			wait = renewRetry
		}
	}
}

// AlwaysLeader is the single-replica mode without --ha.
type AlwaysLeader struct{}

// IsLeader implements reconciler.Leadership.
func (AlwaysLeader) IsLeader() bool { return true }

// Context implements reconciler.Lease: a single replica's term never ends.
func (AlwaysLeader) Context() context.Context { return context.Background() }
