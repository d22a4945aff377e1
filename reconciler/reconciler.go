// Package reconciler owns the control loop of nomadscalerd for job groups:
// it discovers scaling policies in Nomad, keeps one level-triggered worker
// per policy, and on every interval or relevant event compares Nomad's
// desired count with the plan's value for now and acts, through a journal,
// cooldowns and backoff, on the leader only.
package reconciler

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/nomadscalerd/nomadscalerd/migrations"
	"github.com/nomadscalerd/nomadscalerd/optimize"
	"github.com/nomadscalerd/nomadscalerd/predict"
	"github.com/nomadscalerd/nomadscalerd/store"
)

// ScaleRequest is one call of Nomad's job scale API.
type ScaleRequest struct {
	Namespace, Job, Group string
	// Count is nil for a dry run: Nomad records the event without a change.
	Count   *int
	Message string
	Meta    map[string]any
}

// Scaler changes a group's count; satisfied by the Nomad client wrapper.
type Scaler interface {
	Scale(ctx context.Context, r ScaleRequest) error
}

// GroupStatus is what Nomad says about a group now.
type GroupStatus struct {
	Exists  bool
	Desired int // the job's count for the group: what we decide from
	Running int
	Pending int // placed but not yet running, or unplaced
	// MinHealthy is the group's update block's min_healthy_time (Nomad
	// gives a service group 10 s when it sets none): a scale-up's
	// deployment blocks the next change until its new allocations have
	// run healthy this long. 0 when the group runs no deployments or the
	// observer does not know it.
	MinHealthy time.Duration
}

// Observer reads a group's status; satisfied by the Nomad client wrapper.
type Observer interface {
	GroupStatus(ctx context.Context, namespace, job, group string) (GroupStatus, error)
}

// ScalingEvent is one of the scaling events Nomad keeps for a group
// (GET /v1/job/:id/scale, at most the last 20 per group).
type ScalingEvent struct {
	Time time.Time
	// Count is the count asked for; nil for an event that changed none
	// (a dry run, a note).
	Count         *int
	PreviousCount int
	Message       string
	Meta          map[string]any
}

// ScalingEvents reads the newest scaling event Nomad keeps for a group:
// how a replica that did not make the last action (a new leader, a new
// owner of a shard, a replica whose database is new) learns of the
// cooldown it started. Events that report an error are skipped (they
// record a scale that did not happen); ok is false when the group has no
// other or is gone. Satisfied by the Nomad client wrapper.
type ScalingEvents interface {
	LastScalingEvent(ctx context.Context, namespace, job, group string) (ev ScalingEvent, ok bool, err error)
}

// CooldownUntilMeta is the key of the scaling event meta in which
// nomadscalerd writes the end of the cooldown an action starts (RFC 3339),
// so that whichever replica acts next holds scale-downs until then.
const CooldownUntilMeta = "nomadscalerd.cooldown_until"

// Planner makes a policy's plans from its history and reads its recent
// demand; satisfied by *HistoryPlanner.
type Planner interface {
	PlanAhead(ctx context.Context, p Policy, r predict.PlanRequest) (optimize.Plan, error)
	Recent(ctx context.Context, p Policy, now time.Time, window time.Duration) ([]float64, error)
}

var _ Planner = (*HistoryPlanner)(nil)

// Freshness tells when a series was last sampled successfully.
type Freshness interface {
	LastSample(series string) (time.Time, bool)
}

// State is the durable part of the reconciler: plans, cooldowns and the
// action journal; satisfied by *store.DB.
type State interface {
	Append(e store.JournalEntry) (store.JournalEntry, error)
	LastAction(target string) (store.JournalEntry, error)
	PutJSON(bucket []byte, key string, v any) error
	PutJSONs(bucket []byte, values map[string]any) error
	GetJSON(bucket []byte, key string, v any) error
}

// Leadership reports whether this replica may act.
type Leadership interface {
	IsLeader() bool
}

// Lease is leadership that can say when it ends: work that acts for the
// leader runs under its Context, so a lost lock stops it in flight.
type Lease interface {
	Leadership
	Context() context.Context
}

// UnderLease derives from ctx a context that also ends when l's term ends
// (when l is a Lease; otherwise ctx's own lifetime). It is ended already
// when l is not leader now: a lease can run out (a pause, a slow journal
// write) before the elector's watchdog ends its term, and
// context.AfterFunc on a term that has ended cancels only later, on
// another goroutine; either way work started under it would reach Nomad
// after the lease.
func UnderLease(ctx context.Context, l Leadership) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	if l == nil {
		return ctx, cancel
	}
	if !l.IsLeader() {
		cancel()
		return ctx, cancel
	}
	lease, ok := l.(Lease)
	if !ok {
		return ctx, cancel
	}
	term := lease.Context()
	if term.Err() != nil {
		cancel()
		return ctx, cancel
	}
	stop := context.AfterFunc(term, cancel)
	return ctx, func() { stop(); cancel() }
}

// Owner says whether this replica owns a policy (holds its shard);
// satisfied by *nomad.Shards. Without one every policy is this replica's.
type Owner interface {
	Owns(key string) bool
}

// OwnerLease is an Owner that can say when its hold on a policy's shard
// ends (*nomad.Shards): with shards the shard's lock is the lease, so a
// scale runs under it and a shard lost mid-scale stops the call.
type OwnerLease interface {
	Owner
	ContextOf(key string) context.Context
}

// shardOf is the hold on one policy's shard as a Leadership, so that
// UnderLease checks it right before acting.
type shardOf struct {
	o   Owner
	key string
}

