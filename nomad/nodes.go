package nomad

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	nomadapi "github.com/hashicorp/nomad/api"
	"golang.org/x/sync/errgroup"
)

// Node is what the cluster state keeps of a Nomad client node: what node
// pools select, count and drain by.
type Node struct {
	ID, Name, Datacenter, NodePool, NodeClass string
	// Address is the node's IP (the attribute unique.network.ip-address,
	// as Nomad's node list shows it).
	Address string
	Status  string
	// Drain is set while the node drains; Eligible while the scheduler
	// may place work on it.
	Drain, Eligible bool
	// CPUMHz and MemoryMiB are allocatable: node resources minus reserved.
	CPUMHz, MemoryMiB int64
	// AllocatedCPUMHz and AllocatedMemoryMiB sum the task resources of the
	// allocations on the node that hold resources (not terminal, not
	// told to stop), as the scheduler accounts them.
	AllocatedCPUMHz, AllocatedMemoryMiB int64
	// Meta is the node's metadata; Attributes holds only the cloud
	// platform's (platform.* and unique.platform.*: instance type and ID),
	// not the hundred-odd others a node fingerprints.
	Meta, Attributes map[string]string
	ModifyIndex      uint64
}

// ErrNodesNotTracked is returned by Nodes of a view built without
// TrackNodes.
var ErrNodesNotTracked = errors.New("cluster state does not track nodes")

// TrackNodes makes the view keep the client nodes too (node pools read
// them); call it before the first Sync. Without it the view lists no node
// and ignores Node events, so a token without node read access works.
func (s *ClusterState) TrackNodes() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.nodes == nil {
		s.nodes = map[string]*Node{}
	}
}

func (s *ClusterState) tracksNodes() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.nodes != nil
}

// keepAttribute says which node attributes the view keeps.
func keepAttribute(k string) bool {
	return strings.HasPrefix(k, "platform.") || strings.HasPrefix(k, "unique.platform.")
}

// ipAttribute is the node attribute Nomad's node list shows as Address.
const ipAttribute = "unique.network.ip-address"

func nodeFromNomad(n *nomadapi.Node) Node {
	out := Node{ID: n.ID, Name: n.Name, Datacenter: n.Datacenter, NodePool: n.NodePool, NodeClass: n.NodeClass,
		Address: n.Attributes[ipAttribute], Status: n.Status, Drain: n.Drain,
		Eligible: n.SchedulingEligibility == nomadapi.NodeSchedulingEligible, ModifyIndex: n.ModifyIndex,
		Meta: map[string]string{}, Attributes: map[string]string{}}
	if r := n.NodeResources; r != nil {
		out.CPUMHz, out.MemoryMiB = r.Cpu.CpuShares, r.Memory.MemoryMB
	}
	if r := n.ReservedResources; r != nil {
		out.CPUMHz -= int64(r.Cpu.CpuShares)
		out.MemoryMiB -= int64(r.Memory.MemoryMB)
	}
	for k, v := range n.Meta {
		out.Meta[k] = v
	}
	for k, v := range n.Attributes {
		if keepAttribute(k) {
			out.Attributes[k] = v
		}
	}
	return out
}

// syncNodes lists the nodes and reads in full each one whose ModifyIndex
// changed since the view last saw it (every node the first time: the list
// carries neither meta nor attributes); nodes the list no longer shows
// leave, unless an event newer than the list brought them in.
func (s *ClusterState) syncNodes(ctx context.Context) error {
	stubs, meta, err := s.c.api.Nodes().List((&nomadapi.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return fmt.Errorf("list nodes: %w", err)
	}
	listed := map[string]bool{}
	var stale []string
	s.mu.RLock()
	for _, n := range stubs {
		listed[n.ID] = true
		if cur, ok := s.nodes[n.ID]; !ok || cur.ModifyIndex < n.ModifyIndex {
			stale = append(stale, n.ID)
		}
	}
	s.mu.RUnlock()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(syncParallel)
	for _, id := range stale {
		g.Go(func() error {
			n, _, err := s.c.api.Nodes().Info(id, (&nomadapi.QueryOptions{}).WithContext(gctx))
			if isNotFound(err) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("get node %s: %w", id, err)
			}
			s.upsertNode(n)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, n := range s.nodes {
		if !listed[id] && n.ModifyIndex <= meta.LastIndex {
			delete(s.nodes, id)
		}
	}
	return nil
}

// upsertNode stores n unless the view holds a newer version.
func (s *ClusterState) upsertNode(n *nomadapi.Node) {
	if n == nil || n.ID == "" {
		return
	}
	v := nodeFromNomad(n)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.nodes == nil {
		return
	}
	if cur, ok := s.nodes[n.ID]; ok && cur.ModifyIndex > v.ModifyIndex {
		return
	}
	s.nodes[n.ID] = &v
}

// handleNodeEvent applies one Node topic event: every type but a
// deregistration carries the whole node.
func (s *ClusterState) handleNodeEvent(index uint64, e *nomadapi.Event) {
	n, err := e.Node()
	if err != nil || n == nil || n.ID == "" {
		return
	}
	if e.Type == "NodeDeregistration" {
		s.mu.Lock()
		if cur, ok := s.nodes[n.ID]; ok && cur.ModifyIndex <= index {
			delete(s.nodes, n.ID)
		}
		s.mu.Unlock()
		return
	}
	s.upsertNode(n)
}

// Nodes returns every client node in the view, sorted by ID, with the
// resources its allocations hold, waiting for the first sync: node pools
// read it instead of listing nodes and allocations on every reconcile.
func (s *ClusterState) Nodes(ctx context.Context) ([]Node, error) {
	if err := s.WaitSynced(ctx); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.nodes == nil {
		return nil, ErrNodesNotTracked
	}
	type held struct{ cpu, mem int64 }
	byNode := map[string]held{}
	for _, a := range s.allocs {
		if a.holds {
			h := byNode[a.nodeID]
			h.cpu += a.cpuMHz
			h.mem += a.memMiB
			byNode[a.nodeID] = h
		}
	}
	out := make([]Node, 0, len(s.nodes))
	for _, n := range s.nodes {
		c := *n
		c.Meta, c.Attributes = cloneMap(n.Meta), cloneMap(n.Attributes)
		h := byNode[n.ID]
		c.AllocatedCPUMHz, c.AllocatedMemoryMiB = h.cpu, h.mem
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func cloneMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// allocResources is what an allocation holds of its node: the sum of its
// tasks' allocated CPU and memory, and whether it holds them at all
// (terminal allocations and those told to stop do not).
func allocResources(clientStatus, desiredStatus string, r *nomadapi.AllocatedResources) (holds bool, cpuMHz, memMiB int64) {
	if desiredStatus == nomadapi.AllocDesiredStatusStop || desiredStatus == nomadapi.AllocDesiredStatusEvict {
		return false, 0, 0
	}
	switch clientStatus {
	case nomadapi.AllocClientStatusComplete, nomadapi.AllocClientStatusFailed, nomadapi.AllocClientStatusLost:
		return false, 0, 0
	}
	if r != nil {
		for _, t := range r.Tasks {
			if t != nil {
				cpuMHz += t.Cpu.CpuShares
				memMiB += t.Memory.MemoryMB
			}
		}
	}
	return true, cpuMHz, memMiB
}
