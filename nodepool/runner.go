package nodepool

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/nomadscalerd/nomadscalerd/clock"
)

// PoolController is what the runner asks of a pool's controller.
type PoolController interface {
	Plan(ctx context.Context, p Pool) (Decision, error)
	Reconcile(ctx context.Context, p Pool) (Decision, error)
	OnBlocked(ctx context.Context, p Pool, queued []QueuedGroup) (Decision, error)
}

var _ PoolController = (*Controller)(nil)

// BlockedSource is the Nomad state queued allocations are read from: the
// blocked evaluations, and per job its definition (resources, node pool)
// and summary (allocations still queued).
type BlockedSource interface {
	BlockedEvaluations(ctx context.Context) ([]*nomadapi.Evaluation, error)
	JobState(ctx context.Context, namespace, id string) (*nomadapi.Job, *nomadapi.JobSummary, error)
}

// Leadership gates acting: only the leader changes the pools. A
// leadership that also has a Context (the lease's term) ends pool work in
// flight when the lock is lost.
type Leadership interface{ IsLeader() bool }

// underLease is ctx, also ended when the leader's term ends.
func underLease(ctx context.Context, l Leadership) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	lease, ok := l.(interface{ Context() context.Context })
	if !ok {
		return ctx, cancel
	}
	stop := context.AfterFunc(lease.Context(), cancel)
	return ctx, func() { stop(); cancel() }
}

// RunnerConfig shapes a Runner.
type RunnerConfig struct {
	Pools []Pool
	// Interval is how often every pool is reconciled and Nomad's blocked
	// evaluations are listed (level-triggered: an evaluation the event
	// stream missed, or whose scale-out failed, is found again).
	Interval time.Duration
	// BatchIdle and BatchMax bound how blocked evaluations from the event
	// stream are gathered before one decision per pool: the batch closes
	// BatchIdle after its latest evaluation, and BatchMax after its first
	// (defaults 1 s and 10 s). A job scaled by 50 produces a burst of
	// evaluations that should buy nodes once, not 50 times.
	BatchIdle, BatchMax time.Duration
	// QueueSize is how many evaluations may wait for the runner (default
	// 1024); beyond that the event stream's are dropped and the next
	// interval's listing finds them.
	QueueSize int
	// RetryInitial and RetryMax bound the backoff after a failed blocked
	// scale-out (defaults 5 s and 2 min).
	RetryInitial, RetryMax time.Duration
}

// Runner runs the node pools: every pool reconciled on an interval, and
// queued allocations (from the event stream at once, and from Nomad's own
// state on every interval) packed onto new nodes, on the runner's own
// goroutine so the event watcher never waits for a solver or a provider.
type Runner struct {
	ctl    PoolController
	src    BlockedSource
	leader Leadership
	clock  clock.Clock
	cfg    RunnerConfig
	log    *slog.Logger
	queue  chan *nomadapi.Evaluation

	mu    sync.Mutex
	last  map[string]Decision
	retry map[string]*poolRetry
}

// poolRetry is a pool whose blocked scale-out failed: the evaluations it
// was for, and when to try again.
type poolRetry struct {
	evals   map[string]*nomadapi.Evaluation
	due     time.Time
	backoff *backoff.ExponentialBackOff
}

// NewRunner builds a runner; nothing happens until Run.
func NewRunner(ctl PoolController, src BlockedSource, leader Leadership, clk clock.Clock, cfg RunnerConfig, log *slog.Logger) *Runner {
	if cfg.Interval <= 0 {
		cfg.Interval = time.Minute
	}
	if cfg.BatchIdle <= 0 {
		cfg.BatchIdle = time.Second
	}
	if cfg.BatchMax <= 0 {
		cfg.BatchMax = 10 * time.Second
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 1024
	}
	if cfg.RetryInitial <= 0 {
		cfg.RetryInitial = 5 * time.Second
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = 2 * time.Minute
	}
	return &Runner{ctl: ctl, src: src, leader: leader, clock: clk, cfg: cfg, log: log.With("component", "nodepools"),
		queue: make(chan *nomadapi.Evaluation, cfg.QueueSize), last: map[string]Decision{}, retry: map[string]*poolRetry{}}
}