func (s shardOf) IsLeader() bool { return s.o.Owns(s.key) }

// shardLeaseOf is shardOf whose Owner says when the hold ends.
type shardLeaseOf struct{ shardOf }

func (s shardLeaseOf) Context() context.Context { return s.o.(OwnerLease).ContextOf(s.key) }

// underShard derives from ctx a context that also ends when this replica's
// hold on key's shard does (UnderLease on it); ctx as it is without an
// Owner.
func underShard(ctx context.Context, o Owner, key string) (context.Context, context.CancelFunc) {
	switch o.(type) {
	case nil:
		return context.WithCancel(ctx)
	case OwnerLease:
		return UnderLease(ctx, shardLeaseOf{shardOf{o, key}})
	default:
		return UnderLease(ctx, shardOf{o, key})
	}
}

// Result tells the worker when to reconcile again.
type Result struct {
	RequeueAfter time.Duration
}

// Deps are the reconciler's collaborators.
type Deps struct {
	Scaler    Scaler
	Observer  Observer
	Planner   Planner
	Freshness Freshness
	State     State
	Leader    Leadership
	// Owner, when set, limits acting to the policies of shards held.
	Owner   Owner
	Metrics *Metrics
	Log     *slog.Logger
	Now     func() time.Time
	// DryRun forces every policy into dry-run mode (--dry-run).
	DryRun bool
	// MinHorizon is the shortest plan made (0: what the decider asks
	// for): a predictive node pool reads the plans this far ahead.
	MinHorizon time.Duration
	// Replica names this process in the scaling events it writes (meta
	// "replica"), so an operator, or a test, can tell which replica of an
	// HA pair acted.
	Replica string
	// Events, when set, is read before a scale-down this replica has no
	// cooldown for, once per policy per term (see nomadCooldown).
	Events ScalingEvents
}

// Reconciler decides and acts for one policy at a time.
type Reconciler struct {
	d Deps

	mu    sync.Mutex
	plans map[string]optimize.Plan
	// unsaved are the plans made since the last FlushPlans: a plan is
	// kept for status and a restart's cache, not for correctness, so it
	// is written a second later with the others, not in a commit of its
	// own (a thousand policies replan about a hundred times a second).
	unsaved  map[string]optimize.Plan
	deciders map[string]*policyDecider
	tunings  map[string]Tuning
	// tuneWaits hold off loading the history of policies that had too
	// little of it to tune (see TuneOnce).
	tuneWaits map[string]tuneWait
	// delays are the startup delays the deciders measured, for the tuner.
	delays   map[string]time.Duration
	backoffs map[string]backoff.BackOff
	last     map[string]Decision
	// settled marks policies whose journal was checked for half-done work
	// since this process started; within a process every intent is followed
	// by its outcome in the same reconcile, so once is enough (and the
	// journal, which only grows, is not scanned every second).
	settled map[string]bool
	// groups names each policy's group, for PlannedPeaks.
	groups map[string]groupRef
	// eventsRead marks the policies whose last scaling event was read
	// from Nomad, with the term it was read in (see nomadCooldown).
	eventsRead map[string]termID
	// observed is each policy's count as this replica last knew it in the
	// current term (see noticeOutsideChange).
	observed map[string]observation
}

// Decision is the outcome of one reconcile, kept for status.
type Decision struct {
	Time         time.Time `json:"time"`
	Desired      int       `json:"desired"`
	Want         int       `json:"want"`
	PlanID       string    `json:"plan_id,omitempty"`
	Action       string    `json:"action"` // none, scale, dry_run, cooldown, blocked, error, conservative
	Reason       string    `json:"reason"`
	Conservative bool      `json:"conservative,omitempty"`
	// Planned is the plan's count for now, Floor the reactive floor, and
	// Source which of them (or the bounds, or the cached plan) set Want.
	Planned int    `json:"planned"`
	Floor   int    `json:"floor"`
	Source  string `json:"source,omitempty"`
	// StartupDelay is the delay the decider planned with (measured or
	// set), MinHealthy the group's min_healthy_time it read from the job
	// (how long a scale-up's deployment blocks the next change).
	StartupDelay string `json:"startup_delay,omitempty"`
	MinHealthy   string `json:"min_healthy_time,omitempty"`
	// BurstHeadroom is what the plan holds above the forecast for the
	// last hour's bursts (burst_quantile), in the requests check's units
	// per second; absent where the Gaussian margin plans.
	BurstHeadroom float64 `json:"burst_headroom,omitempty"`
}

