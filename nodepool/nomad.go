package nodepool

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/nomadscalerd/nomadscalerd/nomad"
)

// DefaultInstanceTypeMeta is the node meta key naming a node's instance type.
const DefaultInstanceTypeMeta = "nomadscaler_instance_type"

// AWSInstanceIDAttribute is the node attribute Nomad's AWS fingerprint sets
// to the EC2 instance ID.
const AWSInstanceIDAttribute = "unique.platform.aws.instance-id"

// nodeFacts are the parts of a node only its full read returns.
type nodeFacts struct{ instanceType, instanceID string }

// NomadAdapter implements NomadView and Drainer on the Nomad HTTP API.
type NomadAdapter struct {
	client *nomadapi.Client
	// metaKey names the node meta holding the instance type.
	metaKey string

	mu sync.Mutex
	// facts caches node ID -> instance type and instance ID: the list
	// endpoint returns neither meta nor attributes, and they rarely change.
	facts map[string]nodeFacts

	// state, when set, answers PoolNodes from memory (see WithNodes).
	state NodeSource
}

// NodeSource is the daemon's cluster state (nomad.ClusterState): the
// nodes, kept current by the event stream, with what their allocations
// hold.
type NodeSource interface {
	Nodes(ctx context.Context) ([]nomad.Node, error)
}

// WithNodes makes PoolNodes read src instead of listing nodes and
// allocations from Nomad on every reconcile: a pool reconcile then sends
// Nomad no request at all.
func (a *NomadAdapter) WithNodes(src NodeSource) *NomadAdapter {
	a.state = src
	return a
}

// NewNomadAdapter wraps c; metaKey empty means DefaultInstanceTypeMeta.
func NewNomadAdapter(c *nomadapi.Client, metaKey string) *NomadAdapter {
	if metaKey == "" {
		metaKey = DefaultInstanceTypeMeta
	}
	return &NomadAdapter{client: c, metaKey: metaKey, facts: map[string]nodeFacts{}}
}

// PoolNodes implements NomadView with two list calls (nodes and
// allocations, both with resources) plus one node read per node not seen
// before, for its instance type and instance ID.
func (a *NomadAdapter) PoolNodes(ctx context.Context, sel Selector) ([]Node, error) {
	if a.state != nil {
		return a.stateNodes(ctx, sel)
	}
	q := (&nomadapi.QueryOptions{Params: map[string]string{"resources": "true"}}).WithContext(ctx)
	stubs, _, err := a.client.Nodes().List(q)
	if err != nil {
		return nil, fmt.Errorf("list nomad nodes: %w", err)
	}
	var picked []*nomadapi.NodeListStub
	for _, s := range stubs {
		if sel.Matches(Node{NodePool: s.NodePool, NodeClass: s.NodeClass, Datacenter: s.Datacenter}) {
			picked = append(picked, s)
		}
	}
	if len(picked) == 0 {
		return nil, nil
	}
	aq := (&nomadapi.QueryOptions{Params: map[string]string{"resources": "true"}}).WithContext(ctx)
	allocs, _, err := a.client.Allocations().List(aq)
	if err != nil {
		return nil, fmt.Errorf("list nomad allocations: %w", err)
	}
	byNode := map[string][]*nomadapi.AllocationListStub{}
	for _, al := range allocs {
		byNode[al.NodeID] = append(byNode[al.NodeID], al)
	}
	nodes := make([]Node, 0, len(picked))
	for _, s := range picked {
		f, err := a.nodeFacts(ctx, s.ID)
		if err != nil {
			return nil, err
		}
		n := NodeFromNomad(s, byNode[s.ID], f.instanceType)
		n.InstanceID = f.instanceID
		nodes = append(nodes, n)
	}
	return nodes, nil
}

// stateNodes is PoolNodes from the cluster state.
func (a *NomadAdapter) stateNodes(ctx context.Context, sel Selector) ([]Node, error) {
	all, err := a.state.Nodes(ctx)
	if err != nil {
		return nil, fmt.Errorf("nodes from the cluster state: %w", err)
	}
	var out []Node
	for _, s := range all {
		n := NodeFromState(s, a.metaKey)
		if sel.Matches(n) {
			out = append(out, n)
		}
	}
	return out, nil
}