// OnBlockedEvaluation hands an evaluation from the event stream to the
// runner. It never blocks the watcher: with the queue full the evaluation
// is dropped, and the next interval's listing of blocked evaluations finds
// it.
func (r *Runner) OnBlockedEvaluation(_ context.Context, ev *nomadapi.Evaluation) {
	if ev == nil {
		return
	}
	select {
	case r.queue <- ev:
	default:
		r.log.Debug("blocked evaluation queue full; the next interval lists it", "eval", ev.ID)
	}
}

// Run works until ctx ends.
func (r *Runner) Run(ctx context.Context) error {
	tick := r.clock.After(0)
	for {
		var retry <-chan time.Time
		if due, ok := r.nextRetry(); ok {
			retry = r.clock.After(due.Sub(r.clock.Now()))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick:
			r.interval(ctx)
			tick = r.clock.After(r.cfg.Interval)
		case ev := <-r.queue:
			r.blocked(ctx, r.collect(ctx, ev), false)
		case <-retry:
			r.retryDue(ctx)
		}
	}
}

// collect gathers evaluations arriving close together into one batch.
func (r *Runner) collect(ctx context.Context, first *nomadapi.Evaluation) []*nomadapi.Evaluation {
	batch := []*nomadapi.Evaluation{first}
	max := r.clock.After(r.cfg.BatchMax)
	for {
		idle := r.clock.After(r.cfg.BatchIdle)
		select {
		case ev := <-r.queue:
			batch = append(batch, ev)
		case <-idle:
			return batch
		case <-max:
			return batch
		case <-ctx.Done():
			return batch
		}
	}
}

// interval is the level-triggered pass: Nomad's blocked evaluations, then
// every pool's reconcile.
func (r *Runner) interval(ctx context.Context) {
	if !r.leader.IsLeader() {
		return
	}
	ctx, cancel := underLease(ctx, r.leader)
	defer cancel()
	evs, err := r.src.BlockedEvaluations(ctx)
	if err != nil {
		if ctx.Err() == nil {
			r.log.Warn("list blocked evaluations", "err", err)
		}
	} else if len(evs) > 0 {
		r.blocked(ctx, evs, true)
	}
	for _, p := range r.cfg.Pools {
		if !r.leader.IsLeader() || ctx.Err() != nil {
			return
		}
		d, err := r.ctl.Reconcile(ctx, p)
		if err != nil && ctx.Err() == nil {
			r.log.Warn("pool reconcile failed", "pool", p.Name, "err", err)
		}
		r.remember(p.Name, d)
	}
}

// retryDue retries the pools whose backoff has run out.
func (r *Runner) retryDue(ctx context.Context) {
	now := r.clock.Now()
	var evs []*nomadapi.Evaluation
	r.mu.Lock()
	for _, pr := range r.retry {
		if !pr.due.After(now) {
			for _, ev := range pr.evals {
				evs = append(evs, ev)
			}
		}
	}
	r.mu.Unlock()
	if len(evs) > 0 {
		r.blocked(ctx, evs, false)
	}
	// A retry neither settled nor failed again (a follower now, a job
	// unreadable) waits another backoff instead of falling due at once.
	r.mu.Lock()
	for _, pr := range r.retry {
		if !pr.due.After(now) {
			pr.due = r.clock.Now().Add(pr.backoff.NextBackOff())
		}
	}
	r.mu.Unlock()
}

func (r *Runner) nextRetry() (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var due time.Time
	for _, pr := range r.retry {
		if due.IsZero() || pr.due.Before(due) {
			due = pr.due
		}
	}
	return due, !due.IsZero()
}