// New builds a Reconciler.
func New(d Deps) *Reconciler {
	if d.Log == nil {
		d.Log = slog.Default()
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	return &Reconciler{d: d, plans: map[string]optimize.Plan{}, unsaved: map[string]optimize.Plan{}, deciders: map[string]*policyDecider{}, tunings: map[string]Tuning{}, tuneWaits: map[string]tuneWait{}, delays: map[string]time.Duration{}, backoffs: map[string]backoff.BackOff{}, last: map[string]Decision{}, settled: map[string]bool{}, groups: map[string]groupRef{}, eventsRead: map[string]termID{}, observed: map[string]observation{}}
}

// LastDecision returns the latest decision for a policy key.
func (r *Reconciler) LastDecision(key string) (Decision, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	d, ok := r.last[key]
	return d, ok
}

// wakeOn is what a new sample needs to tell whether key's worker should
// run at once (see Controller.ObservePoints): the count its last decision
// asked for and the startup delay it planned with. Not ok before the
// decider's first decision, after a reconcile that did not reach the
// decider (a follower, another shard's policy), and after one that failed
// or was blocked, which retry on their own schedule (a sample must not
// bypass a backoff).
func (r *Reconciler) wakeOn(key string) (want int, delay time.Duration, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	d, ok := r.last[key]
	if !ok || d.Source == "" || (d.Action != "none" && d.Action != "scale" && d.Action != "dry_run" && d.Action != "cooldown" && d.Action != "conservative") {
		return 0, 0, false
	}
	return d.Want, r.delays[key], true
}

// CurrentPlan returns the cached plan for a policy key.
func (r *Reconciler) CurrentPlan(key string) (optimize.Plan, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.plans[key]
	if !ok {
		if err := r.d.State.GetJSON(migrations.BucketPlans, key, &p); err == nil {
			return p, true
		}
	}
	return p, ok
}

type cooldownState struct {
	Until time.Time `json:"until"`
	// From says where a cooldown this replica did not start came from
	// (Nomad's last scaling event), for the decision's reason.
	From string `json:"from,omitempty"`
	// Changed is the change of the count, made outside nomadscalerd,
	// that started the cooldown (see noticeOutsideChange).
	Changed *countChange `json:"changed,omitempty"`
}

// countChange is a group's count changing from one observation to the next.
type countChange struct {
	From int `json:"from"`
	To   int `json:"to"`
}

// reason is the cooldown as a decision's reason.
func (cd cooldownState) reason() string {
	r := fmt.Sprintf("cooldown until %s", cd.Until.Format(time.RFC3339))
	if cd.From != "" {
		r += ", from " + cd.From
	}
	if cd.Changed != nil {
		r += fmt.Sprintf(", after the count changed from %d to %d outside nomadscalerd", cd.Changed.From, cd.Changed.To)
	}
	return r
}

func cooldownKey(key string) string { return "cooldown/" + key }

// DropExpiredCooldowns deletes the stored cooldowns that ended before now:
// an ended cooldown holds nothing, and a policy removed for good would
// otherwise keep its entry for the database's life. It returns how many
// it deleted; an entry that does not decode is left for a reader to
// report.
func DropExpiredCooldowns(db *store.DB, now time.Time) (int, error) {
	return db.DeletePrefixed(migrations.BucketState, cooldownKey(""), func(v []byte) bool {
		var cd cooldownState
		return jsonUnmarshal(v, &cd) == nil && cd.Until.Before(now)
	})
}

// DropStateWithoutHistory deletes the model fits, plans and self-tunings
// of policies whose history retention has taken (store.DeleteWithoutHistory):
// a policy removed for good would otherwise keep them for the database's
// life, and `model list` would show it. A policy that comes back fits
// again from its new history, as a new one does.
func DropStateWithoutHistory(db *store.DB) (int, error) {
	total := 0
	for _, b := range []struct {
		bucket []byte
		prefix string
	}{{migrations.BucketFits, ""}, {migrations.BucketPlans, ""}, {migrations.BucketState, TuningKey("")}} {
		n, err := db.DeleteWithoutHistory(b.bucket, b.prefix)
		total += n
		if err != nil {
			return total, fmt.Errorf("drop %s without history: %w", b.bucket, err)
		}
	}
	return total, nil
}

// ErrActiveDeployment is how a Scaler reports that Nomad refused to scale a
// group because a deployment of its job is running: not a failure, the
// change is retried when the deployment ends.
var ErrActiveDeployment = errors.New("job scaling blocked due to active deployment")

// Errors a Scaler (and the Nomad client behind it) classifies its failures
// into, so callers branch with errors.Is and outcomes are named for what
// happened.
var (
	// ErrNotFound: the job or group no longer exists.
	ErrNotFound = errors.New("not found in Nomad")
	// ErrRateLimited: Nomad refused the request for too many requests or
	// connections (HTTP 429).
	ErrRateLimited = errors.New("rate limited by Nomad")
	// ErrUnavailable: Nomad could not be reached or failed (5xx).
	ErrUnavailable = errors.New("nomad unavailable")
)

// scaleOutcome names a failed scale for metrics and the decision.
func scaleOutcome(err error) string {
	switch {
	case errors.Is(err, ErrActiveDeployment):
		return "blocked"
	case errors.Is(err, ErrRateLimited):
		return "rate_limited"
	case errors.Is(err, ErrUnavailable):
		return "unavailable"
	case errors.Is(err, ErrNotFound):
		return "not_found"
	}
	return "error"
}

// policyDecider is a policy's decider with the settings it was built from:
// an edited policy gets a new one.
type policyDecider struct {
	fingerprint string
	*predict.Decider
	lastErr string
}

// deciderFor returns the policy's decider, building it on first use and
// again whenever the policy's settings change.
func (r *Reconciler) deciderFor(p Policy) (*policyDecider, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if d, ok := r.deciders[p.Key]; ok && p.matches(d.fingerprint) {
		return d, nil
	}
	minHorizon := int(r.d.MinHorizon / time.Second)
	s := p.DeciderSettings()
	s.ReplanPhase = replanPhase(p.Key, s.ReplanInterval)
	dec, err := predict.NewDecider(s, p.DelayEstimator(), func(ctx context.Context, req predict.PlanRequest) (optimize.Plan, error) {
		req.Horizon = max(req.Horizon, minHorizon)
		return r.d.Planner.PlanAhead(ctx, p, req)
	})
	if err != nil {
		return nil, err
	}
	d := &policyDecider{fingerprint: p.fingerprint(), Decider: dec}
	r.deciders[p.Key] = d
	return d, nil
}

// replanPhase is where in every replan interval the policy keyed key
// re-plans: spread by the key's hash, so that a thousand policies started
// together (a daemon's start, a leader's handover) make a tenth of their
// plans each second of a 10 s interval, not all of them in one. Plans
// read their history window through the database's mapping and are
// flushed in one transaction a second: all at once, at 2,000 policies,
// they mapped 160 MiB of the file and added 40 MiB of heap every tenth
// second.
func replanPhase(key string, every time.Duration) time.Duration {
	ms := uint64(every / time.Millisecond)
	if ms == 0 {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(key))
	return time.Duration(h.Sum64()%ms) * time.Millisecond
}

// FlushPlans writes the plans made since the last flush, in one
// transaction, and returns how many. A plan that fails to be written is
// kept for the next flush unless a newer one replaced it or its policy was
// forgotten meanwhile.
func (r *Reconciler) FlushPlans() (int, error) {
	r.mu.Lock()
	batch := r.unsaved
	r.unsaved = map[string]optimize.Plan{}
	r.mu.Unlock()
	if len(batch) == 0 {
		return 0, nil
	}
	values := make(map[string]any, len(batch))
	for k, p := range batch {
		values[k] = p
	}
	if err := r.d.State.PutJSONs(migrations.BucketPlans, values); err != nil {
		r.mu.Lock()
		for k, p := range batch {
			// A plan made is cached in plans until Forget: without it
			// there, the policy was removed during the write, and putting
			// its plan back would have the next flush store it.
			_, newer := r.unsaved[k]
			if _, live := r.plans[k]; live && !newer {
				r.unsaved[k] = p
			}
		}
		r.mu.Unlock()
		return 0, fmt.Errorf("store %d plans: %w", len(batch), err)
	}
	return len(batch), nil
}

// RunPlanFlusher flushes the plans every interval until ctx ends, and once
// more then: a stop loses no plan, a crash at most an interval of them
// (each policy replans at its next reconcile anyway). A failing flush is
// logged each time; the daemon's handler (logging.Dedupe) folds the
// repeats of a full disk into one line a minute.
func (r *Reconciler) RunPlanFlusher(ctx context.Context, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if _, err := r.FlushPlans(); err != nil {
				r.d.Log.Error("store plans at stop", "err", err)
			}
			return nil
		case <-t.C:
			if _, err := r.FlushPlans(); err != nil {
				r.d.Log.Error("store plans", "err", err)
			}
		}
	}
}

