package reconciler

import (
	"sort"
	"time"
)

// GroupPeak is a planned group: its count now and its plan's highest
// count within a window.
type GroupPeak struct {
	Namespace, Job, Group string
	Current, Peak         int
}

type groupRef struct{ namespace, job, group string }

// PlannedPeaks is, for every policy with a plan, the group's count at its
// latest reconcile and the highest count its plan serves between from and
// to (never below what the latest reconcile wanted): what predictive node
// pools provision for.
func (r *Reconciler) PlannedPeaks(from, to time.Time) []GroupPeak {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]GroupPeak, 0, len(r.plans))
	for key, plan := range r.plans {
		ref, ok := r.groups[key]
		last, seen := r.last[key]
		if !ok || !seen {
			continue
		}
		peak := max(plan.MaxBetween(from, to), last.Want)
		out = append(out, GroupPeak{Namespace: ref.namespace, Job: ref.job, Group: ref.group, Current: last.Desired, Peak: peak})
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		if a.Job != b.Job {
			return a.Job < b.Job
		}
		return a.Group < b.Group
	})
	return out
}
