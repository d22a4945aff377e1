package nodepool

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// NodeStatusInitializing is a node that registered but is not ready yet;
// its capacity counts as on its way.
const NodeStatusInitializing = "initializing"

// Scale-out reasons (the reason label of nomadscaler_pool_scale_out_total).
const (
	ScaleOutHeadroom = "headroom"
	ScaleOutMin      = "min"
	ScaleOutBlocked  = "blocked"
	// ScaleOutPredictive: for allocations the job groups' plans will ask
	// for within the pool's lead time.
	ScaleOutPredictive = "predictive"
)

// Step actions on journalled work.
const (
	StepTerminate = "terminate" // drain finished: terminate the node
	StepClose     = "close"     // nothing left to do: mark the entry done
	StepJoined    = "joined"    // launched nodes ready: settle before closing
)

// JoinSettle is how long a scale-out stays open after its nodes are ready.
// Nomad re-evaluates blocked work when a node becomes ready, but a listing
// of blocked evaluations or a job summary read before its scheduler placed
// that work still shows it queued. Meanwhile the new nodes' free capacity
// is what the queued work is packed into first, so it is not launched for
// twice.
const JoinSettle = 30 * time.Second

// DrainSettle is how long a drain the controller started counts as under
// way while the node still looks eligible and not draining. Pools read
// nodes from the cluster state the event stream feeds, which shows the
// drain only once its event arrives (seconds, or a reconnect and resync
// later); closing the drain as cancelled before then would leave the node
// to drain with nothing left to terminate it. An operator's real cancel
// is noticed when the settle ends.
const DrainSettle = 2 * time.Minute

// Step is progress on an action already in the journal.
type Step struct {
	Action string `json:"action"`
	Entry  Entry  `json:"entry"`
	Reason string `json:"reason"`
}

// DrainAction is a node chosen for draining.
type DrainAction struct {
	NodeID   string `json:"node_id"`
	NodeName string `json:"node_name"`
	Reason   string `json:"reason"`
}

// HeadroomReport is the pool's headroom in units.
type HeadroomReport struct {
	Free     int `json:"free"`
	Pending  int `json:"pending"` // on nodes launched or initializing
	Required int `json:"required"`
}

// Decision is what the controller decided for a pool, and why.
type Decision struct {
	Pool           string         `json:"pool"`
	At             time.Time      `json:"at"`
	Nodes          int            `json:"nodes"`
	Schedulable    int            `json:"schedulable"`
	Headroom       HeadroomReport `json:"headroom"`
	Steps          []Step         `json:"steps,omitempty"`
	ScaleOut       []Launch       `json:"scale_out,omitempty"`
	ScaleOutReason string         `json:"scale_out_reason,omitempty"`
	Method         string         `json:"method,omitempty"`
	Drains         []DrainAction  `json:"drains,omitempty"`
	Unplaceable    []Unplaceable  `json:"unplaceable,omitempty"`
	Reason         string         `json:"reason"`
	Acted          bool           `json:"acted"`
	Errors         []string       `json:"errors,omitempty"`
}

// DecideInput is everything Decide looks at.
type DecideInput struct {
	Pool       Pool
	Nodes      []Node    // the pool's nodes
	Idle       IdleState // already updated with this round's observations
	Pending    []Entry   // the pool's unfinished journal entries
	SelfNodeID string
	Now        time.Time
	// Planned are the allocations the plans of the pool's job groups will
	// add within the pool's lead time (PlannedAllocations); empty for a
	// pool that is not predictive.
	Planned []QueuedGroup
}

// observed is the pool's state after accounting for journalled work.
type observed struct {
	nodes      int // not down
	active     int // schedulable and not being removed
	inFlight   map[string]bool
	launching  []Launch // launched, not joined
	joining    []Node   // launched and joined, not ready or not settled
	initUnits  int      // headroom units of initializing nodes
	initNodes  int
	perType    map[string]int // existing and launching nodes per type
	steps      []Step
	waitDrains int
	waitGone   int
}