// Forget drops what the reconciler holds for a removed policy.
func (r *Reconciler) Forget(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.deciders, key)
	delete(r.tunings, key)
	delete(r.tuneWaits, key)
	delete(r.delays, key)
	delete(r.plans, key)
	delete(r.unsaved, key)
	delete(r.backoffs, key)
	delete(r.last, key)
	delete(r.settled, key)
	delete(r.groups, key)
	delete(r.eventsRead, key)
	delete(r.observed, key)
	r.d.Metrics.forget(key)
	if f, ok := r.d.Planner.(interface{ Forget(string) }); ok {
		f.Forget(key)
	}
}

// Reconcile brings one group toward its plan. It is level-triggered: it
// reads everything it decides from, so calling it twice is harmless.
func (r *Reconciler) Reconcile(ctx context.Context, p Policy) (Result, error) {
	start := r.d.Now()
	res, dec, err := r.reconcile(ctx, p, start)
	dec.Time = start
	r.mu.Lock()
	r.last[p.Key] = dec
	r.mu.Unlock()
	r.d.Metrics.evaluated(p.Key, dec.Action, time.Since(start))
	if res.RequeueAfter <= 0 {
		res.RequeueAfter = p.EvaluationInterval
	}
	return res, err
}

func (r *Reconciler) reconcile(ctx context.Context, p Policy, now time.Time) (Result, Decision, error) {
	p = r.effective(p)
	if p.PluginOwned() {
		return Result{}, Decision{Action: "none", Reason: "owned by the nomadscaler plugin (optimizer_url is set): it scales, nomadscalerd records the history and answers its POST /optimize"}, nil
	}
	if r.d.Leader != nil && !r.d.Leader.IsLeader() {
		return Result{}, Decision{Action: "none", Reason: "follower: the leader scales"}, nil
	}
	if r.d.Owner != nil && !r.d.Owner.Owns(p.Key) {
		return Result{}, Decision{Action: "none", Reason: "another replica holds this policy's shard"}, nil
	}
	st, err := r.d.Observer.GroupStatus(ctx, p.Namespace, p.Job, p.Group)
	if err != nil {
		return r.retry(p.Key), Decision{Action: "error", Reason: "observe: " + err.Error()}, fmt.Errorf("observe %s: %w", p.Key, err)
	}
	if !st.Exists {
		return Result{}, Decision{Action: "none", Reason: "group not found"}, nil
	}
	dec := Decision{Desired: st.Desired}
	r.mu.Lock()
	settled := r.settled[p.Key]
	r.mu.Unlock()
	if !settled {
		if err := r.finishJournal(p, st); err != nil {
			return r.retry(p.Key), Decision{Action: "error", Reason: err.Error()}, err
		}
		r.mu.Lock()
		r.settled[p.Key] = true
		r.mu.Unlock()
	}

	pd, err := r.deciderFor(p)
	if err != nil {
		return Result{}, Decision{Action: "error", Reason: err.Error()}, err
	}
	recent, err := r.d.Planner.Recent(ctx, p, now, pd.RecentWindow())
	if err != nil {
		return r.retry(p.Key), Decision{Action: "error", Reason: "history: " + err.Error()}, err
	}
	got := pd.Decide(ctx, predict.Input{Now: now, Current: st.Desired, Running: st.Running, Recent: recent, MinHealthy: st.MinHealthy})
	r.mu.Lock()
	r.delays[p.Key] = got.StartupDelay
	r.mu.Unlock()
	if got.PlanErr != nil {
		// Logged when the reason changes, not on every retry: a new policy
		// without enough history says so once while its floor scales it.
		msg := got.PlanErr.Error()
		if errors.Is(got.PlanErr, optimize.ErrShortHistory) {
			msg = optimize.ErrShortHistory.Error() // not "N seconds of history": once, not every evaluation
		}
		if msg != pd.lastErr {
			pd.lastErr = msg
			// Too little history is every new policy's first minutes, not
			// a fault: info, so a thousand new policies do not warn.
			level := slog.LevelWarn
			if errors.Is(got.PlanErr, optimize.ErrShortHistory) {
				level = slog.LevelInfo
			}
			r.d.Log.Log(ctx, level, "no new plan; serving the floor and the cached plan", "policy", p.Key, "err", got.PlanErr, "plan", got.Plan.ID, "floor", got.Floor)
		}
		r.d.Metrics.planFailed(p.Key)
	} else if got.Replanned {
		pd.lastErr = ""
	}
	next := got.Plan
	if got.Replanned {
		r.d.Log.Debug("new plan", "policy", p.Key, "plan", next.ID, "why", got.Why, "desired", next.Desired, "solver", next.Solver, "startup_delay", got.StartupDelay, "burst_headroom", next.Burst)
		r.mu.Lock()
		r.plans[p.Key] = next
		r.unsaved[p.Key] = next
		r.groups[p.Key] = groupRef{p.Namespace, p.Job, p.Group}
		r.mu.Unlock()
	}
	dec.PlanID = next.ID
	dec.Floor, dec.Planned, dec.Source = got.Floor, got.Planned, got.Source
	dec.StartupDelay, dec.MinHealthy = got.StartupDelay.String(), st.MinHealthy.String()
	dec.BurstHeadroom = next.Burst
	want := got.Count
	wake := max(got.NextWake.Sub(now), time.Second)
	cooldown := p.ScaleDownCooldown(got.HoldDown)
	// Before any return: a change at plan (an operator raised the count
	// to what the plan wants) still holds the scale-down that follows.
	if err := r.noticeOutsideChange(p, st.Desired, now, cooldown); err != nil {
		return r.retry(p.Key), Decision{Action: "error", Reason: err.Error()}, err
	}

	// Stale metrics: never scale down on them, and scale up only on fresh
	// evidence, which stale metrics are not. Bounds are still enforced.
	if r.d.Freshness != nil {
		series := store.SeriesName(p.Key, p.Target.RequestsCheck)
		last, ok := r.d.Freshness.LastSample(series)
		if !ok || now.Sub(last) > p.Target.StaleAfter {
			if held := clamp(st.Desired, p.Min, p.Max); held != want {
				r.d.Log.Warn("metrics are stale; conservative mode holds the count", "policy", p.Key, "series", series,
					"last_sample", last, "plan_wanted", want, "holding", held)
				want = held
			}
			dec.Conservative = true
		}
	}
	dec.Want = want
	r.d.Metrics.counts(p.Key, st.Desired, want)
	if want == st.Desired {
		dec.Action, dec.Reason = "none", "at plan"
		if dec.Conservative {
			dec.Action, dec.Reason = "conservative", "metrics stale; holding"
		}
		return Result{RequeueAfter: min(wake, p.EvaluationInterval)}, dec, nil
	}
	// The cooldown holds scale-downs only: capacity the plan or the floor
	// needs is never held back by a recent action.
	if want < st.Desired {
		var cd cooldownState
		if err := r.d.State.GetJSON(migrations.BucketState, cooldownKey(p.Key), &cd); err != nil || !now.Before(cd.Until) {
			// None here: another replica may have started one (this
			// database is not the one of the replica that acted last).
			if cd, err = r.nomadCooldown(ctx, p, now, cooldown); err != nil {
				return r.retry(p.Key), Decision{Action: "error", Reason: err.Error()}, err
			}
		}
		if now.Before(cd.Until) {
			dec.Action, dec.Reason = "cooldown", cd.reason()
			return Result{RequeueAfter: min(cd.Until.Sub(now), wake, p.EvaluationInterval)}, dec, nil
		}
	}
	res, d, err := r.act(ctx, p, st, next, want, dec, now, cooldown)
	if err == nil && (d.Action == "scale" || d.Action == "dry_run") {
		res.RequeueAfter = min(wake, p.EvaluationInterval)
	}
	return res, d, err
}

