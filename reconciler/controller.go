package reconciler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/nomadscalerd/nomadscalerd/clock"
	"github.com/nomadscalerd/nomadscalerd/history"
	"github.com/nomadscalerd/nomadscalerd/predict"
	"github.com/nomadscalerd/nomadscalerd/store"
)

// PolicySource lists every scaling policy with its body; satisfied by the
// Nomad client wrapper.
type PolicySource interface {
	ListPolicies(ctx context.Context) ([]*nomadapi.ScalingPolicy, error)
}

// BlockedHandler receives blocked evaluations (the node-pool controller).
type BlockedHandler interface {
	OnBlockedEvaluation(ctx context.Context, eval *nomadapi.Evaluation)
}

// Controller schedules every valid policy on a bounded worker pool and
// routes Nomad events to them.
type Controller struct {
	rec      *Reconciler
	src      PolicySource
	defaults Defaults
	metrics  *Metrics
	log      *slog.Logger
	blocked  BlockedHandler
	resync   time.Duration
	pool     *pool
	clock    Clock
	// files, when set, adds a policy directory's policies to Nomad's; it
	// is polled every filePoll for changes.
	files    *PolicyDir
	filePoll time.Duration
	reload   chan struct{}
	owner    Owner
	// refresh asks Run for a refresh (the shards held changed).
	refresh chan struct{}
	// applyMu serialises reading a policy list and applying it, so a full
	// refresh and a job's refresh never apply out of order.
	applyMu sync.Mutex

	mu       sync.Mutex
	policies map[string]Policy
	// byScope indexes policy keys by their namespace/job/ prefix
	// (keyScope), so a job's event or refresh finds its policies without
	// a pass over all of them (at 5,000 policies a replica, applying a
	// job's policies was 9% of the daemon's CPU, mostly that pass).
	byScope map[string]map[string]bool
	// recordGen counts changes to what RecordTargets lists; targets is
	// that list as of targetsGen (the recorder asks every tick).
	recordGen, targetsGen uint64
	targets               []history.Target
	// fileList is the policy directory as last read (on every full
	// refresh), so a job event does not read the directory again.
	fileList []FilePolicy
	invalid  map[string]string
	disabled map[string]bool
	// requestsOf maps each policy's requests series to its key, and
	// wakeSettings and recent hold what ObservePoints needs per policy:
	// its decider settings and its latest floor_window of samples.
	requestsOf   map[string]string
	wakeSettings map[string]predict.Settings
	recent       map[string][]float64
}

// NewController builds a controller with DefaultWorkers workers; Run starts
// it.
func NewController(rec *Reconciler, src PolicySource, d Defaults, m *Metrics, log *slog.Logger) *Controller {
	if log == nil {
		log = slog.Default()
	}
	c := &Controller{rec: rec, src: src, defaults: d, metrics: m, log: log, resync: time.Minute, clock: clock.Real{},
		filePoll: 2 * time.Second, reload: make(chan struct{}, 1), refresh: make(chan struct{}, 1),
		policies: map[string]Policy{}, byScope: map[string]map[string]bool{}, invalid: map[string]string{}, disabled: map[string]bool{},
		requestsOf: map[string]string{}, wakeSettings: map[string]predict.Settings{}, recent: map[string][]float64{}}
	c.pool = newPool(DefaultWorkers, c.clock, c.reconcileKey, rec.Forget)
	return c
}

// SetWorkers sets how many policies are reconciled at once (before Run;
// 0 keeps DefaultWorkers).
func (c *Controller) SetWorkers(n int) {
	if n > 0 {
		c.pool.size = n
	}
}

// SetClock replaces the wall clock the pool schedules by (before Run).
func (c *Controller) SetClock(clk Clock) {
	c.clock = clk
	c.pool.clock = clk
}

// SetPolicyDir adds the policies of a directory (nomad-autoscaler's
// policy_dir layout) to the ones Nomad's jobs hold; the directory is
// re-read when a file in it changes and on Reload. Call it before Run.
func (c *Controller) SetPolicyDir(d *PolicyDir) { c.files = d }

