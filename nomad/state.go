package nomad

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"
	"golang.org/x/sync/errgroup"

	"github.com/nomadscalerd/nomadscalerd/history"
	"github.com/nomadscalerd/nomadscalerd/reconciler"
)

// ErrNotSynced is returned by reads of the cluster state before its first
// list has completed: nothing may act on an empty view of the cluster.
var ErrNotSynced = errors.New("cluster state not synced with nomad yet")

// syncParallel bounds the job GETs of a sync.
const syncParallel = 8

// ErrNoGroup means the view holds no such job or group.
var ErrNoGroup = errors.New("no such group")

// ClusterState is an in-memory view of the jobs that carry scaling
// policies (their groups' counts, resources and policies), of the
// allocations (running or not, and what they hold of their node) and of the
// client nodes, filled by lists when the event stream connects and kept
// current by the stream's Job, Allocation and Node events (the pattern
// of Karpenter's cluster state). Reconciles read it instead of asking
// Nomad, so the requests sent at steady state do not grow with the number
// of policies; node pools read its nodes, so they do not grow with pools.
//
// Every update is guarded by the object's ModifyIndex, so an event replayed
// after a reconnect, or one that raced the list, never rolls a newer state
// back.
type ClusterState struct {
	c   *Client
	log *slog.Logger

	mu       sync.RWMutex
	synced   chan struct{}
	isSynced bool
	jobs     map[jobKey]*jobState
	allocs   map[string]allocState
	running  map[string]int // policy key -> running allocations
	// nodes is nil unless TrackNodes was called: without node pools the
	// daemon needs no node (nor a token allowed to read them).
	nodes map[string]*Node
}

type jobKey struct{ ns, id string }

type jobState struct {
	modifyIndex uint64
	stopped     bool
	groups      map[string]groupState
	policies    []*nomadapi.ScalingPolicy
}

type groupState struct {
	count          int
	cpuMHz, memMiB float64
	minHealthy     time.Duration
}

type allocState struct {
	key         string
	modifyIndex uint64
	running     bool
	// nodeID and what the allocation holds of the node, for Nodes.
	nodeID         string
	holds          bool
	cpuMHz, memMiB int64
}

// allocUpdate is what the view takes from an allocation, listed or from
// an event.
type allocUpdate struct {
	id, ns, job, group         string
	clientStatus, desiredState string
	nodeID                     string
	resources                  *nomadapi.AllocatedResources
	modifyIndex                uint64
}

var (
	_ reconciler.Observer       = (*ClusterState)(nil)
	_ reconciler.Scaler         = (*ClusterState)(nil)
	_ reconciler.PolicySource   = (*ClusterState)(nil)
	_ reconciler.GroupResources = (*ClusterState)(nil)
	_ Handler                   = (*ClusterState)(nil)
)

// NewClusterState builds an empty, unsynced view read through c.
func NewClusterState(c *Client, log *slog.Logger) *ClusterState {
	if log == nil {
		log = slog.Default()
	}
	return &ClusterState{c: c, log: log, synced: make(chan struct{}),
		jobs: map[jobKey]*jobState{}, allocs: map[string]allocState{}, running: map[string]int{}}
}

// Synced reports whether the first list has completed.
func (s *ClusterState) Synced() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.isSynced
}

// WaitSynced blocks until the first list has completed or ctx ends.
func (s *ClusterState) WaitSynced(ctx context.Context) error {
	select {
	case <-s.synced:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for cluster state: %w", ctx.Err())
	}
}

