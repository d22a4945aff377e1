package nodepool

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// NomadView is the controller's read access to Nomad.
type NomadView interface {
	// PoolNodes lists the nodes sel picks (the controller filters again
	// with sel.Matches, so returning more is harmless), with allocated and
	// total resources, status, eligibility and drain state.
	PoolNodes(ctx context.Context, sel Selector) ([]Node, error)
}

// DrainOptions is how the controller drains a node.
type DrainOptions struct {
	Deadline         time.Duration
	IgnoreSystemJobs bool
	// Meta is recorded on the drain (drained_by = nomadscalerd).
	Meta map[string]string
}

// Drainer starts drains and changes scheduling eligibility.
type Drainer interface {
	Drain(ctx context.Context, nodeID string, opts DrainOptions) error
	SetEligibility(ctx context.Context, nodeID string, eligible bool) error
}

// DrainedByMeta is the drain metadata marking nomadscalerd's drains.
var DrainedByMeta = map[string]string{"drained_by": "nomadscalerd"}

// Deps are the Controller's collaborators.
type Deps struct {
	Nomad   NomadView
	Drainer Drainer
	// Providers maps pool names to their provider.
	Providers map[string]Provider
	Idle      IdleStore
	Journal   Journal
	// Chooser picks instance types; nil means GreedyChooser.
	Chooser Chooser
	// Metrics may be nil.
	Metrics *Metrics
	Logger  *slog.Logger
	// SelfNodeID is the Nomad node running nomadscalerd, never drained.
	SelfNodeID string
	// Now defaults to time.Now.
	Now func() time.Time
	// Plans are the job groups' plans, read by predictive pools; nil
	// makes every pool reactive.
	Plans PlanSource
}

// PlanSource gives the plans of the job groups whose jobs may be placed in
// a pool: each group's count now and its plan's highest count between from
// and to.
type PlanSource interface {
	PlannedGroups(ctx context.Context, sel Selector, from, to time.Time) ([]PlannedGroup, error)
}

// Controller keeps pools sized: Reconcile is level-triggered and safe to
// call on every tick, OnBlocked reacts to blocked evaluations at once.
// Calls are serialised.
type Controller struct {
	d  Deps
	mu sync.Mutex
}