// Reload asks Run to re-read every policy now (SIGHUP).
func (c *Controller) Reload() {
	select {
	case c.reload <- struct{}{}:
	default: // one is pending: it will read the latest files
	}
}

// SetOwner limits the policies scheduled to those o owns (before Run).
func (c *Controller) SetOwner(o Owner) { c.owner = o }

// RequestRefresh asks Run to re-read the policies soon: the shards this
// replica holds changed.
func (c *Controller) RequestRefresh() {
	select {
	case c.refresh <- struct{}{}:
	default:
	}
}

// SetBlockedHandler routes blocked evaluations to h.
func (c *Controller) SetBlockedHandler(h BlockedHandler) { c.blocked = h }

// Run starts the worker pool, discovers policies (retrying with backoff
// while Nomad is down), resyncs them every minute as a safety net behind
// the event stream, and waits for every reconcile in flight when ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	poolDone := make(chan struct{})
	go func() { c.pool.Run(ctx); close(poolDone) }()
	defer func() { <-poolDone }()
	// The fingerprint is taken before the first read, so an edit made
	// while it runs is read again.
	seen := ""
	if c.files != nil {
		seen, _ = c.files.Fingerprint() // an unreadable dir is reported by Refresh
	}
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval, b.MaxElapsedTime = 250*time.Millisecond, 10*time.Second, 0
	for {
		err := c.Refresh(ctx)
		if err == nil {
			break
		}
		wait := b.NextBackOff()
		c.log.Warn("policy discovery failed; retrying", "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
	t := time.NewTicker(c.resync)
	defer t.Stop()
	// Without a policy directory the poll channel stays nil: never ready.
	var poll <-chan time.Time
	dirGone := false
	if c.files != nil {
		pt := time.NewTicker(c.filePoll)
		defer pt.Stop()
		poll = pt.C
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := c.Refresh(ctx); err != nil {
				c.log.Warn("policy resync failed", "err", err)
			}
		case <-c.refresh:
			if err := c.Refresh(ctx); err != nil {
				c.log.Warn("policy refresh after a shard change failed", "err", err)
			}
		case <-c.reload:
			c.log.Info("reloading policies")
			if err := c.Refresh(ctx); err != nil {
				c.log.Warn("policy reload failed", "err", err)
			}
		case <-poll:
			fp, err := c.files.Fingerprint()
			if err != nil {
				// Once when it goes, not at every poll (every 2 s).
				if !dirGone {
					c.log.Warn("policy dir unreadable; its policies run as last read until it can be listed again", "dir", c.files.Dir(), "err", err)
					dirGone = true
				}
				continue
			}
			if dirGone {
				c.log.Info("policy dir readable again", "dir", c.files.Dir())
				dirGone = false
			}
			if fp == seen {
				continue
			}
			c.log.Info("policy files changed; reloading", "dir", c.files.Dir())
			if err := c.Refresh(ctx); err != nil {
				c.log.Warn("policy reload failed", "err", err)
				continue
			}
			seen = fp
		}
	}
}

// reconcileKey is one pool run: the policy as it is now, reconciled once.
func (c *Controller) reconcileKey(ctx context.Context, key string, triggeredAt time.Time) time.Duration {
	if !triggeredAt.IsZero() {
		c.metrics.lag(c.clock.Now().Sub(triggeredAt))
	}
	c.mu.Lock()
	p, ok := c.policies[key]
	c.mu.Unlock()
	if !ok {
		return time.Minute // removed meanwhile; the pool drops it
	}
	res, err := c.rec.Reconcile(ctx, p)
	switch {
	case err == nil || ctx.Err() != nil:
	case errors.Is(err, store.ErrNotFound):
		// A new policy before its first sample: expected, retried shortly;
		// a thousand new policies must not write a thousand warnings.
		c.log.Debug("reconcile waits for the first sample", "policy", p.Key, "err", err, "retry_in", res.RequeueAfter)
	default:
		c.log.Warn("reconcile failed", "policy", p.Key, "err", err, "retry_in", res.RequeueAfter)
	}
	return res.RequeueAfter
}

