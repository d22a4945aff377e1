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
)

// LeaderLockPath is the Nomad variable whose lock elects the leader.
const LeaderLockPath = "nomadscalerd/leader"

// Leader runs leader election through a Nomad variable lock
// (api.NewLockLeaser). Only the holder scales; the others keep recording.
type Leader struct {
	client   *nomadapi.Client
	path     string
	ttl      time.Duration
	log      *slog.Logger
	leader   atomic.Bool
	onChange func(bool)
	now      func() time.Time

	// validUntil is when the lock held may have expired on the servers:
	// the TTL counted from when the last successful acquire or renewal was
	// sent. Past it this replica is not the leader, whether or not the
	// leaser noticed (a process paused past the TTL must not act on
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

// NewLeader builds an elector with lock TTL ttl (Nomad's default is 15s,
// its minimum 10s): a leader that dies without releasing is replaced after
// about ttl + 1s;
// onChange, if not nil, is called on every change of leadership.
func NewLeader(c *Client, ttl time.Duration, onChange func(bool), log *slog.Logger) *Leader {
	return NewLeaderAt(c, LeaderLockPath, ttl, onChange, log)
}

// NewLeaderAt is NewLeader on the lock of another variable path (a shard's).
func NewLeaderAt(c *Client, path string, ttl time.Duration, onChange func(bool), log *slog.Logger) *Leader {
	if log == nil {
		log = slog.Default()
	}
	if ttl <= 0 {
		ttl = nomadapi.DefaultLockTTL
	}
	ttl = max(ttl, 10*time.Second) // Nomad refuses shorter lock TTLs
	// api.Client.Locks reconfigures the client it is called on, so the
	// elector gets a client nothing else uses (NewClient cannot fail for an
	// address that already built one).
	own, err := c.Clone()
	if err != nil {
		own = c
	}
	return &Leader{client: own.api, path: path, ttl: ttl, log: log.With("lock", path), onChange: onChange, now: time.Now}
}

// Context is the current term's: it is cancelled when the term ends (the
// lease ran out or could not be renewed, or the replica stopped), and
// outside a term it is cancelled already. Work that acts for the leader
// runs under it, so losing the lock stops it in flight (within a second of
// the lease running out) instead of letting it finish beside a new leader.
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
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.now().Before(l.validUntil.Add(-leaseMargin))
}

// fencedLocker records when each successful acquire or renewal was sent.
type fencedLocker struct {
	nomadapi.Locker
	l *Leader
}

func (f fencedLocker) Acquire(ctx context.Context) (string, error) {
	// Not competing: report the lock as not acquired without asking Nomad;
	// the leaser asks again after its wait period.
	if f.l.holdOff.Load() {
		return "", nil
	}
	sent := f.l.now()
	id, err := f.Locker.Acquire(ctx)
	if err == nil && id != "" {
		f.l.extend(sent)
	}
	return id, err
}

func (f fencedLocker) Renew(ctx context.Context) error {
	sent := f.l.now()
	err := f.Locker.Renew(ctx)
	if err == nil {
		f.l.extend(sent)
	}
	return err
}

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
// follower takes over without waiting for the TTL.
func (l *Leader) Run(ctx context.Context) error {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval, b.MaxElapsedTime = 500*time.Millisecond, 10*time.Second, 0
	for ctx.Err() == nil {
		err := l.runOnce(ctx)
		l.set(false)
		if ctx.Err() != nil {
			return nil
		}
		if err == nil {
			// A StepDown: the lock was released on purpose; compete again
			// (or hold off, as SetCompete says) without a backoff.
			b.Reset()
			continue
		}
		wait := b.NextBackOff()
		l.log.Warn("leader election interrupted; retrying", "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
	return nil
}

func (l *Leader) runOnce(ctx context.Context) error {
	v := nomadapi.Variable{Path: l.path, Lock: &nomadapi.VariableLock{TTL: l.ttl.String(), LockDelay: "1s"}}
	locker, err := l.client.Locks(nomadapi.WriteOptions{}, v)
	if err != nil {
		return fmt.Errorf("leader lock: %w", err)
	}
	// A follower asks for the lock every second (the leaser's default is a
	// third of the TTL): a dead leader's lock is taken up to 4 s sooner,
	// for one cheap request a second.
	leaser := l.client.NewLockLeaser(fencedLocker{Locker: locker, l: l}, nomadapi.LockLeaserOptionWithWaitPeriod(followerPoll))
	// The leaser releases the lock with the context it was started with, so
	// it gets one that outlives ctx by a few seconds: a clean shutdown hands
	// over at once instead of after the TTL.
	leaseCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(3*time.Second, cancel) })
	defer stop()
	// The leaser does not wait for the protected function when it stops;
	// this does, so no leadership change happens after Run has returned.
	var (
		mu      sync.Mutex
		stopped bool
		running sync.WaitGroup
	)
	err = leaser.Start(leaseCtx, func(fctx context.Context) error {
		mu.Lock()
		if stopped {
			mu.Unlock()
			return nil
		}
		running.Add(1)
		mu.Unlock()
		defer running.Done()
		yctx, yield := context.WithCancel(fctx)
		defer yield()
		l.mu.Lock()
		l.yield = yield
		l.mu.Unlock()
		defer func() {
			l.mu.Lock()
			l.yield = nil
			l.mu.Unlock()
		}()
		l.set(true)
		// Step down when the lease runs out without a renewal, even if the
		// leaser is still retrying it: then try again from scratch.
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for l.IsLeader() {
			select {
			case <-ctx.Done():
				l.set(false)
				return nil
			case <-yctx.Done():
				// The leaser's own end or a StepDown: returning nil makes
				// the leaser release the lock.
				l.set(false)
				return nil
			case <-tick.C:
			}
		}
		l.log.Warn("leader lease ran out without a renewal; stepping down")
		l.set(false)
		return errLeaseExpired
	})
	cancel()
	mu.Lock()
	stopped = true
	mu.Unlock()
	running.Wait()
	return err
}

// followerPoll is how often a follower tries to take the lock.
const followerPoll = time.Second

// errLeaseExpired ends a term whose lease was not renewed in time.
var errLeaseExpired = errors.New("leader lease expired before it was renewed")

// AlwaysLeader is the single-replica mode without --ha.
type AlwaysLeader struct{}

// IsLeader implements reconciler.Leadership.
func (AlwaysLeader) IsLeader() bool { return true }

// Context implements reconciler.Lease: a single replica's term never ends.
func (AlwaysLeader) Context() context.Context { return context.Background() }