// NewController checks deps and returns a controller.
func NewController(d Deps) (*Controller, error) {
	switch {
	case d.Nomad == nil:
		return nil, errors.New("nodepool controller needs a nomad view")
	case d.Drainer == nil:
		return nil, errors.New("nodepool controller needs a drainer")
	case d.Idle == nil:
		return nil, errors.New("nodepool controller needs an idle store")
	case d.Journal == nil:
		return nil, errors.New("nodepool controller needs a journal")
	}
	if d.Chooser == nil {
		d.Chooser = GreedyChooser{}
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	return &Controller{d: d}, nil
}

type snapshot struct {
	nodes   []Node
	pending []Entry
	idle    IdleState
}

func (c *Controller) observe(ctx context.Context, p Pool, now time.Time) (snapshot, error) {
	all, err := c.d.Nomad.PoolNodes(ctx, p.Selector)
	if err != nil {
		return snapshot{}, fmt.Errorf("list nodes of pool %s: %w", p.Name, err)
	}
	var s snapshot
	for _, n := range all {
		if p.Selector.Matches(n) {
			s.nodes = append(s.nodes, n)
		}
	}
	entries, err := c.d.Journal.Pending(ctx)
	if err != nil {
		return snapshot{}, fmt.Errorf("read journal: %w", err)
	}
	for _, e := range entries {
		if e.Pool == p.Name {
			s.pending = append(s.pending, e)
		}
	}
	prev, err := c.d.Idle.LoadIdle(ctx, p.Name)
	if err != nil {
		return snapshot{}, fmt.Errorf("load idle state of pool %s: %w", p.Name, err)
	}
	s.idle = UpdateIdle(prev, p.Idle, Observe(s.nodes), now)
	return s, nil
}

// Plan decides for pool without acting or saving anything.
func (c *Controller) Plan(ctx context.Context, p Pool) (Decision, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.d.Now()
	s, err := c.observe(ctx, p, now)
	if err != nil {
		return Decision{}, err
	}
	return Decide(ctx, c.d.Chooser, DecideInput{Pool: p, Nodes: s.nodes, Idle: s.idle, Pending: s.pending, SelfNodeID: c.d.SelfNodeID, Now: now,
		Planned: c.planned(ctx, p, now)})
}

// planned reads what the plans add within a predictive pool's lead time.
// Without plans the pool is reactive for this round: an unreadable plan
// must not stop headroom, blocked scale-out or drains. The groups that
// could be read are used when others could not: one job that cannot be
// read (purged, say) must not turn the whole pool reactive.
func (c *Controller) planned(ctx context.Context, p Pool, now time.Time) []QueuedGroup {
	if p.LeadTime <= 0 || c.d.Plans == nil {
		return nil
	}
	gs, err := c.d.Plans.PlannedGroups(ctx, p.Selector, now, now.Add(p.LeadTime))
	if err != nil {
		c.d.Logger.Warn("predictive pool: some plans unreadable; the pool is reactive for them this round", "pool", p.Name, "read", len(gs), "err", err)
	}
	return PlannedAllocations(gs)
}

// Reconcile observes pool, decides, and acts: it finishes journalled
// drains and terminations, launches capacity or starts drains. Errors of
// single actions are collected in Decision.Errors and returned joined.
func (c *Controller) Reconcile(ctx context.Context, p Pool) (Decision, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.d.Now()
	s, err := c.observe(ctx, p, now)
	if err != nil {
		return Decision{}, err
	}
	if err := c.d.Idle.SaveIdle(ctx, p.Name, s.idle); err != nil {
		return Decision{}, fmt.Errorf("save idle state of pool %s: %w", p.Name, err)
	}
	d, err := Decide(ctx, c.d.Chooser, DecideInput{Pool: p, Nodes: s.nodes, Idle: s.idle, Pending: s.pending, SelfNodeID: c.d.SelfNodeID, Now: now,
		Planned: c.planned(ctx, p, now)})
	if err != nil {
		return d, err
	}
	provider, err := c.provider(p)
	if err != nil {
		return d, err
	}
	var errs []error
	for _, st := range d.Steps {
		errs = append(errs, c.step(ctx, p, provider, st, now))
	}
	errs = append(errs, c.launch(ctx, p, provider, d.ScaleOut, d.ScaleOutReason, s.nodes, now))
	for _, dr := range d.Drains {
		errs = append(errs, c.drain(ctx, p, dr, s.nodes, now))
	}
	return c.finish(ctx, p, d, errs)
}

// OnBlocked launches nodes for queued allocations of a blocked evaluation
// right away, packing them into nodes still on their way first: launched
// ones not yet joined, and joined ones not yet ready or settled.
func (c *Controller) OnBlocked(ctx context.Context, p Pool, queued []QueuedGroup) (Decision, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.d.Now()
	s, err := c.observe(ctx, p, now)
	if err != nil {
		return Decision{}, err
	}
	in := DecideInput{Pool: p, Nodes: s.nodes, Pending: s.pending, Now: now}
	o := observe(in)
	d := Decision{Pool: p.Name, At: now, Nodes: o.nodes}
	for _, n := range s.nodes {
		if n.Schedulable() {
			d.Schedulable++
		}
	}
	if p.Headroom.Enabled() {
		d.Headroom = HeadroomReport{Free: FreeUnits(s.nodes, p.Headroom.Unit), Required: p.Headroom.Units}
	}
	plan, err := PlanBlocked(ctx, c.d.Chooser, BlockedInput{
		Queued: queued, Types: capacityTypes(p, o), MaxNodes: o.maxNew(p), SpotMaxShare: p.SpotMaxShare,
		PoolSchedulable: d.Schedulable, Pending: o.launching, Joining: o.joining,
	})
	if err != nil {
		return d, err
	}
	d.ScaleOut, d.ScaleOutReason, d.Unplaceable = plan.Launches, ScaleOutBlocked, plan.Unplaceable
	total := 0
	for _, q := range queued {
		total += q.Count
	}
	why := fmt.Sprintf("%d queued allocations blocked", total)
	if len(plan.Launches) > 0 {
		why += fmt.Sprintf("; launching %s for %.4g", describeLaunches(plan.Launches), LaunchCost(plan.Launches))
	} else {
		why += "; no new nodes needed beyond those launching"
	}
	for _, u := range plan.Unplaceable {
		why += fmt.Sprintf("; %d of %s/%s unplaceable: %s", u.Count, u.Job, u.Group, u.Why)
	}
	d.Reason = why
	provider, err := c.provider(p)
	if err != nil {
		return d, err
	}
	return c.finish(ctx, p, d, []error{c.launch(ctx, p, provider, d.ScaleOut, ScaleOutBlocked, s.nodes, now)})
}

func (c *Controller) finish(ctx context.Context, p Pool, d Decision, errs []error) (Decision, error) {
	d.Acted = true
	err := errors.Join(errs...)
	for _, e := range errs {
		if e != nil {
			d.Errors = append(d.Errors, e.Error())
		}
	}
	if r, ok := c.d.Journal.(DecisionRecorder); ok {
		// Losing the record only hurts inspection, never the pool.
		if rerr := r.RecordDecision(ctx, d); rerr != nil {
			c.d.Logger.Warn("record pool decision", "pool", p.Name, "err", rerr)
		}
	}
	c.d.Metrics.observe(d)
	// Every pool decides every pool interval: a decision to do nothing is
	// a debug line, or 1,000 pools log 100 lines a second.
	level := slog.LevelDebug
	if LaunchCount(d.ScaleOut) > 0 || len(d.Drains) > 0 || len(d.Errors) > 0 {
		level = slog.LevelInfo
	}
	c.d.Logger.Log(ctx, level, "pool decision", "pool", p.Name, "reason", d.Reason, "scale_out", LaunchCount(d.ScaleOut), "drains", len(d.Drains), "errors", len(d.Errors))
	return d, err
}

func (c *Controller) provider(p Pool) (Provider, error) {
	pr, ok := c.d.Providers[p.Name]
	if !ok {
		return nil, fmt.Errorf("no provider for pool %s", p.Name)
	}
	return pr, nil
}

// step advances one journalled action. A node whose termination fails is
// made eligible again so its capacity is not lost.
func (c *Controller) step(ctx context.Context, p Pool, pr Provider, st Step, now time.Time) error {
	e := st.Entry
	e.At, e.Reason = now, st.Reason
	switch st.Action {
	case StepClose:
		e.Phase = PhaseDone
		return c.append(ctx, e)
	case StepJoined:
		e.Phase = PhaseJoined
		return c.append(ctx, e)
	case StepTerminate:
		e.Phase = PhaseTerminating
		if err := c.append(ctx, e); err != nil {
			return err
		}
		terr := pr.Terminate(ctx, TerminateRequest{Pool: p.Name, NodeID: e.NodeID, NodeName: e.NodeName,
			InstanceType: e.InstanceType, InstanceID: e.InstanceID, Address: e.Address, DrainedSince: e.DrainStarted})
		if terr != nil {
			e.Phase, e.Reason = PhaseFailed, "termination failed: "+terr.Error()
			errs := []error{fmt.Errorf("terminate node %s: %w", e.NodeID, terr)}
			if err := c.d.Drainer.SetEligibility(ctx, e.NodeID, true); err != nil {
				errs = append(errs, fmt.Errorf("make node %s eligible again: %w", e.NodeID, err))
			}
			errs = append(errs, c.append(ctx, e))
			return errors.Join(errs...)
		}
		// The node keeps counting against the drain cap until it is gone.
		e.Phase, e.Reason = PhaseTerminated, "terminated"
		return c.append(ctx, e)
	}
	return nil
}

func (c *Controller) launch(ctx context.Context, p Pool, pr Provider, ls []Launch, reason string, nodes []Node, now time.Time) error {
	known := make([]string, 0, len(nodes))
	for _, n := range nodes {
		known = append(known, n.ID)
	}
	var errs []error
	for i, l := range ls {
		e := Entry{ID: fmt.Sprintf("%s/scale_out/%d/%d/%s", p.Name, now.UnixNano(), i, randomSuffix()), Pool: p.Name, Kind: KindScaleOut,
			Phase: PhaseLaunched, At: now, InstanceType: l.InstanceType, Count: l.Count, Spot: l.Spot, KnownNodes: known, Reason: reason}
		// Journal first: a crash after launching must not launch again.
		if err := c.append(ctx, e); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := pr.ScaleOut(ctx, ScaleOutRequest{Pool: p.Name, InstanceType: l.InstanceType, Count: l.Count, Spot: l.Spot}); err != nil {
			errs = append(errs, fmt.Errorf("scale out %d×%s: %w", l.Count, l.InstanceType, err), c.launchFailed(ctx, p, reason, e, err))
			continue
		}
		c.d.Metrics.scaledOut(p.Name, reason, l.Count)
	}
	return errors.Join(errs...)
}

// launchFailed journals a failed scale-out. Nodes a partial failure did
// launch stay in e, still launched: they are on their way, and marking them
// failed would let the next decision launch them again and count past the
// pool's max. The nodes that did not launch get a failed entry of their
// own.
func (c *Controller) launchFailed(ctx context.Context, p Pool, reason string, e Entry, err error) error {
	var partial *PartialScaleOutError
	if !errors.As(err, &partial) || partial.Launched() <= 0 {
		e.Phase, e.Reason = PhaseFailed, "scale out failed: "+err.Error()
		return c.append(ctx, e)
	}
	launched := min(partial.Launched(), e.Count)
	failed := e
	failed.ID, failed.Phase, failed.Count = e.ID+"/unlaunched", PhaseFailed, e.Count-launched
	failed.Reason = fmt.Sprintf("scale out failed for %d of %d: %v", failed.Count, e.Count, err)
	e.Count = launched
	e.Reason = fmt.Sprintf("%s; launched %d of %d (%d spot, %d on demand), the rest failed", reason, launched, failed.Count+launched,
		partial.Spot, partial.OnDemand)
	errs := []error{c.append(ctx, e)}
	if failed.Count > 0 {
		errs = append(errs, c.append(ctx, failed))
	}
	c.d.Metrics.scaledOut(p.Name, reason, launched)
	return errors.Join(errs...)
}

func (c *Controller) drain(ctx context.Context, p Pool, dr DrainAction, nodes []Node, now time.Time) error {
	var node Node
	for _, n := range nodes {
		if n.ID == dr.NodeID {
			node = n
		}
	}
	e := Entry{ID: fmt.Sprintf("%s/drain/%s/%d/%s", p.Name, dr.NodeID, now.UnixNano(), randomSuffix()), Pool: p.Name, Kind: KindDrain,
		Phase: PhaseDraining, At: now, NodeID: dr.NodeID, NodeName: dr.NodeName, InstanceType: node.InstanceType,
		InstanceID: node.InstanceID, Address: node.Address, DrainStarted: now, Reason: dr.Reason}
	if err := c.append(ctx, e); err != nil {
		return err
	}
	err := c.d.Drainer.Drain(ctx, dr.NodeID, DrainOptions{Deadline: p.Drain.Deadline, IgnoreSystemJobs: p.Drain.IgnoreSystemJobs, Meta: DrainedByMeta})
	if errors.Is(err, ErrDrainOutcomeUnknown) {
		// Nomad may be draining the node: closed as failed, with the node
		// made eligible again (which Nomad refuses while it drains), it
		// would drain with nothing left to terminate it. The entry stays
		// open: a draining node is terminated once drained, one still
		// eligible after DrainSettle is closed as cancelled.
		return fmt.Errorf("drain node %s (kept open until the node shows its state): %w", dr.NodeID, err)
	}
	if err != nil {
		e.Phase, e.Reason = PhaseFailed, "drain failed: "+err.Error()
		errs := []error{fmt.Errorf("drain node %s: %w", dr.NodeID, err), c.append(ctx, e)}
		if err := c.d.Drainer.SetEligibility(ctx, dr.NodeID, true); err != nil {
			errs = append(errs, fmt.Errorf("make node %s eligible again: %w", dr.NodeID, err))
		}
		return errors.Join(errs...)
	}
	c.d.Metrics.drained(p.Name)
	return nil
}

func (c *Controller) append(ctx context.Context, e Entry) error {
	if err := c.d.Journal.Append(ctx, e); err != nil {
		return fmt.Errorf("journal %s %s: %w", e.Kind, e.Phase, err)
	}
	return nil
}

// randomSuffix keeps action IDs unique even when two actions share a
// timestamp (coarse clocks, restarts within the same instant).
func randomSuffix() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
