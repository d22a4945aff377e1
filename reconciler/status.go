package reconciler

import (
	"context"
	"time"

	"github.com/nomadscalerd/nomadscalerd/optimize"
	"github.com/nomadscalerd/nomadscalerd/store"
)

// PolicyStatus is what `nomadscalerd status` shows for one policy.
type PolicyStatus struct {
	Policy       Policy              `json:"policy"`
	Plan         *optimize.Plan      `json:"plan,omitempty"`
	PlanValueNow *int                `json:"plan_value_now,omitempty"`
	LastDecision *Decision           `json:"last_decision,omitempty"`
	LastAction   *store.JournalEntry `json:"last_action,omitempty"`
	Tuning       *Tuning             `json:"tuning,omitempty"`
	// Warnings are the policy's settings that do nothing as set (see
	// Policy.Warnings).
	Warnings []string `json:"warnings,omitempty"`
}

// Status is the reconciler's part of GET /v1/status.
type Status struct {
	Leader   bool              `json:"leader"`
	Time     time.Time         `json:"time"`
	Policies []PolicyStatus    `json:"policies"`
	Invalid  map[string]string `json:"invalid_policies,omitempty"`
}

// Status reports every active policy with its plan, last decision and last
// journaled action.
func (c *Controller) Status(_ context.Context) Status {
	now := time.Now()
	st := Status{Time: now, Leader: c.rec.d.Leader == nil || c.rec.d.Leader.IsLeader(), Invalid: c.Invalid(), Policies: []PolicyStatus{}}
	for _, p := range c.Policies() {
		ps := PolicyStatus{Policy: p, Warnings: p.Warnings()}
		if plan, ok := c.rec.CurrentPlan(p.Key); ok {
			ps.Plan = &plan
			v := plan.At(now)
			ps.PlanValueNow = &v
		}
		if d, ok := c.rec.LastDecision(p.Key); ok {
			ps.LastDecision = &d
		}
		if t, ok := c.rec.TuningOf(p.Key); ok {
			ps.Tuning = &t
		}
		if e, err := c.rec.d.State.LastAction(p.Key); err == nil {
			ps.LastAction = &e
		}
		st.Policies = append(st.Policies, ps)
	}
	// TuningOf caches what it reads: a policy removed since the list was
	// taken may have been forgotten before its tuning was cached, which
	// nothing would drop again. The controller unschedules a policy before
	// the pool forgets it, so one still active here is forgotten after
	// this cached it; one removed and added again meanwhile costs a read.
	for _, ps := range st.Policies {
		if !c.Active(ps.Policy.Key) {
			c.rec.dropTuningCache(ps.Policy.Key)
		}
	}
	return st
}