// blocked decides once per pool for a batch of evaluations: the queued
// allocations still queued in Nomad's job summaries, packed onto new nodes
// of the pool each job may use. listed says the batch is Nomad's whole list
// of blocked evaluations, so a pool waiting to retry takes them on its own
// schedule.
func (r *Runner) blocked(ctx context.Context, evs []*nomadapi.Evaluation, listed bool) {
	if !r.leader.IsLeader() {
		return
	}
	ctx, cancel := underLease(ctx, r.leader)
	defer cancel()
	perPool, err := r.queuedPerPool(ctx, evs)
	if err != nil && ctx.Err() == nil {
		r.log.Warn("blocked evaluations: read jobs", "err", err)
	}
	now := r.clock.Now()
	for _, p := range r.cfg.Pools {
		work, ok := perPool[p.Name]
		if !ok {
			// Nothing queued for the pool: a retry it waited for is over
			// when this batch covered everything it waited for (and every
			// job could be read).
			if err == nil {
				r.settleIfCovered(p.Name, evs, listed)
			}
			continue
		}
		if r.waiting(p.Name, now) {
			r.addRetry(p.Name, work.evals)
			continue
		}
		if !r.leader.IsLeader() || ctx.Err() != nil {
			return
		}
		r.log.Info("queued allocations: scaling out", "pool", p.Name, "groups", len(work.queued), "evals", len(work.evals))
		d, oerr := r.ctl.OnBlocked(ctx, p, work.queued)
		r.remember(p.Name, d)
		if oerr != nil {
			if ctx.Err() != nil {
				return
			}
			wait := r.fail(p.Name, work.evals, now)
			r.log.Warn("blocked scale-out failed; retrying", "pool", p.Name, "in", wait, "err", oerr)
			continue
		}
		r.settle(p.Name)
	}
}

type poolWork struct {
	queued []QueuedGroup
	evals  map[string]*nomadapi.Evaluation
}

// queuedPerPool reads each job of the batch once and assigns its queued
// groups to the first pool the job may be placed in. Several evaluations
// of one job describe the same queued allocations: the job summary's count
// is the truth, and a group no longer queued is dropped (its evaluation is
// done).
func (r *Runner) queuedPerPool(ctx context.Context, evs []*nomadapi.Evaluation) (map[string]*poolWork, error) {
	type jobKey struct{ ns, id string }
	byJob := map[jobKey][]*nomadapi.Evaluation{}
	var keys []jobKey
	seen := map[string]bool{}
	for _, ev := range evs {
		if ev == nil || seen[ev.ID] {
			continue
		}
		seen[ev.ID] = true
		k := jobKey{ev.Namespace, ev.JobID}
		if _, ok := byJob[k]; !ok {
			keys = append(keys, k)
		}
		byJob[k] = append(byJob[k], ev)
	}
	slices.SortFunc(keys, func(a, b jobKey) int { return cmp.Or(cmp.Compare(a.ns, b.ns), cmp.Compare(a.id, b.id)) })
	out := map[string]*poolWork{}
	var errs []error
	for _, k := range keys {
		job, summary, err := r.src.JobState(ctx, k.ns, k.id)
		if err != nil {
			errs = append(errs, fmt.Errorf("job %s/%s: %w", k.ns, k.id, err))
			continue
		}
		queued := QueuedFromState(byJob[k], job, summary)
		if len(queued) == 0 {
			continue
		}
		for _, p := range r.cfg.Pools {
			if !JobTargetsPool(job, p.Selector) {
				continue
			}
			w := out[p.Name]
			if w == nil {
				w = &poolWork{evals: map[string]*nomadapi.Evaluation{}}
				out[p.Name] = w
			}
			w.queued = append(w.queued, queued...)
			for _, ev := range byJob[k] {
				w.evals[ev.ID] = ev
			}
			break // one pool takes the work
		}
	}
	return out, errors.Join(errs...)
}

// QueuedFromState merges what a job's evaluations say failed to place with
// its summary: a group counts as queued by the summary's Queued when the
// summary has it (the evaluations' counts are only a lower bound from the
// moment they ran), and a group the summary shows nothing queued for is
// placed and dropped.
func QueuedFromState(evs []*nomadapi.Evaluation, job *nomadapi.Job, summary *nomadapi.JobSummary) []QueuedGroup {
	byGroup := map[string]QueuedGroup{}
	for _, ev := range evs {
		for _, q := range QueuedFromEvaluation(ev, job) {
			if old, ok := byGroup[q.Group]; ok && old.Count >= q.Count {
				continue
			}
			byGroup[q.Group] = q
		}
	}
	var out []QueuedGroup
	for _, q := range byGroup {
		if summary != nil {
			s, ok := summary.Summary[q.Group]
			if ok {
				if s.Queued == 0 {
					continue
				}
				q.Count = s.Queued
			}
		}
		out = append(out, q)
	}
	slices.SortFunc(out, func(a, b QueuedGroup) int { return cmp.Compare(a.Group, b.Group) })
	return out
}