func (r *Reconciler) act(ctx context.Context, p Policy, st GroupStatus, plan optimize.Plan, want int, dec Decision, now time.Time, cooldown time.Duration) (Result, Decision, error) {
	// Leadership is checked again right before acting: the reconcile may
	// have started under a lease that has run out since (a paused process).
	if r.d.Leader != nil && !r.d.Leader.IsLeader() {
		return Result{}, Decision{Action: "none", Reason: "lost leadership before acting"}, nil
	}
	if r.d.Owner != nil && !r.d.Owner.Owns(p.Key) {
		return Result{}, Decision{Action: "none", Reason: "lost the policy's shard before acting"}, nil
	}
	dir := "up"
	if want < st.Desired {
		dir = "down"
	}
	dry := r.d.DryRun || p.Target.DryRun
	reason := fmt.Sprintf("%s wants %d replicas now (plan %s: %d, floor %d; desired %d, running %d, pending %d)",
		sourceName(dec.Source), want, plan.ID, dec.Planned, dec.Floor, st.Desired, st.Running, st.Pending)
	actionID := fmt.Sprintf("%s@%d", p.Key, now.UnixNano())
	kind := "scale"
	if dry {
		kind = "scale_dry_run"
	}
	// The intent carries the cooldown the action starts, so that a restart
	// settling it as done (finishJournal) holds the same scale-downs an
	// uninterrupted action would have.
	until := now.Add(cooldown)
	intent := store.JournalEntry{ActionID: actionID, Kind: kind, State: store.StateIntent, Target: p.Key, Reason: reason,
		Data: mustJSON(scaleData{From: st.Desired, To: want, PlanID: plan.ID, CooldownUntil: until})}
	// A run stopped by now (its policy removed during the fit, SIGTERM)
	// sends nothing, so it writes no intent either: nothing can have been
	// applied for a restart to settle, and the intent of a removed policy,
	// which never runs again to settle it, would stay open for good (the
	// journal's compaction keeps open intents).
	if ctx.Err() != nil {
		return Result{}, Decision{Action: "none", Reason: "stopped before scaling"}, nil
	}
	if _, err := r.d.State.Append(intent); err != nil {
		return r.retry(p.Key), Decision{Action: "error", Reason: "journal: " + err.Error()}, err
	}
	req := ScaleRequest{Namespace: p.Namespace, Job: p.Job, Group: p.Group,
		Message: fmt.Sprintf("nomadscalerd: scale %s %d -> %d: %s", dir, st.Desired, want, reason),
		Meta: map[string]any{"reason": reason, "plan_id": plan.ID, "forecast_plan": planPreview(plan, now), "scaled_by": "nomadscalerd", "action_id": actionID, "replica": r.d.Replica,
			"direction": dir, "from": st.Desired, "to": want,
			// In Nomad the cooldown outlives this replica's database: the
			// replica that acts next reads it (nomadCooldown).
			CooldownUntilMeta: until.UTC().Format(time.RFC3339Nano)}}
	if dry {
		req.Message = fmt.Sprintf("nomadscalerd dry-run: would scale %s %d -> %d: %s", dir, st.Desired, want, reason)
	} else {
		req.Count = &want
	}
	// The scale runs under the lease: if the lock is lost meanwhile the
	// call is abandoned, and its intent stays open for whoever leads next
	// to settle from what Nomad shows.
	// With shards, the policy's shard lock is a lease too.
	leaderCtx, endLeader := UnderLease(ctx, r.d.Leader)
	leaseCtx, endShard := underShard(leaderCtx, r.d.Owner, p.Key)
	if !dry {
		// Until Nomad answers, and after an answer that is not a clear
		// success, the count asked for is this replica's doing too.
		r.expect(p.Key, st.Desired, want)
	}
	// A lease that ran out since the check above (the intent's write can
	// stall) sends nothing: the intent stays open, as for a scale cut off.
	err := leaseCtx.Err()
	if err == nil {
		err = r.d.Scaler.Scale(leaseCtx, req)
	}
	// Cut off by a lost lease or by a stop (SIGTERM, the policy removed),
	// Nomad may have applied it: the intent stays open to be settled.
	lost := err != nil && leaseCtx.Err() != nil
	shardLost := lost && leaderCtx.Err() == nil
	endShard()
	endLeader()
	if lost {
		why := "lost leadership while scaling"
		switch {
		case ctx.Err() != nil:
			why = "stopped while scaling"
		case shardLost:
			why = "lost the policy's shard while scaling"
		}
		r.mu.Lock()
		delete(r.settled, p.Key) // the open intent must be settled when this replica leads again
		// Whatever Nomad shows next is settled from the journal, not
		// taken for someone else's change.
		delete(r.observed, p.Key)
		r.mu.Unlock()
		r.d.Log.Warn(why+"; the intent is left for the next leader to settle", "policy", p.Key, "action", actionID)
		return Result{}, Decision{Action: "none", Reason: why}, nil
	}
	if err != nil {
		_, _ = r.d.State.Append(store.JournalEntry{ActionID: actionID, Kind: kind, State: store.StateFailed, Target: p.Key, Reason: err.Error()})
		outcome := scaleOutcome(err)
		r.d.Metrics.action(dir, outcome)
		dec.Action, dec.Reason = outcome, err.Error()
		r.d.Log.Warn("scaling failed; retrying with backoff", "policy", p.Key, "to", want, "outcome", outcome, "err", err)
		// Blocked by a deployment is not an action: no cooldown, just retry.
		return r.retry(p.Key), dec, nil
	}
	// The cooldown is stored before the action is journaled done: a crash
	// between the two leaves an open intent, which the restart settles
	// with the cooldown it carries.
	if err := r.d.State.PutJSON(migrations.BucketState, cooldownKey(p.Key), cooldownState{Until: until}); err != nil {
		r.d.Log.Error("store cooldown", "policy", p.Key, "err", err)
	}
	_, _ = r.d.State.Append(store.JournalEntry{ActionID: actionID, Kind: kind, State: store.StateDone, Target: p.Key, Reason: reason})
	if !dry {
		r.expect(p.Key, want, want)
	}
	r.resetBackoff(p.Key)
	outcome := "success"
	if dry {
		outcome = "dry_run"
	}
	r.d.Metrics.action(dir, outcome)
	dec.Action, dec.Reason = "scale", reason
	if dry {
		dec.Action = "dry_run"
	}
	r.d.Log.Info("scaled", "policy", p.Key, "from", st.Desired, "to", want, "dry_run", dry, "plan", plan.ID)
	return Result{RequeueAfter: min(cooldown, p.EvaluationInterval)}, dec, nil
}

