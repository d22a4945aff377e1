package reconciler

import (
	"container/heap"
	"context"
	"sync"
	"time"

	"github.com/nomadscalerd/nomadscalerd/clock"
)

// Clock is the time the worker pool schedules by (package clock's); tests
// inject clock.Fake so wake-ups are deterministic.
type Clock = clock.Clock

// DefaultWorkers is the worker pool's default size: reconciles mostly wait
// on bbolt and on Nomad's scale API, so a few more workers than cores keep
// the CPU busy without letting a thousand policies open a thousand
// connections at once.
const DefaultWorkers = 16

// runFunc reconciles one key and says when to run it again; triggeredAt is
// the arrival of the earliest event coalesced into this run (zero for a
// timed run).
type runFunc func(ctx context.Context, key string, triggeredAt time.Time) time.Duration

// pool runs keyed work on a fixed number of goroutines. Each key behaves
// like the goroutine per policy it replaces: it runs at its own wake time
// (what its last run returned), triggers coalesce into one pending run, and
// a key never runs on two workers at once.
type pool struct {
	clock     Clock
	size      int
	run       runFunc
	onRemoved func(key string)

	work chan string
	// urgentWork feeds the reserve workers, which take triggered keys only:
	// an event's reconcile starts at once even while every other worker is
	// busy with timed runs (model fits can take a while).
	urgentWork chan string
	wake       chan struct{}

	mu    sync.Mutex
	items map[string]*item
	due   timerHeap
	// urgent holds triggered keys and goes first: an event's reconcile
	// does not wait behind every timed one that came due before it.
	urgent []string
	queue  []string
	gen    uint64
}

type item struct {
	key string
	// gen identifies the item's current heap entry; older entries (from
	// before a trigger, or of an earlier item with the same key) are
	// skipped when they come due.
	gen    uint64
	queued bool
	// inUrgent is set while the item has an entry in the urgent queue.
	inUrgent bool
	running  bool
	removed  bool
	// triggered is the earliest trigger not yet served; a trigger during a
	// run is served right after it.
	triggered time.Time
	cancel    context.CancelFunc
	done      chan struct{}
}

func newPool(size int, clk Clock, run runFunc, onRemoved func(string)) *pool {
	if size <= 0 {
		size = DefaultWorkers
	}
	if clk == nil {
		clk = clock.Real{}
	}
	return &pool{clock: clk, size: size, run: run, onRemoved: onRemoved,
		work: make(chan string), urgentWork: make(chan string), wake: make(chan struct{}, 1), items: map[string]*item{}}
}

// poke wakes the dispatcher; one pending wake is enough.
func (p *pool) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Add schedules key to run at once, or cancels a pending removal of a key
// whose last run is still going or which is being forgotten.
func (p *pool) Add(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if it, ok := p.items[key]; ok {
		if it.removed {
			// Only a running item (or one being forgotten) stays removed:
			// its run was cancelled and read the policy from before, so it
			// runs again when that run, or the forgetting, ends.
			it.removed = false
			if it.triggered.IsZero() {
				it.triggered = p.clock.Now()
			}
			p.enqueueLocked(it, false)
		}
		return
	}
	it := &item{key: key, done: make(chan struct{})}
	p.items[key] = it
	p.enqueueLocked(it, false)
}

// Remove stops scheduling key and cancels its run in flight; the returned
// channel closes once no run of key is left, after onRemoved (never if key
// is added again before then).
func (p *pool) Remove(key string) <-chan struct{} {
	p.mu.Lock()
	it, ok := p.items[key]
	if !ok {
		p.mu.Unlock()
		c := make(chan struct{})
		close(c)
		return c
	}
	it.removed = true
	if it.running {
		if it.cancel != nil {
			it.cancel()
		}
		p.mu.Unlock()
		return it.done
	}
	gone := p.forgetLocked(it)
	p.mu.Unlock()
	if gone {
		close(it.done)
	}
	return it.done
}

// forgetLocked calls onRemoved for it (removed, no run in flight) and
// drops it unless it was added again meanwhile; p.mu is held on entry and
// on return, not during onRemoved. The item stays in items, marked
// running, until onRemoved returns: an Add meanwhile finds it and its run
// waits, so the reconciler never forgets a key while a run of it is in
// flight, which would drop part of what the re-added policy's first run
// builds (its decider, its count last seen) and keep the rest.
func (p *pool) forgetLocked(it *item) (gone bool) {
	if p.onRemoved != nil {
		it.running = true
		p.mu.Unlock()
		p.onRemoved(it.key)
		p.mu.Lock()
		it.running = false
	}
	if it.removed {
		delete(p.items, it.key)
		return true
	}
	// Added again: Add left a trigger, served at once. Its queued marks
	// are from before the removal (a worker that took its entry meanwhile
	// skipped it), and a new gen skips its old wake-up.
	it.queued, it.inUrgent = false, false
	p.gen++
	it.gen = p.gen
	p.enqueueLocked(it, true)
	return false
}

