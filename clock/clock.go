// Package clock owns the time source that loops wait on, so behaviour over
// time (intervals, batching windows, backoff) is tested by advancing a fake
// clock instead of sleeping.
package clock

import (
	"sort"
	"sync"
	"time"
)

// Clock is what a loop needs of time.
type Clock interface {
	Now() time.Time
	// After fires once, d from now.
	After(d time.Duration) <-chan time.Time
}

// Real is the wall clock.
type Real struct{}

var _ Clock = Real{}

// Now implements Clock.
func (Real) Now() time.Time { return time.Now() }

// After implements Clock.
func (Real) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Fake is a clock that moves only when told to. Its timers fire, in order of
// their deadlines, when Advance passes them.
type Fake struct {
	mu      sync.Mutex
	now     time.Time
	waiters []waiter
	// added is signalled whenever a timer is set, so a test can wait for
	// the code under test to block on the clock before advancing it.
	added chan struct{}
}

type waiter struct {
	at time.Time
	ch chan time.Time
}

var _ Clock = (*Fake)(nil)

// NewFake returns a fake clock reading start.
func NewFake(start time.Time) *Fake {
	return &Fake{now: start, added: make(chan struct{}, 1024)}
}

// Now implements Clock.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// After implements Clock. A non-positive d fires at once.
func (f *Fake) After(d time.Duration) <-chan time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- f.now
		return ch
	}
	f.waiters = append(f.waiters, waiter{at: f.now.Add(d), ch: ch})
	select {
	case f.added <- struct{}{}:
	default:
	}
	return ch
}

// Advance moves the clock forward by d and fires every timer due by then.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
	sort.SliceStable(f.waiters, func(i, j int) bool { return f.waiters[i].at.Before(f.waiters[j].at) })
	keep := f.waiters[:0]
	for _, w := range f.waiters {
		if !w.at.After(f.now) {
			w.ch <- w.at
			continue
		}
		keep = append(keep, w)
	}
	f.waiters = keep
}

// Waiters is how many timers are set and not yet fired.
func (f *Fake) Waiters() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.waiters)
}

// BlockUntil waits until at least n timers are set (the code under test is
// waiting on the clock), or until timeout of real time passes; it reports
// whether they were.
func (f *Fake) BlockUntil(n int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		if f.Waiters() >= n {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-f.added:
		case <-time.After(5 * time.Millisecond):
		}
	}
}