// observation is a group's count as this replica knew it, in the term it
// knew it in: a count seen in an earlier term says nothing of the changes
// since, which another replica may have made (nomadCooldown reads those).
type observation struct {
	term termID
	// count is the count last seen or, after a scale Nomad accepted,
	// asked for; asked is the count of a scale sent whose outcome is not
	// known (in flight, or failed in a way that may have applied it),
	// otherwise count. Either explains the next count seen.
	count, asked int
}

// expect records that the group's count is count, or asked if a scale
// this replica sent took.
func (r *Reconciler) expect(key string, count, asked int) {
	r.observe(key, observation{term: r.termOf(key), count: count, asked: asked})
}

func (r *Reconciler) observe(key string, o observation) {
	r.mu.Lock()
	r.observed[key] = o
	r.mu.Unlock()
}

// noticeOutsideChange compares the group's count, desired, with the one
// this replica last saw or asked for in this term. A count neither
// explains was set by someone else: an operator's `nomad job scale`, a
// `nomad job run` with a new count, another tool. Such a change is held
// against a scale-down for the policy's scale-down cooldown, counted from
// when it was seen, as nomadscalerd holds after its own actions and
// nomad-autoscaler after any scaling event of its target (see cooldownOf,
// which holds the same after a failover): otherwise the next reconcile
// undoes an operator's change within seconds. Nomad's last scaling event
// is read only once a term, so it cannot be what tells, and a count is
// the same change whichever call set it. The first reconcile of a term
// has nothing to compare with: nomadCooldown covers what happened before
// it, and a half-done action of this replica's own is settled from the
// journal. A running cooldown that ends later is kept. A cooldown that
// cannot be stored is an error, and the change is noticed again at the
// retry: holding everything while the database refuses writes costs
// nothing, as no action can be journaled then either.
func (r *Reconciler) noticeOutsideChange(p Policy, desired int, now time.Time, cooldown time.Duration) error {
	term := r.termOf(p.Key)
	r.mu.Lock()
	prev, seen := r.observed[p.Key]
	r.mu.Unlock()
	current := observation{term: term, count: desired, asked: desired}
	if !seen || prev.term != term || desired == prev.count || desired == prev.asked {
		r.observe(p.Key, current)
		return nil
	}
	cd := cooldownState{Until: now.Add(cooldown), Changed: &countChange{From: prev.count, To: desired}}
	var running cooldownState
	if err := r.d.State.GetJSON(migrations.BucketState, cooldownKey(p.Key), &running); err == nil && running.Until.After(cd.Until) {
		cd = running
	} else {
		if err := r.d.State.PutJSON(migrations.BucketState, cooldownKey(p.Key), cd); err != nil {
			return fmt.Errorf("store the cooldown after %s's count changed from %d to %d outside nomadscalerd: %w", p.Key, prev.count, desired, err)
		}
	}
	r.d.Log.Info("the count changed outside nomadscalerd; holding scale-downs", "policy", p.Key, "from", prev.count, "to", desired, "until", cd.Until)
	r.observe(p.Key, current)
	return nil
}