// Refresh lists policies from Nomad and starts, updates or stops workers.
// A malformed policy is logged with its job, group and reason, counted, and
// skipped; the others keep running.
func (c *Controller) Refresh(ctx context.Context) error {
	c.applyMu.Lock()
	defer c.applyMu.Unlock()
	list, err := c.src.ListPolicies(ctx)
	if err != nil {
		return err
	}
	// A directory that cannot be listed (removed, unmounted) keeps the
	// file policies as last read and is reported, but must not hold
	// Nomad's policies back: returning before apply left jobs registered
	// or purged meanwhile unread for as long as the directory was gone.
	var dirErr error
	if c.files != nil {
		fps, err := c.files.List()
		if err != nil {
			dirErr = err
		} else {
			c.mu.Lock()
			c.fileList = fps
			c.mu.Unlock()
		}
	}
	c.apply(list, "")
	return dirErr
}

// JobPolicySource reads one job's policies from memory; implemented by the
// cluster state, so a Job event re-reads that job alone.
type JobPolicySource interface {
	JobPolicies(namespace, job string) []*nomadapi.ScalingPolicy
}

// apply makes list the set of policies whose keys start with scope (all
// of them for ""): new ones are scheduled at once, edited ones read at
// their next run, removed ones unscheduled (their run in flight is
// cancelled and the reconciler forgets them once it ends).
func (c *Controller) apply(list []*nomadapi.ScalingPolicy, scope string) {
	valid := map[string]Policy{}
	invalid := map[string]string{}
	// disabled says where each disabled policy is written, to log it
	// once when it becomes disabled.
	disabled := map[string]string{}
	// from says where each group's policy came from, so that a second
	// policy for a group is refused naming the first.
	from := map[string]string{}
	for _, sp := range list {
		p, err := ParsePolicy(sp, c.defaults)
		switch {
		case errors.Is(err, ErrNotOurs):
			continue
		case err != nil:
			invalid[p.Key] = err.Error()
		case !p.Enabled:
			disabled[p.Key] = "job " + p.Job
		case c.owner != nil && !c.owner.Owns(p.Key):
			// another replica's shard
		default:
			valid[p.Key] = p
		}
		from[p.Key] = "job " + p.Job
	}
	// File policies (as last read) in scope join them; a file entry's
	// problems are keyed by its file and line, and only a full refresh
	// (scope "") revisits those.
	c.mu.Lock()
	files := c.fileList
	c.mu.Unlock()
	fileEntries := map[string]bool{}
	// inScope marks the file entries this apply decided (their group is
	// in scope), so a refusal it no longer makes is dropped as a job's is:
	// their keys are file:line, which no job scope is a prefix of.
	inScope := map[string]bool{}
	for _, fp := range files {
		where := fp.Where()
		if fp.Err != nil {
			if scope == "" {
				invalid[where], fileEntries[where] = fp.Err.Error(), true
			}
			continue
		}
		fp.Policy.ID = "file:" + where
		p, err := ParsePolicy(fp.Policy, c.defaults)
		if err == nil && !strings.HasPrefix(p.Key, scope) {
			continue
		}
		inScope[where] = err == nil
		switch {
		case errors.Is(err, ErrNotOurs):
			continue
		case err != nil:
			if scope == "" {
				invalid[where], fileEntries[where] = err.Error(), true
			}
			continue
		case from[p.Key] != "":
			invalid[where], fileEntries[where] = fmt.Sprintf("group %s already has a policy, in %s; one policy per group", p.Key, from[p.Key]), true
			continue
		case !p.Enabled:
			disabled[p.Key] = where
		case c.owner != nil && !c.owner.Owns(p.Key):
			// another replica's shard
		default:
			valid[p.Key] = p
		}
		from[p.Key] = where
	}
	c.mu.Lock()
	for _, key := range sortedKeys(anyMap(invalid)) {
		reason := invalid[key]
		if c.invalid[key] == reason {
			continue
		}
		if fileEntries[key] {
			c.log.Error("invalid scaling policy file entry skipped", "at", key, "reason", reason)
		} else {
			ns, job, group := splitKey(key)
			c.log.Error("invalid scaling policy skipped", "namespace", ns, "job", job, "group", group, "reason", reason)
		}
		c.metrics.invalidPolicy()
	}
	for key := range c.invalid {
		if _, ok := invalid[key]; !ok && (strings.HasPrefix(key, scope) || scope == "" || inScope[key]) {
			delete(c.invalid, key)
		}
	}
	for _, key := range sortedKeys(anyMap(disabled)) {
		// Said once, when it becomes so: a policy file's enabled defaults
		// to false (as nomad-autoscaler's), so a file written without it
		// would otherwise just never run.
		if !c.disabled[key] {
			c.log.Info("scaling policy disabled, not run", "policy", key, "in", disabled[key])
		}
	}
	for key := range c.disabled {
		if strings.HasPrefix(key, scope) {
			delete(c.disabled, key)
		}
	}
	for key, reason := range invalid {
		c.invalid[key] = reason
	}
	for key := range disabled {
		c.disabled[key] = true
	}
	var removed, added []string
	remove := func(key string) {
		if _, ok := valid[key]; !ok && strings.HasPrefix(key, scope) {
			removed = append(removed, key)
			c.recordGen++
			c.unindexLocked(key)
			c.unwatchLocked(key)
			delete(c.policies, key)
		}
	}
	if scope == "" {
		for key := range c.policies {
			remove(key)
		}
	} else {
		// Deleting from the map being ranged over is allowed.
		for key := range c.byScope[keyScope(scope)] {
			remove(key)
		}
	}
	for key, p := range valid {
		old, ok := c.policies[key]
		if !ok || old.Namespace != p.Namespace || old.Job != p.Job || old.Group != p.Group || !slices.Equal(old.Checks, p.Checks) {
			c.recordGen++
		}
		if !ok {
			added = append(added, key)
			c.log.Info("policy active", "policy", p.Key, "min", p.Min, "max", p.Max, "interval", p.EvaluationInterval, "checks", len(p.Checks))
			c.indexLocked(key)
		}
		// The fingerprint covers every setting the warnings, the wake's
		// settings and the series watched derive from: a refresh that
		// changed none of them (most) leaves all three as they are.
		if !ok || old.fingerprint() != p.fingerprint() {
			// Told once, when the policy becomes active or its
			// warnings change.
			if w := p.Warnings(); !ok || !slices.Equal(w, old.Warnings()) {
				for _, msg := range w {
					c.log.Warn("policy setting has no effect", "policy", p.Key, "warning", msg)
				}
			}
			c.unwatchLocked(key)
			// A policy on the seed's demand formula (an avg_response_time
			// check) is decided on demand, not requests/s, and its
			// capacity is in demand's units: a floor of raw requests would
			// wake it on every sample of a load it already serves.
			if !p.seedDemand() {
				c.requestsOf[requestsSeries(p)] = key
			}
			c.wakeSettings[key] = p.DeciderSettings()
		}
		c.policies[key] = p
	}
	c.metrics.setPolicies(len(c.policies), len(c.disabled), len(c.invalid))
	c.mu.Unlock()
	for _, key := range removed {
		c.pool.Remove(key)
		c.log.Info("policy removed", "policy", key)
	}
	for _, key := range added {
		c.pool.Add(key)
	}
}

