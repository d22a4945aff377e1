package nodepool

import "time"

// IdlePolicy says when a node counts as idle: both allocated fractions below
// their thresholds for Periods consecutive periods of length Period.
type IdlePolicy struct {
	CPUBelow    float64
	MemoryBelow float64
	Periods     int
	Period      time.Duration
}

// IdleState is the per-pool idle bookkeeping the daemon persists between
// reconciles (and restarts). Nodes that are not currently idle are absent.
type IdleState struct {
	Nodes map[string]NodeIdle `json:"nodes"`
}

// NodeIdle is the idle streak of one node.
type NodeIdle struct {
	// IdleSince is the first observation of the current idle streak.
	IdleSince time.Time `json:"idle_since"`
	// LastSeen is the latest idle observation; a gap of more than two
	// periods since it breaks the streak, because nothing vouches for the
	// node having stayed idle while nobody was looking.
	LastSeen time.Time `json:"last_seen"`
	// Periods is the number of whole periods the streak has lasted.
	Periods int `json:"periods"`
}

// Observation is one look at a node's allocated utilization.
type Observation struct {
	NodeID string
	CPU    float64
	Memory float64
}

// Observe turns the schedulable nodes into observations; nodes that cannot
// take work (draining, ineligible, not ready) are left out, which ends their
// streaks.
func Observe(nodes []Node) []Observation {
	var obs []Observation
	for _, n := range nodes {
		if !n.Schedulable() {
			continue
		}
		c, m := n.Utilization()
		obs = append(obs, Observation{NodeID: n.ID, CPU: c, Memory: m})
	}
	return obs
}

// UpdateIdle folds one round of observations into state and returns the new
// state; state is not modified. A busy observation, a missing node or a gap
// of more than two periods restarts a node's streak.
func UpdateIdle(state IdleState, p IdlePolicy, obs []Observation, now time.Time) IdleState {
	next := IdleState{Nodes: make(map[string]NodeIdle, len(obs))}
	for _, o := range obs {
		if !(o.CPU < p.CPUBelow && o.Memory < p.MemoryBelow) {
			continue
		}
		cur, ok := state.Nodes[o.NodeID]
		if !ok || now.Before(cur.LastSeen) || (p.Period > 0 && now.Sub(cur.LastSeen) > 2*p.Period) {
			cur = NodeIdle{IdleSince: now}
		}
		cur.LastSeen = now
		cur.Periods = 0
		if p.Period > 0 {
			cur.Periods = int(now.Sub(cur.IdleSince) / p.Period)
		}
		next.Nodes[o.NodeID] = cur
	}
	return next
}

// IsIdle reports whether the node has been idle for the policy's periods.
func (s IdleState) IsIdle(nodeID string, p IdlePolicy) bool {
	ni, ok := s.Nodes[nodeID]
	return ok && ni.Periods >= p.Periods
}