// termID names the hold under which this replica acts for a policy: the
// Done channels of the leader's term and of the policy's shard's (nil
// where there is no Lease, or no OwnerLease: one term for the process).
// Either changing is a hand-over, after which another replica may have
// acted.
type termID struct{ leader, shard <-chan struct{} }

func (r *Reconciler) termOf(key string) termID {
	var t termID
	if l, ok := r.d.Leader.(Lease); ok {
		t.leader = l.Context().Done()
	}
	if o, ok := r.d.Owner.(OwnerLease); ok {
		t.shard = o.ContextOf(key).Done()
	}
	return t
}

// nomadCooldown is the cooldown Nomad's last scaling event of p's group
// holds scale-downs for, read when this replica is about to scale the
// group down with no cooldown of its own: each replica keeps cooldowns in
// its own database, so after a hand-over the new leader (or owner of the
// shard) would otherwise scale down right after the old one scaled, the
// flap a cooldown exists to prevent. The event is read once per policy
// per term, and only on the way to a scale-down: a thousand policies cost
// no requests at an election, and within a term the actions are this
// replica's own, with their cooldowns stored here. A running cooldown is
// stored here too, so that the reconciles until it ends, and a restart,
// hold without asking again. A failed read is returned: a scale-down is
// never urgent, and it would go to the same Nomad.
func (r *Reconciler) nomadCooldown(ctx context.Context, p Policy, now time.Time, own time.Duration) (cooldownState, error) {
	if r.d.Events == nil {
		return cooldownState{}, nil
	}
	term := r.termOf(p.Key)
	r.mu.Lock()
	read, ok := r.eventsRead[p.Key]
	r.mu.Unlock()
	if ok && read == term {
		return cooldownState{}, nil
	}
	ev, ok, err := r.d.Events.LastScalingEvent(ctx, p.Namespace, p.Job, p.Group)
	if err != nil {
		return cooldownState{}, fmt.Errorf("read %s's last scaling event: %w", p.Key, err)
	}
	var cd cooldownState
	if ok {
		cd = cooldownOf(ev, own)
	}
	if now.Before(cd.Until) {
		r.d.Log.Info("holding scale-downs in the cooldown of Nomad's last scaling event", "policy", p.Key, "until", cd.Until, "from", cd.From)
		if err := r.d.State.PutJSON(migrations.BucketState, cooldownKey(p.Key), cd); err != nil {
			// Held all the same, and read again at the next reconcile:
			// marked read, the cooldown would hold this one only.
			r.d.Log.Error("store the cooldown read from Nomad", "policy", p.Key, "err", err)
			return cd, nil
		}
	}
	r.mu.Lock()
	r.eventsRead[p.Key] = term
	r.mu.Unlock()
	return cd, nil
}