// keyScope is the namespace/job/ prefix of a policy key (or of a scope
// PolicyKey(ns, job, "") names): everything up to its second slash. Keys
// with a scope as prefix share its keyScope, so byScope[keyScope(scope)]
// holds every key apply's strings.HasPrefix(key, scope) could match.
func keyScope(key string) string {
	i := strings.IndexByte(key, '/')
	if i < 0 {
		return key
	}
	j := strings.IndexByte(key[i+1:], '/')
	if j < 0 {
		return key
	}
	return key[:i+1+j+1]
}

// indexLocked adds key to byScope (c.mu held).
func (c *Controller) indexLocked(key string) {
	sc := keyScope(key)
	if c.byScope[sc] == nil {
		c.byScope[sc] = map[string]bool{}
	}
	c.byScope[sc][key] = true
}

// unindexLocked removes key from byScope (c.mu held).
func (c *Controller) unindexLocked(key string) {
	sc := keyScope(key)
	if delete(c.byScope[sc], key); len(c.byScope[sc]) == 0 {
		delete(c.byScope, sc)
	}
}

// Trigger asks for an immediate reconcile of a policy; at is when the cause
// arrived (for the event-lag metric). Triggers before the run starts
// coalesce into it: reconciles are level-triggered, one is enough.
func (c *Controller) Trigger(key string, at time.Time) { c.pool.Trigger(key, at) }