// Trigger asks for a run of key as soon as a worker is free; triggers that
// arrive before it starts are served by that one run.
func (p *pool) Trigger(key string, at time.Time) {
	p.mu.Lock()
	it, ok := p.items[key]
	if !ok || it.removed {
		p.mu.Unlock()
		return
	}
	if it.triggered.IsZero() || at.Before(it.triggered) {
		it.triggered = at
	}
	p.enqueueLocked(it, true)
	p.mu.Unlock()
}

// enqueueLocked puts it on a ready queue unless it is already there or
// running (a running item re-queues itself when done if triggered). An
// urgent enqueue of an item waiting in the timed queue moves it ahead; the
// entry left behind is skipped when it comes up.
func (p *pool) enqueueLocked(it *item, urgent bool) {
	if it.running {
		return
	}
	switch {
	case urgent && !it.inUrgent:
		it.queued, it.inUrgent = true, true
		p.urgent = append(p.urgent, it.key)
	case it.queued:
		return
	default:
		it.queued = true
		p.queue = append(p.queue, it.key)
	}
	p.poke()
}

// Len is the number of keys scheduled.
func (p *pool) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, it := range p.items {
		if !it.removed {
			n++
		}
	}
	return n
}

// reserve is how many extra workers serve triggered keys only.
func (p *pool) reserve() int { return max(1, p.size/8) }

// Run dispatches until ctx ends, then waits for every run in flight.
func (p *pool) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for range p.size {
		wg.Go(func() { p.worker(ctx, p.work) })
	}
	for range p.reserve() {
		wg.Go(func() { p.worker(ctx, p.urgentWork) })
	}
	p.dispatch(ctx)
	wg.Wait()
}

func (p *pool) dispatch(ctx context.Context) {
	for {
		p.mu.Lock()
		now := p.clock.Now()
		for len(p.due) > 0 && !p.due[0].at.After(now) {
			e := heap.Pop(&p.due).(timerEntry)
			if it, ok := p.items[e.key]; ok && it.gen == e.gen && !it.removed {
				p.enqueueLocked(it, false)
			}
		}
		var timer <-chan time.Time
		if len(p.due) > 0 {
			timer = p.clock.After(p.due[0].at.Sub(now))
		}
		var out, outUrgent chan string
		var head string
		fromUrgent := len(p.urgent) > 0
		switch {
		case fromUrgent:
			out, outUrgent, head = p.work, p.urgentWork, p.urgent[0]
		case len(p.queue) > 0:
			out, head = p.work, p.queue[0]
		}
		p.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-p.wake:
		case <-timer:
		case out <- head:
			p.pop(fromUrgent)
		case outUrgent <- head:
			p.pop(true)
		}
	}
}

// pop drops the head of the queue just handed out.
func (p *pool) pop(urgent bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if urgent {
		p.urgent = p.urgent[1:]
	} else {
		p.queue = p.queue[1:]
	}
}

func (p *pool) worker(ctx context.Context, work <-chan string) {
	for {
		var key string
		select {
		case <-ctx.Done():
			return
		case key = <-work:
		}
		p.mu.Lock()
		it, ok := p.items[key]
		// A queue entry of an item since removed, or a second entry left by
		// a remove and re-add, is skipped: the item runs once per queueing.
		if !ok || it.removed || !it.queued || it.running {
			p.mu.Unlock()
			continue
		}
		it.queued, it.inUrgent, it.running = false, false, true
		at := it.triggered
		it.triggered = time.Time{}
		rctx, cancel := context.WithCancel(ctx)
		it.cancel = cancel
		p.mu.Unlock()

		after := p.run(rctx, key, at)
		cancel()

		p.mu.Lock()
		it.running, it.cancel = false, nil
		// Forgotten only now that its run has returned: a run cut off by
		// the removal still writes its decision, metrics and plan, which
		// onRemoved must come after to drop.
		gone := false
		if it.removed {
			gone = p.forgetLocked(it)
		} else {
			p.gen++
			it.gen = p.gen
			if !it.triggered.IsZero() {
				p.enqueueLocked(it, true)
			} else {
				heap.Push(&p.due, timerEntry{at: p.clock.Now().Add(after), key: key, gen: it.gen})
			}
		}
		p.mu.Unlock()
		if gone {
			close(it.done)
		}
		p.poke()
	}
}

type timerEntry struct {
	at  time.Time
	key string
	gen uint64
}

// timerHeap orders wake-ups, earliest first.
type timerHeap []timerEntry

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h timerHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)        { *h = append(*h, x.(timerEntry)) }
func (h *timerHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}