// JobTargetsPool reports whether the job may be placed in the pool.
func JobTargetsPool(job *nomadapi.Job, sel Selector) bool {
	if job == nil {
		return false
	}
	if sel.NodePool != "" {
		jp := "default"
		if job.NodePool != nil && *job.NodePool != "" {
			jp = *job.NodePool
		}
		if jp != sel.NodePool && jp != "all" {
			return false
		}
	}
	if sel.Datacenter != "" && !slices.Contains(job.Datacenters, "*") && !slices.Contains(job.Datacenters, sel.Datacenter) {
		return false
	}
	if sel.NodeClass != "" && pinnedToOtherClass(job, sel.NodeClass) {
		// Two pools of one Nomad node pool told apart by class: work
		// pinned to the other's class would have nodes launched here that
		// it cannot use, round after round, up to the pool's max.
		return false
	}
	return true
}

// pinnedToOtherClass reports whether a constraint of the job, one of its
// groups or one of their tasks pins ${node.class} to a class other than
// class.
func pinnedToOtherClass(job *nomadapi.Job, class string) bool {
	other := func(cs []*nomadapi.Constraint) bool {
		for _, c := range cs {
			if c == nil || strings.TrimSpace(c.LTarget) != "${node.class}" {
				continue
			}
			switch c.Operand {
			case "", "=", "==", "is":
				if c.RTarget != class {
					return true
				}
			}
		}
		return false
	}
	if other(job.Constraints) {
		return true
	}
	for _, tg := range job.TaskGroups {
		if tg == nil {
			continue
		}
		if other(tg.Constraints) {
			return true
		}
		for _, t := range tg.Tasks {
			if t != nil && other(t.Constraints) {
				return true
			}
		}
	}
	return false
}

// waiting reports whether the pool is backing off after a failure.
func (r *Runner) waiting(pool string, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	pr, ok := r.retry[pool]
	return ok && pr.due.After(now)
}

func (r *Runner) addRetry(pool string, evs map[string]*nomadapi.Evaluation) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if pr, ok := r.retry[pool]; ok {
		for id, ev := range evs {
			pr.evals[id] = ev
		}
	}
}

// fail schedules the pool's next attempt with exponential backoff and
// returns how long it waits.
func (r *Runner) fail(pool string, evs map[string]*nomadapi.Evaluation, now time.Time) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	pr, ok := r.retry[pool]
	if !ok {
		b := backoff.NewExponentialBackOff()
		b.InitialInterval, b.MaxInterval, b.MaxElapsedTime = r.cfg.RetryInitial, r.cfg.RetryMax, 0
		b.RandomizationFactor = 0.1
		b.Clock = r.clock
		b.Reset()
		pr = &poolRetry{evals: map[string]*nomadapi.Evaluation{}, backoff: b}
		r.retry[pool] = pr
	}
	for id, ev := range evs {
		pr.evals[id] = ev
	}
	wait := pr.backoff.NextBackOff()
	pr.due = now.Add(wait)
	return wait
}

// settle ends a pool's backoff once a scale-out for it succeeded.
func (r *Runner) settle(pool string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.retry, pool)
}

// settleIfCovered ends a pool's backoff when none of what it waited for is
// queued any more: the batch was Nomad's whole list of blocked evaluations,
// or held every evaluation the pool waited for.
func (r *Runner) settleIfCovered(pool string, evs []*nomadapi.Evaluation, listed bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	pr, ok := r.retry[pool]
	if !ok {
		return
	}
	if !listed {
		in := map[string]bool{}
		for _, ev := range evs {
			if ev != nil {
				in[ev.ID] = true
			}
		}
		for id := range pr.evals {
			if !in[id] {
				return
			}
		}
	}
	delete(r.retry, pool)
}

func (r *Runner) remember(pool string, d Decision) {
	if d.Pool == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.last[pool] = d
}

// Status is each pool's plan now, with the last action taken.
func (r *Runner) Status(ctx context.Context) []Decision {
	out := make([]Decision, 0, len(r.cfg.Pools))
	for _, p := range r.cfg.Pools {
		d, err := r.ctl.Plan(ctx, p)
		if err != nil {
			d.Pool, d.Reason = p.Name, "plan failed: "+err.Error()
		}
		r.mu.Lock()
		if last, ok := r.last[p.Name]; ok {
			d.Reason = d.Reason + " (last action: " + last.Reason + ")"
		}
		r.mu.Unlock()
		out = append(out, d)
	}
	return out
}