// Policies returns the active policies, sorted by key.
func (c *Controller) Policies() []Policy {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Policy, 0, len(c.policies))
	for _, p := range c.policies {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// Active says whether key is a policy scheduled now. A policy stops being
// active before the pool forgets it.
func (c *Controller) Active(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.policies[key]
	return ok
}

// RecordTargets is RecordTargets(c.Policies()), built again only when a
// policy's checks or group changed: the recorder asks on every tick, and
// copying every policy a second was a tenth of the daemon's allocations
// at 1,000 policies. The list is shared: callers must not modify it.
func (c *Controller) RecordTargets() []history.Target {
	c.mu.Lock()
	if c.targets != nil && c.targetsGen == c.recordGen {
		defer c.mu.Unlock()
		return c.targets
	}
	gen := c.recordGen
	c.mu.Unlock()
	ts := RecordTargets(c.Policies())
	if ts == nil {
		ts = []history.Target{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen == c.recordGen {
		c.targets, c.targetsGen = ts, gen
	}
	return ts
}

// ObservePoints is told every recorder tick's stored points. A sample of
// a policy's requests series that lifts its reactive floor above the count
// its last decision asked for (predict.FloorAbove, over the latest
// floor_window of samples seen here) triggers its reconcile at once
// instead of at its next evaluation: a step up is then answered within a
// tick, not up to an evaluation_interval later. The check is two passes
// over the policy's floor window per sample under the controller's lock
// (BenchmarkObservePointsOfAThousandPolicies); no Nomad call, no database
// read.
func (c *Controller) ObservePoints(pts []store.Point) {
	var wake []string
	c.mu.Lock()
	for _, pt := range pts {
		key, ok := c.requestsOf[pt.Series]
		if !ok {
			continue
		}
		ds := c.wakeSettings[key]
		n := max(int(ds.FloorWindow/time.Second), 1)
		win := append(c.recent[key], pt.V)
		if len(win) > n {
			win = append(win[:0], win[len(win)-n:]...)
		}
		c.recent[key] = win
		if want, delay, ok := c.rec.wakeOn(key); ok && predict.FloorAbove(ds, delay, win, want) {
			wake = append(wake, key)
		}
	}
	c.mu.Unlock()
	now := c.clock.Now()
	for _, key := range wake {
		c.pool.Trigger(key, now)
	}
}

// requestsSeries is the series of p's requests check.
func requestsSeries(p Policy) string { return store.SeriesName(p.Key, p.Target.RequestsCheck) }

// unwatchLocked forgets what ObservePoints keeps for key (c.mu held). The
// samples seen go too: an edited policy may read another series, or the
// same one over another window.
func (c *Controller) unwatchLocked(key string) {
	if old, ok := c.policies[key]; ok && c.requestsOf[requestsSeries(old)] == key {
		delete(c.requestsOf, requestsSeries(old))
	}
	delete(c.wakeSettings, key)
	delete(c.recent, key)
}

// Invalid returns the skipped policies and why.
func (c *Controller) Invalid() map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]string, len(c.invalid))
	for k, v := range c.invalid {
		out[k] = v
	}
	return out
}