// NodeFromState converts a node of the cluster state; metaKey names the
// node meta holding the instance type.
func NodeFromState(s nomad.Node, metaKey string) Node {
	return Node{
		ID: s.ID, Name: s.Name, Datacenter: s.Datacenter, NodePool: s.NodePool, NodeClass: s.NodeClass,
		InstanceType: s.Meta[metaKey], InstanceID: s.Attributes[AWSInstanceIDAttribute], Address: s.Address,
		Status: s.Status, Eligible: s.Eligible, Draining: s.Drain,
		Total:     Resources{CPUMHz: s.CPUMHz, MemoryMiB: s.MemoryMiB},
		Allocated: Resources{CPUMHz: s.AllocatedCPUMHz, MemoryMiB: s.AllocatedMemoryMiB},
	}
}

func (a *NomadAdapter) nodeFacts(ctx context.Context, id string) (nodeFacts, error) {
	a.mu.Lock()
	f, ok := a.facts[id]
	a.mu.Unlock()
	if ok {
		return f, nil
	}
	n, _, err := a.client.Nodes().Info(id, (&nomadapi.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return nodeFacts{}, fmt.Errorf("read nomad node %s: %w", id, err)
	}
	f = nodeFacts{instanceType: n.Meta[a.metaKey], instanceID: n.Attributes[AWSInstanceIDAttribute]}
	a.mu.Lock()
	a.facts[id] = f
	a.mu.Unlock()
	return f, nil
}

// ErrDrainOutcomeUnknown marks a drain request that failed without Nomad
// refusing it (a timeout, a lost connection, a 5xx): Nomad may have
// applied it, so the drain is left open for the node's state to settle.
var ErrDrainOutcomeUnknown = errors.New("the drain may have been applied")

// Drain implements Drainer; Nomad marks the node ineligible as it drains.
func (a *NomadAdapter) Drain(ctx context.Context, nodeID string, o DrainOptions) error {
	_, err := a.client.Nodes().UpdateDrainOpts(nodeID, &nomadapi.DrainOptions{
		DrainSpec: &nomadapi.DrainSpec{Deadline: o.Deadline, IgnoreSystemJobs: o.IgnoreSystemJobs},
		Meta:      o.Meta,
	}, (&nomadapi.WriteOptions{}).WithContext(ctx))
	if err != nil {
		// Only an answer below 500 says Nomad did not apply it.
		var resp nomadapi.UnexpectedResponseError
		if !errors.As(err, &resp) || resp.StatusCode() >= 500 {
			return fmt.Errorf("drain nomad node %s: %w: %w", nodeID, ErrDrainOutcomeUnknown, err)
		}
		return fmt.Errorf("drain nomad node %s: %w", nodeID, err)
	}
	return nil
}

// SetEligibility implements Drainer.
func (a *NomadAdapter) SetEligibility(ctx context.Context, nodeID string, eligible bool) error {
	if _, err := a.client.Nodes().ToggleEligibility(nodeID, eligible, (&nomadapi.WriteOptions{}).WithContext(ctx)); err != nil {
		return fmt.Errorf("set eligibility of nomad node %s: %w", nodeID, err)
	}
	return nil
}

// NodeFromNomad converts a node list stub (listed with resources=true) and
// the allocations placed on it. Total is node resources minus reserved;
// Allocated sums the allocated resources of non-terminal allocations, the
// same accounting the scheduler uses.
func NodeFromNomad(s *nomadapi.NodeListStub, allocs []*nomadapi.AllocationListStub, instanceType string) Node {
	n := Node{
		ID: s.ID, Name: s.Name, Datacenter: s.Datacenter, NodePool: s.NodePool, NodeClass: s.NodeClass,
		InstanceType: instanceType, Address: s.Address, Status: s.Status,
		Eligible: s.SchedulingEligibility == nomadapi.NodeSchedulingEligible, Draining: s.Drain,
	}
	if r := s.NodeResources; r != nil {
		n.Total = Resources{CPUMHz: r.Cpu.CpuShares, MemoryMiB: r.Memory.MemoryMB}
	}
	if r := s.ReservedResources; r != nil {
		n.Total = n.Total.Sub(Resources{CPUMHz: int64(r.Cpu.CpuShares), MemoryMiB: int64(r.Memory.MemoryMB)})
	}
	for _, al := range allocs {
		if !allocHoldsResources(al) || al.AllocatedResources == nil {
			continue
		}
		for _, t := range al.AllocatedResources.Tasks {
			if t != nil {
				n.Allocated = n.Allocated.Add(Resources{CPUMHz: t.Cpu.CpuShares, MemoryMiB: t.Memory.MemoryMB})
			}
		}
	}
	return n
}

func allocHoldsResources(a *nomadapi.AllocationListStub) bool {
	if a.DesiredStatus == nomadapi.AllocDesiredStatusStop || a.DesiredStatus == nomadapi.AllocDesiredStatusEvict {
		return false
	}
	switch a.ClientStatus {
	case nomadapi.AllocClientStatusComplete, nomadapi.AllocClientStatusFailed, nomadapi.AllocClientStatusLost:
		return false
	}
	return true
}

// QueuedFromEvaluation turns the failed task groups of an evaluation that
// left allocations blocked into queued work, taking each group's resources
// from job (the sum over its tasks).
func QueuedFromEvaluation(ev *nomadapi.Evaluation, job *nomadapi.Job) []QueuedGroup {
	var out []QueuedGroup
	groups := map[string]*nomadapi.TaskGroup{}
	if job != nil {
		for _, tg := range job.TaskGroups {
			if tg != nil && tg.Name != nil {
				groups[*tg.Name] = tg
			}
		}
	}
	names := make([]string, 0, len(ev.FailedTGAllocs))
	for name := range ev.FailedTGAllocs {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		m := ev.FailedTGAllocs[name]
		if m == nil {
			continue
		}
		q := QueuedGroup{Job: ev.JobID, Group: name, Count: max(m.CoalescedFailures+1, ev.QueuedAllocations[name]), Reason: failureReason(m)}
		if tg := groups[name]; tg != nil {
			q.Resources = taskGroupResources(tg)
		}
		out = append(out, q)
	}
	return out
}

// failureReason reads why placement failed: every evaluated node filtered
// out means no eligible nodes; otherwise the most often exhausted dimension.
func failureReason(m *nomadapi.AllocationMetric) FailureReason {
	if m.NodesExhausted == 0 && m.NodesFiltered >= m.NodesEvaluated {
		return ReasonNoEligibleNodes
	}
	best, count := "", -1
	for dim, n := range m.DimensionExhausted {
		if n > count || (n == count && dim < best) {
			best, count = dim, n
		}
	}
	switch {
	case best == "memory":
		return ReasonMemory
	case strings.Contains(best, "port") || strings.HasPrefix(best, "network"):
		return ReasonPorts
	default:
		return ReasonCPU
	}
}

var _ BlockedSource = (*NomadAdapter)(nil)

// BlockedEvaluations implements BlockedSource: every blocked evaluation in
// every namespace, in one filtered list call.
func (a *NomadAdapter) BlockedEvaluations(ctx context.Context) ([]*nomadapi.Evaluation, error) {
	q := (&nomadapi.QueryOptions{Namespace: "*", Filter: `Status == "blocked"`}).WithContext(ctx)
	evs, _, err := a.client.Evaluations().List(q)
	if err != nil {
		return nil, fmt.Errorf("list blocked evaluations: %w", err)
	}
	return evs, nil
}

// JobState implements BlockedSource with a job read and a summary read.
func (a *NomadAdapter) JobState(ctx context.Context, namespace, id string) (*nomadapi.Job, *nomadapi.JobSummary, error) {
	q := (&nomadapi.QueryOptions{Namespace: namespace}).WithContext(ctx)
	job, _, err := a.client.Jobs().Info(id, q)
	if err != nil {
		return nil, nil, fmt.Errorf("read job: %w", err)
	}
	summary, _, err := a.client.Jobs().Summary(id, q)
	if err != nil {
		return nil, nil, fmt.Errorf("read job summary: %w", err)
	}
	return job, summary, nil
}
