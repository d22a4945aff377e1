package nomad

import (
	"context"
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
	ttl      time.Duration
	log      *slog.Logger
	leader   atomic.Bool
	onChange func(bool)
}

// NewLeader builds an elector with lock TTL ttl (Nomad's default is 15s,
// its minimum 10s): a leader that dies without releasing is replaced after
// about ttl + 1s;
// onChange, if not nil, is called on every change of leadership.
func NewLeader(c *Client, ttl time.Duration, onChange func(bool), log *slog.Logger) *Leader {
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
	return &Leader{client: own.api, ttl: ttl, log: log, onChange: onChange}
}

// IsLeader reports whether this replica holds the lock.
func (l *Leader) IsLeader() bool { return l.leader.Load() }

func (l *Leader) set(v bool) {
	if l.leader.Swap(v) != v {
		l.log.Info("leadership changed", "leader", v)
		if l.onChange != nil {
			l.onChange(v)
		}
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
	v := nomadapi.Variable{Path: LeaderLockPath, Lock: &nomadapi.VariableLock{TTL: l.ttl.String(), LockDelay: "1s"}}
	locker, err := l.client.Locks(nomadapi.WriteOptions{}, v)
	if err != nil {
		return fmt.Errorf("leader lock: %w", err)
	}
	leaser := l.client.NewLockLeaser(locker, nomadapi.LockLeaserOptionWithWaitPeriod(l.ttl/3))
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
		l.set(true)
		select {
		case <-ctx.Done():
		case <-fctx.Done():
		}
		l.set(false)
		return nil
	})
	cancel()
	mu.Lock()
	stopped = true
	mu.Unlock()
	running.Wait()
	return err
}

// AlwaysLeader is the single-replica mode without --ha.
type AlwaysLeader struct{}

// IsLeader implements reconciler.Leadership.
func (AlwaysLeader) IsLeader() bool { return true }
