package nodepool

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nomadscalerd/nomadscalerd/clock"
)

// countingLeader is a leadership the test flips, counting how often it is
// asked.
type countingLeader struct {
	leader atomic.Bool
	asked  atomic.Int64
}

func (l *countingLeader) IsLeader() bool { l.asked.Add(1); return l.leader.Load() }

// A pool waits to retry a failed blocked scale-out and leadership is lost:
// the retry falls due while a follower cannot act on it, so it waits
// another backoff instead of falling due at once again and again (a busy
// loop until leadership returns). Counts leadership checks while the fake
// clock stands still.
func TestARetryThatFallsDueWhileAFollowerWaitsAnotherBackoff(t *testing.T) {
	r, ctl, src, clk := newRunnerHarness(t, true, RunnerConfig{RetryInitial: 5 * time.Second, RetryMax: time.Minute})
	l := &countingLeader{}
	l.leader.Store(true)
	r.leader = l
	failOneBlockedScaleOut(t, r, ctl, src, clk)
	l.leader.Store(false) // the lease is lost while the retry waits
	clk.Advance(10 * time.Second)
	time.Sleep(20 * time.Millisecond)
	before := l.asked.Load()
	time.Sleep(100 * time.Millisecond) // the fake clock does not move
	if n := l.asked.Load() - before; n > 10 {
		t.Fatalf("runner asked IsLeader %d times in 100 ms with a frozen clock: it spins on a past-due retry", n)
	}
}

// The same when the job a retry waits for can no longer be read (purged,
// or Nomad unreachable): the retry waits another backoff, rather than
// re-reading the job and logging a warning in a loop.
func TestARetryWhoseJobCannotBeReadWaitsAnotherBackoff(t *testing.T) {
	r, ctl, src, clk := newRunnerHarness(t, true, RunnerConfig{RetryInitial: 5 * time.Second, RetryMax: time.Minute})
	var lines atomic.Int64
	r.log = slog.New(slog.NewTextHandler(countingWriter{&lines}, nil))
	failOneBlockedScaleOut(t, r, ctl, src, clk)
	src.mu.Lock()
	delete(src.jobs, "web") // purged
	src.mu.Unlock()
	clk.Advance(10 * time.Second)
	time.Sleep(20 * time.Millisecond)
	before := lines.Load()
	time.Sleep(100 * time.Millisecond)
	if n := lines.Load() - before; n > 10 {
		t.Fatalf("%d log lines in 100 ms with a frozen clock: the runner spins re-reading an unreadable job", n)
	}
}

type countingWriter struct{ n *atomic.Int64 }

func (w countingWriter) Write(p []byte) (int, error) { w.n.Add(1); return io.Discard.Write(p) }

// failOneBlockedScaleOut starts r and lets its first scale-out for a
// blocked evaluation fail, so a retry waits on its backoff.
func failOneBlockedScaleOut(t *testing.T, r *Runner, ctl *fakePoolCtl, src *fakeBlockedSource, clk *clock.Fake) {
	t.Helper()
	ctl.failures = 1
	src.setQueued("web", "api", 2)
	start(t, r)
	advanceUntil(t, clk, time.Millisecond, 0, func() bool { return ctl.reconciles.Load() == 1 })
	r.OnBlockedEvaluation(context.Background(), blockedEval("e1", "web", "api", 2))
	advanceUntil(t, clk, 250*time.Millisecond, time.Minute, func() bool { return len(ctl.calls()) == 1 })
}
