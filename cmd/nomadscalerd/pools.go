package main

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/nomadscalerd/nomadscalerd/nodepool"
	"github.com/nomadscalerd/nomadscalerd/reconciler"
)

// poolRunner reconciles every configured node pool on an interval (leader
// only) and reacts to blocked evaluations at once.
type poolRunner struct {
	ctl      *nodepool.Controller
	pools    []nodepool.Pool
	nomad    *nomadapi.Client
	leader   reconciler.Leadership
	interval time.Duration
	log      *slog.Logger

	mu   sync.Mutex
	last map[string]nodepool.Decision
	seen map[string]bool // blocked evaluations already handled
}

func (r *poolRunner) Run(ctx context.Context) error {
	t := time.NewTicker(r.interval)
	defer t.Stop()
	for {
		r.reconcileAll(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (r *poolRunner) reconcileAll(ctx context.Context) {
	if !r.leader.IsLeader() {
		return
	}
	for _, p := range r.pools {
		d, err := r.ctl.Reconcile(ctx, p)
		if err != nil && ctx.Err() == nil {
			r.log.Warn("pool reconcile failed", "pool", p.Name, "err", err)
		}
		r.remember(p.Name, d)
	}
}

func (r *poolRunner) remember(pool string, d nodepool.Decision) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.last[pool] = d
}

// OnBlockedEvaluation implements reconciler.BlockedHandler: the queued
// allocations of a blocked evaluation are packed onto new nodes of the pools
// the job can use, at once rather than on the next interval.
func (r *poolRunner) OnBlockedEvaluation(ctx context.Context, ev *nomadapi.Evaluation) {
	if !r.leader.IsLeader() {
		return
	}
	r.mu.Lock()
	if r.seen[ev.ID] {
		r.mu.Unlock()
		return
	}
	if len(r.seen) > 10000 { // evaluation IDs never repeat; only recent ones matter
		r.seen = map[string]bool{}
	}
	r.seen[ev.ID] = true
	r.mu.Unlock()
	job, _, err := r.nomad.Jobs().Info(ev.JobID, (&nomadapi.QueryOptions{Namespace: ev.Namespace}).WithContext(ctx))
	if err != nil {
		r.log.Warn("blocked evaluation: read job", "job", ev.JobID, "err", err)
		return
	}
	queued := nodepool.QueuedFromEvaluation(ev, job)
	if len(queued) == 0 {
		return
	}
	for _, p := range r.pools {
		if !jobTargetsPool(job, p.Selector) {
			continue
		}
		r.log.Info("blocked evaluation: scaling out", "pool", p.Name, "job", ev.JobID, "eval", ev.ID, "groups", len(queued))
		d, err := r.ctl.OnBlocked(ctx, p, queued)
		if err != nil {
			r.log.Warn("blocked scale-out failed", "pool", p.Name, "err", err)
		}
		r.remember(p.Name, d)
		return // one pool takes the work
	}
	r.log.Info("blocked evaluation targets no configured pool", "job", ev.JobID)
}

// jobTargetsPool reports whether the job may be placed in the pool.
func jobTargetsPool(job *nomadapi.Job, sel nodepool.Selector) bool {
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
	return true
}

// Status is the pools' part of GET /v1/status.
func (r *poolRunner) Status(ctx context.Context) []nodepool.Decision {
	out := make([]nodepool.Decision, 0, len(r.pools))
	for _, p := range r.pools {
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