// cooldownOf is the cooldown a scaling event starts, given own, the
// cooldown this policy would start with an action now.
//
// A nomadscalerd replica's event carries its cooldown's end: that is kept
// as it is, as that replica would have held. An event without it was
// written by someone else: an operator's `nomad job scale`, another
// autoscaler, or a nomadscalerd from before the key. An operator who
// scales a group by hand expects the autoscaler neither to undo it at once
// nor to leave it alone for good: the policy's own scale-down cooldown,
// counted from the event, is what the autoscaler gives its own actions,
// and what nomad-autoscaler applies after any event of its target. It
// holds scale-downs only: a count set too low is raised at once, and one
// who wants a count kept for longer disables the policy.
func cooldownOf(ev ScalingEvent, own time.Duration) cooldownState {
	by, _ := ev.Meta["replica"].(string)
	if by == "" {
		by = "an unnamed replica"
	}
	if s, ok := ev.Meta[CooldownUntilMeta].(string); ok {
		// RFC3339 parses the fraction of a second, if written, too.
		if until, err := time.Parse(time.RFC3339, s); err == nil {
			return cooldownState{Until: until, From: fmt.Sprintf("Nomad's last scaling event (nomadscalerd %s, %s)", by, ev.Time.UTC().Format(time.RFC3339))}
		}
	}
	return cooldownState{Until: ev.Time.Add(own), From: fmt.Sprintf("Nomad's last scaling event (%s, with no nomadscalerd cooldown: the policy's %s scale-down cooldown from then)",
		ev.Time.UTC().Format(time.RFC3339), own)}
}

type scaleData struct {
	From   int    `json:"from"`
	To     int    `json:"to"`
	PlanID string `json:"plan_id"`
	// CooldownUntil is the end of the cooldown the action starts (absent
	// from intents journaled before it was recorded).
	CooldownUntil time.Time `json:"cooldown_until,omitzero"`
}

// finishJournal settles an action a crash or an outage cut off between its
// intent and its outcome: if Nomad already shows the count, it happened;
// otherwise it is recorded as undone and the reconcile decides afresh, so an
// action is neither lost nor applied twice.
func (r *Reconciler) finishJournal(p Policy, st GroupStatus) error {
	last, err := r.d.State.LastAction(p.Key)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	if last.State != store.StateIntent {
		return nil
	}
	var data scaleData
	_ = jsonUnmarshal(last.Data, &data)
	state := store.StateUndone
	if last.Kind == "scale" && st.Desired == data.To {
		state = store.StateDone
	}
	if state == store.StateDone && !data.CooldownUntil.IsZero() {
		// Done is done with its cooldown: without it the first reconcile
		// after the restart could undo the action at once.
		if err := r.d.State.PutJSON(migrations.BucketState, cooldownKey(p.Key), cooldownState{Until: data.CooldownUntil}); err != nil {
			return fmt.Errorf("journal: store the settled action's cooldown: %w", err)
		}
	}
	_, err = r.d.State.Append(store.JournalEntry{ActionID: last.ActionID, Kind: last.Kind, State: state, Target: p.Key,
		Reason: fmt.Sprintf("settled after restart: nomad desired %d, intent %d", st.Desired, data.To)})
	r.d.Log.Info("settled a half-done action from the journal", "policy", p.Key, "action", last.ActionID, "state", state)
	return err
}

func (r *Reconciler) retry(key string) Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, ok := r.backoffs[key]
	if !ok {
		eb := backoff.NewExponentialBackOff()
		eb.InitialInterval = 500 * time.Millisecond
		eb.MaxInterval = 30 * time.Second
		eb.MaxElapsedTime = 0
		b = eb
		r.backoffs[key] = b
	}
	return Result{RequeueAfter: b.NextBackOff()}
}

func (r *Reconciler) resetBackoff(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.backoffs, key)
}

// planPreview is the part of the plan Nomad's scaling event shows: the
// next counts, so `nomad job scaling-events -verbose` explains the action.
func planPreview(pl optimize.Plan, now time.Time) string {
	var b strings.Builder
	for i := 0; i < len(pl.Desired) && i < 10; i++ {
		v, _ := pl.Value(now.Add(time.Duration(i) * time.Second))
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%d", v)
	}
	return b.String()
}

// sourceName says in words what set a count.
func sourceName(source string) string {
	switch source {
	case "floor":
		return "the floor (recent demand)"
	case "hold":
		return "no data yet (the count is kept)"
	case "cached":
		return "the cached plan"
	case "bounds":
		return "the policy's bounds"
	case "stabilized":
		return "the scale-down window"
	}
	return "the plan"
}

func clamp(v, lo, hi int) int {
	return max(lo, min(hi, v))
}