// HandleEvents reacts to Nomad events: job changes refresh policies and
// reconcile the job's groups at once; failed allocations and finished
// deployments reconcile their group; blocked evaluations go to the node
// pools.
func (c *Controller) HandleEvents(ctx context.Context, _ uint64, events []nomadapi.Event) {
	at := time.Now()
	refresh := false
	jobs := map[[2]string]bool{}
	groups := map[string]bool{}
	for i := range events {
		e := &events[i]
		switch e.Topic {
		case nomadapi.TopicJob:
			refresh = true
			if ns, id, ok := eventJob(e); ok {
				jobs[[2]string{ns, id}] = true
			} else if j, err := e.Job(); err == nil && j != nil {
				jobs[[2]string{deref(j.Namespace), deref(j.ID)}] = true
			}
		case nomadapi.TopicAllocation:
			a, err := e.Allocation()
			if err != nil || a == nil {
				continue
			}
			if a.ClientStatus == nomadapi.AllocClientStatusFailed || a.ClientStatus == nomadapi.AllocClientStatusLost {
				groups[PolicyKey(a.Namespace, a.JobID, a.TaskGroup)] = true
			}
		case nomadapi.TopicDeployment:
			d, err := e.Deployment()
			if err != nil || d == nil {
				continue
			}
			if d.Status == "successful" || d.Status == "failed" || d.Status == "cancelled" {
				jobs[[2]string{d.Namespace, d.JobID}] = true
			}
		case nomadapi.TopicEvaluation:
			ev, err := e.Evaluation()
			if err != nil || ev == nil || c.blocked == nil {
				continue
			}
			if ev.Status == nomadapi.EvalStatusBlocked || len(ev.FailedTGAllocs) > 0 {
				c.blocked.OnBlockedEvaluation(ctx, ev)
			}
		}
	}
	if js, ok := c.src.(JobPolicySource); ok && refresh {
		c.applyMu.Lock()
		for j := range jobs {
			c.apply(js.JobPolicies(j[0], j[1]), PolicyKey(j[0], j[1], ""))
		}
		c.applyMu.Unlock()
	} else if refresh {
		if err := c.Refresh(ctx); err != nil {
			c.log.Warn("policy refresh after job event failed", "err", err)
		}
	}
	if len(jobs) == 0 && len(groups) == 0 {
		return
	}
	c.mu.Lock()
	var due []string
	for j := range jobs {
		for key := range c.byScope[keyScope(PolicyKey(j[0], j[1], ""))] {
			if p := c.policies[key]; p.Namespace == j[0] && p.Job == j[1] {
				due = append(due, key)
			}
		}
	}
	for key := range groups {
		if p, ok := c.policies[key]; ok && !jobs[[2]string{p.Namespace, p.Job}] {
			due = append(due, key)
		}
	}
	c.mu.Unlock()
	for _, key := range due {
		c.Trigger(key, at)
	}
}

// eventJob reads the namespace and ID of a Job event's job from its
// payload as Nomad sent it: decoding the whole job (e.Job) for its name
// cost more than the rest of HandleEvents at 1,000 policies.
func eventJob(e *nomadapi.Event) (ns, id string, ok bool) {
	j, _ := e.Payload["Job"].(map[string]any)
	ns, _ = j["Namespace"].(string)
	id, _ = j["ID"].(string)
	return ns, id, id != ""
}

// anyMap lets sortedKeys order a map of reasons.
func anyMap(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func splitKey(key string) (ns, job, group string) {
	parts := append(strings.SplitN(key, "/", 3), "", "")
	return parts[0], parts[1], parts[2]
}