// observe folds the journal into the node list: it advances in-flight
// drains and scale-outs and counts what is on its way.
func observe(in DecideInput) observed {
	p := in.Pool
	o := observed{inFlight: map[string]bool{}, perType: map[string]int{}}
	byID := map[string]Node{}
	for _, n := range in.Nodes {
		byID[n.ID] = n
		if n.Status == NodeStatusDown {
			continue
		}
		o.nodes++
		o.perType[n.InstanceType]++
		if n.Status == NodeStatusInitializing {
			o.initNodes++
			o.initUnits += UnitsIn(n.Total, p.Headroom.Unit)
		}
	}
	ids := make([]string, 0, len(in.Nodes))
	for _, n := range in.Nodes {
		ids = append(ids, n.ID)
	}
	slices.Sort(ids)
	// Nodes a settling scale-out already names are not claimed again.
	claimed := map[string]bool{}
	for _, e := range in.Pending {
		if e.Kind == KindScaleOut && e.Phase == PhaseJoined {
			for _, id := range e.JoinedNodes {
				claimed[id] = true
			}
		}
	}
	for _, e := range in.Pending {
		switch e.Kind {
		case KindDrain:
			n, ok := byID[e.NodeID]
			o.inFlight[e.NodeID] = true
			switch {
			case !ok:
				o.steps = append(o.steps, Step{StepClose, e, "node left the cluster"})
				delete(o.inFlight, e.NodeID)
			case e.Phase == PhaseTerminated && n.Status == NodeStatusDown:
				o.steps = append(o.steps, Step{StepClose, e, "terminated node is down"})
				delete(o.inFlight, e.NodeID)
			case e.Phase == PhaseTerminated && in.Now.Sub(e.At) > p.ScaleOutGrace:
				o.steps = append(o.steps, Step{StepClose, e, fmt.Sprintf("terminated node still present after %s; no longer counted as draining", p.ScaleOutGrace)})
				delete(o.inFlight, e.NodeID)
			case e.Phase == PhaseTerminated:
				o.waitGone++
			case e.Phase == PhaseTerminating:
				o.steps = append(o.steps, Step{StepTerminate, e, "termination was interrupted; retrying"})
			case n.Status == NodeStatusDown:
				o.steps = append(o.steps, Step{StepTerminate, e, "node went down while draining"})
			case n.Draining:
				o.waitDrains++
			case n.Eligible && in.Now.Sub(e.At) < DrainSettle:
				o.waitDrains++ // the view may not show the drain yet
			case n.Eligible:
				o.steps = append(o.steps, Step{StepClose, e, "drain cancelled: node is eligible again"})
				delete(o.inFlight, e.NodeID)
			default:
				o.steps = append(o.steps, Step{StepTerminate, e, "drain complete"})
			}
		case KindScaleOut:
			if e.Phase == PhaseJoined {
				if in.Now.Sub(e.At) > JoinSettle {
					o.steps = append(o.steps, Step{StepClose, e, fmt.Sprintf("launched nodes ready for %s", JoinSettle)})
					continue
				}
				o.joining = append(o.joining, liveNodes(byID, e.JoinedNodes)...)
				continue
			}
			known := map[string]bool{}
			for _, id := range e.KnownNodes {
				known[id] = true
			}
			var joined []string
			for _, id := range ids {
				// A node naming another instance type came from another
				// launch (one decision can launch several types at once):
				// claimed here, this launch's own node would count as
				// launching with the other type's capacity.
				if t := byID[id].InstanceType; t != "" && e.InstanceType != "" && t != e.InstanceType {
					continue
				}
				if len(joined) < e.Count && !known[id] && !claimed[id] {
					claimed[id] = true
					joined = append(joined, id)
				}
			}
			ready := readyCount(byID, joined)
			switch rem := e.Count - len(joined); {
			case rem == 0 && ready == len(joined):
				e.JoinedNodes = joined
				o.steps = append(o.steps, Step{StepJoined, e, fmt.Sprintf("all %d launched nodes joined and are ready", e.Count)})
				o.joining = append(o.joining, liveNodes(byID, joined)...)
			case in.Now.Sub(e.At) > p.ScaleOutGrace:
				o.steps = append(o.steps, Step{StepClose, e, fmt.Sprintf("only %d of %d launched nodes joined and were ready within %s",
					ready, e.Count, p.ScaleOutGrace)})
			default:
				if rem > 0 {
					o.launching = append(o.launching, Launch{InstanceType: e.InstanceType, Spot: e.Spot, Count: rem})
					o.perType[e.InstanceType] += rem
				}
				o.joining = append(o.joining, liveNodes(byID, joined)...)
			}
		}
	}
	for _, n := range in.Nodes {
		if n.Schedulable() && !o.inFlight[n.ID] {
			o.active++
		}
	}
	return o
}