// Sync lists what the view holds and merges it in: one list of scaling
// policies, one of jobs, one of allocations, one of nodes, and a GET of
// each job with a policy and of each node whose ModifyIndex changed since
// the view last saw it (every one the first time). The watcher calls it each time the stream (re)connects, so
// events lost while disconnected are made up for.
func (s *ClusterState) Sync(ctx context.Context) error {
	all := (&nomadapi.QueryOptions{Namespace: "*"}).WithContext(ctx)
	stubs, _, err := s.c.api.Scaling().ListPolicies(all)
	if err != nil {
		return fmt.Errorf("list scaling policies: %w", err)
	}
	withPolicy := map[jobKey]bool{}
	for _, p := range stubs {
		withPolicy[jobKey{p.Target["Namespace"], p.Target["Job"]}] = true
	}
	jobs, meta, err := s.c.api.Jobs().List(all)
	if err != nil {
		return fmt.Errorf("list jobs: %w", err)
	}
	listIndex := meta.LastIndex
	listed := map[jobKey]bool{}
	var stale []jobKey
	s.mu.RLock()
	for _, j := range jobs {
		k := jobKey{j.Namespace, j.ID}
		if !withPolicy[k] {
			continue
		}
		listed[k] = true
		if cur, ok := s.jobs[k]; !ok || cur.modifyIndex < j.ModifyIndex {
			stale = append(stale, k)
		}
	}
	s.mu.RUnlock()
	// A few GETs at once: the first sync reads every job with a policy,
	// and the client's connection limit bounds them anyway.
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(syncParallel)
	for _, k := range stale {
		g.Go(func() error {
			j, _, err := s.c.api.Jobs().Info(k.id, (&nomadapi.QueryOptions{Namespace: k.ns}).WithContext(gctx))
			if isNotFound(err) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("get job %s/%s: %w", k.ns, k.id, err)
			}
			s.upsertJob(j)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	allocQuery := (&nomadapi.QueryOptions{Namespace: "*"}).WithContext(ctx)
	if s.tracksNodes() {
		if err := s.syncNodes(ctx); err != nil {
			return err
		}
		// With resources: node pools count what allocations hold of
		// nodes.
		allocQuery.Params = map[string]string{"resources": "true"}
	}
	allocs, allocMeta, err := s.c.api.Allocations().List(allocQuery)
	if err != nil {
		return fmt.Errorf("list allocations: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// Jobs the list no longer shows are gone, unless an event newer than
	// the list brought them in meanwhile.
	for k, j := range s.jobs {
		if !listed[k] && j.modifyIndex <= listIndex {
			delete(s.jobs, k)
		}
	}
	// Allocations the list no longer shows were garbage-collected while
	// their events were lost, unless an event newer than the list came.
	listedAllocs := make(map[string]bool, len(allocs))
	for _, a := range allocs {
		listedAllocs[a.ID] = true
	}
	for id, a := range s.allocs {
		if !listedAllocs[id] && a.modifyIndex <= allocMeta.LastIndex {
			s.applyAllocLocked(allocUpdate{id: id, clientStatus: nomadapi.AllocClientStatusComplete, modifyIndex: a.modifyIndex})
		}
	}
	for _, a := range allocs {
		s.applyAllocLocked(allocUpdate{id: a.ID, ns: a.Namespace, job: a.JobID, group: a.TaskGroup, clientStatus: a.ClientStatus,
			desiredState: a.DesiredStatus, nodeID: a.NodeID, resources: a.AllocatedResources, modifyIndex: a.ModifyIndex})
	}
	if !s.isSynced {
		s.isSynced = true
		close(s.synced)
		s.log.Info("cluster state synced", "jobs_with_policies", len(s.jobs), "allocations", len(s.allocs), "nodes", len(s.nodes), "index", listIndex)
	}
	return nil
}

// HandleEvents applies Job, Allocation and Node events to the view. A
// deregistration, one job's or the GC's batch, is confirmed with one GET:
// a stopped job stays (its groups have no allocations), a purged one goes.
func (s *ClusterState) HandleEvents(ctx context.Context, index uint64, events []nomadapi.Event) {
	for i := range events {
		e := &events[i]
		switch e.Topic {
		case nomadapi.TopicJob:
			j, err := jobFromEvent(e)
			if err != nil || j == nil || j.ID == nil {
				continue
			}
			// Nomad's job GC deletes stopped jobs in a batch
			// (JobBatchDeregistered, the job as it was before): read as
			// a registration, it put the deleted job and its policies
			// back until the stream reconnected.
			if e.Type == "JobDeregistered" || e.Type == "JobBatchDeregistered" {
				ns := deref(j.Namespace)
				got, _, err := s.c.api.Jobs().Info(*j.ID, (&nomadapi.QueryOptions{Namespace: ns}).WithContext(ctx))
				switch {
				case isNotFound(err):
					s.mu.Lock()
					if cur, ok := s.jobs[jobKey{ns, *j.ID}]; ok && cur.modifyIndex < index {
						delete(s.jobs, jobKey{ns, *j.ID})
					}
					s.mu.Unlock()
					continue
				case err != nil:
					s.log.Warn("read deregistered job", "job", *j.ID, "err", err)
				default:
					j = got
				}
			}
			s.upsertJob(j)
		case nomadapi.TopicAllocation:
			a, err := e.Allocation()
			if err != nil || a == nil {
				continue
			}
			s.mu.Lock()
			s.applyAllocLocked(allocUpdate{id: a.ID, ns: a.Namespace, job: a.JobID, group: a.TaskGroup, clientStatus: a.ClientStatus,
				desiredState: a.DesiredStatus, nodeID: a.NodeID, resources: a.AllocatedResources, modifyIndex: a.ModifyIndex})
			s.mu.Unlock()
		case nomadapi.TopicNode:
			if s.tracksNodes() {
				s.handleNodeEvent(index, e)
			}
		}
	}
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// upsertJob stores what the view needs of j, unless it holds a newer
// version.
func (s *ClusterState) upsertJob(j *nomadapi.Job) {
	if j == nil || j.ID == nil {
		return
	}
	ns := deref(j.Namespace)
	if ns == "" {
		ns = "default"
	}
	k := jobKey{ns, *j.ID}
	var idx uint64
	if j.ModifyIndex != nil {
		idx = *j.ModifyIndex
	}
	js := &jobState{modifyIndex: idx, stopped: j.Stop != nil && *j.Stop, groups: map[string]groupState{}}
	for _, tg := range j.TaskGroups {
		if tg == nil || tg.Name == nil {
			continue
		}
		g := groupState{}
		if tg.Count != nil {
			g.count = *tg.Count
		}
		g.cpuMHz, g.memMiB = history.GroupAllocation(tg)
		g.minHealthy = minHealthy(tg)
		js.groups[*tg.Name] = g
		if sp := tg.Scaling; sp != nil {
			cp := *sp
			// The job spec's copy may lack the target the policy endpoint
			// fills in; the reconciler keys policies by it.
			cp.Target = map[string]string{"Namespace": ns, "Job": *j.ID, "Group": *tg.Name}
			if cp.Type == "" {
				cp.Type = "horizontal"
			}
			js.policies = append(js.policies, &cp)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.jobs[k]; ok && cur.modifyIndex > idx {
		return
	}
	if len(js.policies) == 0 {
		delete(s.jobs, k)
		return
	}
	s.jobs[k] = js
}

func (s *ClusterState) applyAllocLocked(u allocUpdate) {
	id, clientStatus := u.id, u.clientStatus
	cur, known := s.allocs[id]
	if known && cur.modifyIndex > u.modifyIndex {
		return
	}
	key := reconciler.PolicyKey(u.ns, u.job, u.group)
	running := clientStatus == nomadapi.AllocClientStatusRunning
	if known && cur.running {
		s.running[cur.key]--
		if s.running[cur.key] <= 0 {
			delete(s.running, cur.key)
		}
	}
	terminal := clientStatus == nomadapi.AllocClientStatusComplete || clientStatus == nomadapi.AllocClientStatusFailed ||
		clientStatus == nomadapi.AllocClientStatusLost
	if terminal {
		// Terminal allocations never run again: forgetting them keeps the
		// view as large as the live cluster.
		delete(s.allocs, id)
		return
	}
	holds, cpu, mem := allocResources(clientStatus, u.desiredState, u.resources)
	s.allocs[id] = allocState{key: key, modifyIndex: u.modifyIndex, running: running, nodeID: u.nodeID, holds: holds, cpuMHz: cpu, memMiB: mem}
	if running {
		s.running[key]++
	}
}

// GroupStatus answers from the view: the group's count as desired and its
// running allocations.
func (s *ClusterState) GroupStatus(_ context.Context, namespace, job, group string) (reconciler.GroupStatus, error) {
	if namespace == "" {
		namespace = "default"
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if !s.isSynced {
		return reconciler.GroupStatus{}, ErrNotSynced
	}
	j, ok := s.jobs[jobKey{namespace, job}]
	if !ok || j.stopped {
		return reconciler.GroupStatus{}, nil
	}
	g, ok := j.groups[group]
	if !ok {
		return reconciler.GroupStatus{}, nil
	}
	running := s.running[reconciler.PolicyKey(namespace, job, group)]
	return reconciler.GroupStatus{Exists: true, Desired: g.count, Running: running, Pending: max(g.count-running, 0), MinHealthy: g.minHealthy}, nil
}

// jobFromEvent decodes a Job event's job as Nomad's JSON API has it. The
// api package's Event.Job decodes with mapstructure, whose names for many
// fields are the job file's (memory, max_parallel, min_healthy_time), not
// the JSON's: a job from an event would lose its tasks' memory and its
// groups' update blocks. A round trip through encoding/json keeps every
// field; Job events are one per job change, so it is cheap.
func jobFromEvent(e *nomadapi.Event) (*nomadapi.Job, error) {
	raw, ok := e.Payload["Job"]
	if !ok {
		return nil, nil
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return nil, fmt.Errorf("job event: %w", err)
	}
	var j nomadapi.Job
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("job event: %w", err)
	}
	return &j, nil
}

// minHealthy is how long a deployment of tg waits for a new allocation
// to run healthy: its update block's min_healthy_time, which Nomad's
// server fills in for every service group (job-level update merged in,
// 10 s by default). A group with no update block, or max_parallel 0, runs
// no deployments.
func minHealthy(tg *nomadapi.TaskGroup) time.Duration {
	u := tg.Update
	if u == nil || u.MaxParallel == nil || *u.MaxParallel <= 0 || u.MinHealthyTime == nil {
		return 0
	}
	return max(*u.MinHealthyTime, 0)
}

// GroupResources answers from the job spec the view holds.
func (s *ClusterState) GroupResources(_ context.Context, namespace, job, group string) (cpuMHz, memoryMiB float64, err error) {
	if namespace == "" {
		namespace = "default"
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if !s.isSynced {
		return 0, 0, ErrNotSynced
	}
	j, ok := s.jobs[jobKey{namespace, job}]
	if !ok {
		return 0, 0, fmt.Errorf("job %s: %w", job, ErrNoGroup)
	}
	g, ok := j.groups[group]
	if !ok {
		return 0, 0, fmt.Errorf("job %s has no group %s: %w", job, group, ErrNoGroup)
	}
	return g.cpuMHz, g.memMiB, nil
}

// ListPolicies returns every scaling policy of every job in the view,
// waiting for the first sync.
func (s *ClusterState) ListPolicies(ctx context.Context) ([]*nomadapi.ScalingPolicy, error) {
	if err := s.WaitSynced(ctx); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []*nomadapi.ScalingPolicy
	for _, j := range s.jobs {
		out = append(out, j.policies...)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].ID < out[b].ID })
	return out, nil
}

// JobPolicies returns the scaling policies of one job (none if it is
// gone), so a Job event re-reads one job's policies, not all of them.
func (s *ClusterState) JobPolicies(namespace, job string) []*nomadapi.ScalingPolicy {
	if namespace == "" {
		namespace = "default"
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	j, ok := s.jobs[jobKey{namespace, job}]
	if !ok {
		return nil
	}
	return append([]*nomadapi.ScalingPolicy(nil), j.policies...)
}

// Scale scales through the client and records the new count at once, at
// the index Nomad answered with, so the next reconcile does not read the
// old count before the Job event arrives.
func (s *ClusterState) Scale(ctx context.Context, r reconciler.ScaleRequest) error {
	idx, err := s.c.ScaleIndex(ctx, r)
	if err != nil || r.Count == nil {
		return err
	}
	ns := r.Namespace
	if ns == "" {
		ns = "default"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.jobs[jobKey{ns, r.Job}]
	if !ok || j.modifyIndex > idx {
		return nil
	}
	if g, ok := j.groups[r.Group]; ok {
		g.count = *r.Count
		j.groups[r.Group] = g
		j.modifyIndex = idx
	}
	return nil
}

// GroupCount implements history.GroupCounter from memory: the group's
// desired count (0 when the job or group is gone), with no request to
// Nomad per sample.
func (s *ClusterState) GroupCount(ctx context.Context, namespace, job, group string) (int, error) {
	st, err := s.GroupStatus(ctx, namespace, job, group)
	if err != nil {
		return 0, err
	}
	return st.Desired, nil
}