// liveNodes are the nodes of ids still in the cluster and not down: a
// launched node that failed holds no queued work.
func liveNodes(byID map[string]Node, ids []string) []Node {
	out := make([]Node, 0, len(ids))
	for _, id := range ids {
		if n, ok := byID[id]; ok && n.Status != NodeStatusDown {
			out = append(out, n)
		}
	}
	return out
}

func readyCount(byID map[string]Node, ids []string) int {
	n := 0
	for _, id := range ids {
		if byID[id].Schedulable() {
			n++
		}
	}
	return n
}

func (o observed) launchingNodes() int { return LaunchCount(o.launching) }

// capacityTypes are the pool's instance types with how many more of each
// may launch.
func capacityTypes(p Pool, o observed) []CapacityType {
	var out []CapacityType
	for _, it := range p.InstanceTypes {
		avail := -1
		if it.Max > 0 {
			avail = max(it.Max-o.perType[it.Name], 0)
		}
		out = append(out, CapacityType{InstanceType: it, Available: avail})
	}
	return out
}

func (o observed) maxNew(p Pool) int {
	return max(p.Max-o.nodes-o.launchingNodes(), 0)
}

// Decide is the pool's level-triggered decision: finish journalled work,
// scale out for headroom or the minimum, otherwise drain idle nodes. It
// does not act.
func Decide(ctx context.Context, ch Chooser, in DecideInput) (Decision, error) {
	p := in.Pool
	o := observe(in)
	d := Decision{Pool: p.Name, At: in.Now, Nodes: o.nodes, Steps: o.steps}
	for _, n := range in.Nodes {
		if n.Schedulable() {
			d.Schedulable++
		}
	}
	var why []string

	h := p.Headroom
	pendingUnits := o.initUnits
	for _, l := range o.launching {
		pendingUnits += l.Count * UnitsIn(p.typeResources(l.InstanceType), h.Unit)
	}
	// A launched node that has registered but counts nowhere yet (not
	// initializing, whose units are counted above, nor schedulable, whose
	// free units are, or either without its resources reported) still
	// brings its instance type's capacity: uncounted, the seconds between
	// its registration and its first ready, eligible status read as a
	// shortfall and launched another node.
	for _, n := range o.joining {
		if (n.Status == NodeStatusInitializing || n.Schedulable()) && n.Total != (Resources{}) {
			continue
		}
		total := n.Total
		if total == (Resources{}) {
			total = p.typeResources(n.InstanceType)
		}
		pendingUnits += UnitsIn(total, h.Unit)
	}
	// Nodes being drained are excluded: their capacity is going away.
	var staying []Node
	for _, n := range in.Nodes {
		if !o.inFlight[n.ID] && n.Schedulable() {
			staying = append(staying, n)
		}
	}
	// Planned allocations take free capacity first (schedulable nodes,
	// then nodes still initializing); headroom is kept on top of them,
	// and what fits nowhere is packed onto nodes launched now, so they
	// have joined when the plans ask for it.
	free := make([]Resources, 0, len(staying))
	for _, n := range staying {
		free = append(free, n.Free())
	}
	var predLaunch []Launch
	if len(in.Planned) > 0 {
		initializing := 0
		for _, n := range in.Nodes {
			if n.Status == NodeStatusInitializing && !o.inFlight[n.ID] {
				free = append(free, n.Total)
				initializing++
			}
		}
		left, rest := FitPlanned(free, in.Planned)
		// What the plans take of an initializing node is theirs: only
		// what is left of it counts as pending headroom.
		for i, r := range rest[len(rest)-initializing:] {
			pendingUnits -= UnitsIn(free[len(free)-initializing+i], h.Unit) - UnitsIn(r, h.Unit)
		}
		free = rest[:len(rest)-initializing]
		if len(left) > 0 {
			plan, err := PlanBlocked(ctx, ch, BlockedInput{Queued: left, Types: capacityTypes(p, o), MaxNodes: o.maxNew(p),
				SpotMaxShare: p.SpotMaxShare, PoolSchedulable: d.Schedulable, Pending: o.launching})
			if err != nil {
				return d, fmt.Errorf("plan capacity for planned allocations of pool %s: %w", p.Name, err)
			}
			predLaunch = plan.Launches
			// Likewise what they take of nodes already launching.
			for _, b := range plan.Bins {
				if b.Pending {
					pendingUnits -= UnitsIn(b.Capacity, h.Unit) - UnitsIn(b.Capacity.Sub(b.Used), h.Unit)
				}
			}
			n := 0
			for _, q := range left {
				n += q.Count
			}
			if len(predLaunch) > 0 {
				why = append(why, fmt.Sprintf("plans ask for %d allocations within %s that do not fit: launching %s for %.4g",
					n, p.LeadTime, describeLaunches(predLaunch), LaunchCost(predLaunch)))
			} else {
				why = append(why, fmt.Sprintf("plans ask for %d allocations within %s: they fit in nodes already launching", n, p.LeadTime))
			}
		}
	}
	if h.Enabled() {
		units := 0
		for _, f := range free {
			units += UnitsIn(f, h.Unit)
		}
		d.Headroom = HeadroomReport{Free: units, Pending: pendingUnits, Required: h.Units}
	}
	unitShort := 0
	if h.Enabled() {
		unitShort = max(h.Units-d.Headroom.Free-d.Headroom.Pending, 0)
	}
	minShort := max(p.Min-o.active-o.initNodes-o.launchingNodes(), 0)

	minShort = max(minShort-LaunchCount(predLaunch), 0)
	d.ScaleOut = predLaunch
	if len(predLaunch) > 0 {
		d.ScaleOutReason = ScaleOutPredictive
	}
	if unitShort > 0 || minShort > 0 {
		prob := CapacityProblem{MaxNodes: max(o.maxNew(p)-LaunchCount(predLaunch), 0), SpotMaxShare: p.SpotMaxShare}
		types := capacityTypes(p, o)
		for i := range types {
			types[i].Provides = nil
			// The nodes launched for the plans in this decision take
			// from each type's max too, as they take from the pool's.
			if types[i].Available >= 0 {
				for _, l := range predLaunch {
					if l.InstanceType == types[i].Name {
						types[i].Available = max(types[i].Available-l.Count, 0)
					}
				}
			}
		}
		if unitShort > 0 {
			prob.Dims, prob.Need = append(prob.Dims, "units"), append(prob.Need, int64(unitShort))
			for i := range types {
				types[i].Provides = append(types[i].Provides, int64(UnitsIn(types[i].Resources, h.Unit)))
			}
		}
		if minShort > 0 {
			prob.Dims, prob.Need = append(prob.Dims, "nodes"), append(prob.Need, int64(minShort))
			for i := range types {
				types[i].Provides = append(types[i].Provides, 1)
			}
		}
		prob.Types = types
		choice, err := ch.Choose(ctx, prob)
		if err != nil {
			return d, fmt.Errorf("choose capacity for pool %s: %w", p.Name, err)
		}
		d.ScaleOut, d.Method = append(d.ScaleOut, choice.Launches...), choice.Method
		d.ScaleOutReason = ScaleOutHeadroom
		if unitShort == 0 {
			d.ScaleOutReason = ScaleOutMin
		}
		if unitShort > 0 {
			why = append(why, fmt.Sprintf("headroom %d+%d pending of %d units: %d short", d.Headroom.Free, d.Headroom.Pending, h.Units, unitShort))
		}
		if minShort > 0 {
			why = append(why, fmt.Sprintf("%d active nodes, below min %d", o.active+o.initNodes+o.launchingNodes(), p.Min))
		}
		if len(d.ScaleOut) > 0 {
			why = append(why, fmt.Sprintf("launching %s for %.4g", describeLaunches(d.ScaleOut), LaunchCost(d.ScaleOut)))
		}
		if !choice.Covered {
			why = append(why, fmt.Sprintf("pool max %d nodes or instance type limits prevent covering the shortfall", p.Max))
		}
	} else if len(predLaunch) > 0 {
		// Launching for the plans: no drains meanwhile.
	} else if len(o.launching) > 0 {
		why = append(why, fmt.Sprintf("waiting for %d launched nodes to join; no drains meanwhile", o.launchingNodes()))
	} else {
		drains, none := SelectDrains(DrainInput{Nodes: in.Nodes, Idle: in.Idle, Policy: p.DrainPolicy(), SelfNodeID: in.SelfNodeID, InFlight: o.inFlight})
		if kept := keepForPlans(staying, drains, in.Planned, h); kept > 0 {
			drains = drains[:len(drains)-kept]
			why = append(why, fmt.Sprintf("kept %d idle nodes: the plans need their capacity within %s", kept, p.LeadTime))
		}
		for _, c := range drains {
			d.Drains = append(d.Drains, DrainAction{NodeID: c.Node.ID, NodeName: c.Node.Name, Reason: c.Reason})
		}
		if len(drains) > 0 {
			why = append(why, fmt.Sprintf("draining %d idle nodes", len(drains)))
		}
		if none != "" && (len(drains) == 0 || !strings.HasPrefix(none, "no idle")) {
			why = append(why, none)
		}
	}
	for _, s := range d.Steps {
		why = append(why, fmt.Sprintf("%s %s: %s", s.Action, entrySubject(s.Entry), s.Reason))
	}
	if o.waitDrains > 0 {
		why = append(why, fmt.Sprintf("%d nodes still draining", o.waitDrains))
	}
	if o.waitGone > 0 {
		why = append(why, fmt.Sprintf("%d terminated nodes not gone yet", o.waitGone))
	}
	if len(why) == 0 {
		why = append(why, "nothing to do")
	}
	d.Reason = strings.Join(why, "; ")
	return d, nil
}

// keepForPlans is how many of the chosen drains (from the last) must not
// happen because the planned allocations and the drained nodes' own work
// would no longer fit on the nodes that stay, with the headroom left on
// top of them (SelectDrains counts headroom without the plans: a drain it
// allows could leave the plans eating the headroom, and the next decision
// launch a node for it).
func keepForPlans(staying []Node, drains []DrainChoice, planned []QueuedGroup, h Headroom) int {
	if len(planned) == 0 {
		return 0
	}
	for k := len(drains); k > 0; k-- {
		gone := map[string]bool{}
		work := slices.Clone(planned)
		for _, c := range drains[:k] {
			gone[c.Node.ID] = true
			work = append(work, QueuedGroup{Job: "drained", Group: c.Node.ID, Count: 1, Resources: c.Node.Allocated})
		}
		var free []Resources
		for _, n := range staying {
			if !gone[n.ID] {
				free = append(free, n.Free())
			}
		}
		left, rest := FitPlanned(free, work)
		units := 0
		for _, r := range rest {
			units += UnitsIn(r, h.Unit)
		}
		if len(left) == 0 && (!h.Enabled() || units >= h.Units) {
			return len(drains) - k
		}
	}
	return len(drains)
}

func describeLaunches(ls []Launch) string {
	var parts []string
	for _, l := range ls {
		s := fmt.Sprintf("%d×%s", l.Count, l.InstanceType)
		if l.Spot {
			s += " (spot)"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

func entrySubject(e Entry) string {
	if e.Kind == KindDrain {
		return "node " + cmp.Or(e.NodeName, e.NodeID)
	}
	return fmt.Sprintf("launch of %d×%s", e.Count, e.InstanceType)
}
