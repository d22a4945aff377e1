package nodepool

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// fakeNomad is an in-memory cluster: a node list the test edits, plus a
// drainer that marks nodes draining and ineligible as Nomad does.
type fakeNomad struct {
	mu         sync.Mutex
	nodes      map[string]*Node
	drains     map[string]DrainOptions
	eligible   map[string]bool // SetEligibility calls
	drainError error
	// drainApplied makes Drain apply the drain before returning
	// drainError, as a request Nomad applied whose answer was lost does.
	drainApplied bool
	// viewLags makes Drain succeed in Nomad without the node list showing
	// it, as the event-stream-fed cluster state does until the node's
	// event arrives.
	viewLags bool
}

func newFakeNomad(nodes ...Node) *fakeNomad {
	f := &fakeNomad{nodes: map[string]*Node{}, drains: map[string]DrainOptions{}, eligible: map[string]bool{}}
	for _, n := range nodes {
		f.add(n)
	}
	return f
}

func (f *fakeNomad) add(n Node) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nodes[n.ID] = &n
}

func (f *fakeNomad) edit(id string, fn func(*Node)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f.nodes[id])
}

func (f *fakeNomad) remove(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.nodes, id)
}

func (f *fakeNomad) PoolNodes(_ context.Context, sel Selector) ([]Node, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Node
	for _, n := range f.nodes {
		out = append(out, *n)
	}
	slices.SortFunc(out, func(a, b Node) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

func (f *fakeNomad) Drain(_ context.Context, id string, o DrainOptions) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.drainError != nil && !f.drainApplied {
		return f.drainError
	}
	f.drains[id] = o
	if !f.viewLags {
		f.nodes[id].Draining, f.nodes[id].Eligible = true, false
	}
	return f.drainError
}

func (f *fakeNomad) SetEligibility(_ context.Context, id string, eligible bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.eligible[id] = eligible
	if n, ok := f.nodes[id]; ok {
		n.Eligible = eligible
	}
	return nil
}

// fakeProvider records requests; terminations remove the node from Nomad.
type fakeProvider struct {
	mu         sync.Mutex
	nomad      *fakeNomad
	scaleOuts  []ScaleOutRequest
	terminated []string
	lastTerm   TerminateRequest
	termErr    error
}

func (p *fakeProvider) ScaleOut(_ context.Context, r ScaleOutRequest) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.scaleOuts = append(p.scaleOuts, r)
	return nil
}

func (p *fakeProvider) Terminate(_ context.Context, r TerminateRequest) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.termErr != nil {
		return p.termErr
	}
	p.terminated = append(p.terminated, r.NodeID)
	p.lastTerm = r
	p.nomad.remove(r.NodeID)
	return nil
}

func (p *fakeProvider) launched() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, r := range p.scaleOuts {
		n += r.Count
	}
	return n
}

// settableClock is a settable time source.
type settableClock struct{ t time.Time }

func (c *settableClock) now() time.Time          { return c.t }
func (c *settableClock) advance(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *settableClock {
	return &settableClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}
func poolNode(id string, total, alloc Resources) Node {
	return Node{ID: id, Name: "name-" + id, NodePool: "web", InstanceType: "small", Status: NodeStatusReady, Eligible: true, Total: total, Allocated: alloc}
}

func testPool() Pool {
	return Pool{
		Name: "web", Selector: Selector{NodePool: "web"}, Min: 1, Max: 20,
		Idle:                 IdlePolicy{CPUBelow: 0.4, MemoryBelow: 0.4, Periods: 2, Period: time.Minute},
		ScaleDownMaxFraction: 0.10,
		Drain:                DrainSpec{Deadline: 15 * time.Minute},
		InstanceTypes: []InstanceType{
			{Name: "small", Resources: Resources{CPUMHz: 4000, MemoryMiB: 2048}, Price: 1},
			{Name: "large", Resources: Resources{CPUMHz: 16000, MemoryMiB: 8192}, Price: 3.5},
		},
		ScaleOutGrace: 10 * time.Minute,
		Provider:      ProviderSpec{Kind: ProviderNoop},
	}
}

type harness struct {
	nomad    *fakeNomad
	provider *fakeProvider
	journal  *MemJournal
	idle     *MemIdleStore
	clock    *settableClock
	reg      *prometheus.Registry
	ctl      *Controller
}

func newHarness(t *testing.T, self string, nodes ...Node) *harness {
	t.Helper()
	h := &harness{nomad: newFakeNomad(nodes...), journal: NewMemJournal(), idle: NewMemIdleStore(), clock: newClock(), reg: prometheus.NewRegistry()}
	h.provider = &fakeProvider{nomad: h.nomad}
	h.restart(t, self)
	return h
}

// restart builds a fresh controller over the same durable state, as after
// a crash.
func (h *harness) restart(t *testing.T, self string) {
	t.Helper()
	m, err := NewMetrics(prometheus.NewRegistry())
	if h.ctl == nil {
		m, err = NewMetrics(h.reg)
	}
	if err != nil {
		t.Fatal(err)
	}
	h.ctl, err = NewController(Deps{Nomad: h.nomad, Drainer: h.nomad, Providers: map[string]Provider{"web": h.provider},
		Idle: h.idle, Journal: h.journal, Metrics: m, SelfNodeID: self, Now: h.clock.now})
	if err != nil {
		t.Fatal(err)
	}
}

// pending is the journal's unfinished entries.
func (h *harness) pending(t *testing.T) []Entry {
	t.Helper()
	pending, err := h.journal.Pending(context.Background())
	if err != nil {
		t.Fatalf("read journal: %v", err)
	}
	return pending
}

func (h *harness) reconcile(t *testing.T, p Pool) Decision {
	t.Helper()
	d, err := h.ctl.Reconcile(context.Background(), p)
	if err != nil {
		t.Fatalf("reconcile: %v (decision %+v)", err, d)
	}
	return d
}

var (
	unit     = Resources{CPUMHz: 1000, MemoryMiB: 512}
	testTime = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
)

func unitsNode(id string, free int64) Node {
	total := Resources{CPUMHz: 8000, MemoryMiB: 4096}
	return poolNode(id, total, total.Sub(Resources{CPUMHz: free * 1000, MemoryMiB: free * 512}))
}

func TestControllerWithFakeNomadScalesOutForHeadroomOnceUntilTheNodeJoins(t *testing.T) {
	p := testPool()
	p.Headroom = Headroom{Unit: unit, Units: 10}
	h := newHarness(t, "", unitsNode("a", 2), unitsNode("b", 3), unitsNode("c", 4))

	d := h.reconcile(t, p)
	if fmt.Sprint(d.ScaleOut) != "[{small false 1 1}]" || d.ScaleOutReason != ScaleOutHeadroom {
		t.Fatalf("decision %+v, want one small node for headroom", d)
	}
	if h.provider.launched() != 1 || !strings.Contains(d.Reason, "1 short") {
		t.Fatalf("launched %d, reason %q", h.provider.launched(), d.Reason)
	}
	// Level-triggered ticks while the node boots must not launch again.
	h.clock.advance(time.Minute)
	if d := h.reconcile(t, p); len(d.ScaleOut) != 0 || d.Headroom.Pending != 4 {
		t.Fatalf("second tick %+v, want no launch and 4 pending units", d)
	}
	h.nomad.add(Node{ID: "d", NodePool: "web", InstanceType: "small", Status: NodeStatusInitializing, Total: Resources{CPUMHz: 4000, MemoryMiB: 2048}})
	h.clock.advance(time.Minute)
	if d := h.reconcile(t, p); len(d.ScaleOut) != 0 {
		t.Fatalf("initializing node should count as pending, got %+v", d)
	}
	h.nomad.edit("d", func(n *Node) { n.Status, n.Eligible = NodeStatusReady, true })
	h.clock.advance(time.Minute)
	d = h.reconcile(t, p)
	if len(d.ScaleOut) != 0 || d.Headroom.Free != 13 {
		t.Fatalf("after join %+v, want 13 free units and no launch", d)
	}
	if pending := h.pending(t); len(pending) != 1 || pending[0].Phase != PhaseJoined {
		t.Fatalf("journal has %+v pending, want the scale-out settling", pending)
	}
	h.clock.advance(JoinSettle + time.Second)
	h.reconcile(t, p)
	if pending := h.pending(t); len(pending) != 0 {
		t.Fatalf("journal still has %+v pending after the settle", pending)
	}
	if got := testutil.ToFloat64(h.ctl.d.Metrics.scaleOut.WithLabelValues("web", "headroom")); got != 1 {
		t.Fatalf("scale_out_total{reason=headroom} = %v, want 1", got)
	}
	if got := testutil.ToFloat64(h.ctl.d.Metrics.headroom.WithLabelValues("web", "free")); got != 13 {
		t.Fatalf("headroom free gauge = %v, want 13", got)
	}
}

func TestControllerWithFakeNomadRelaunchesWhenLaunchedNodesNeverJoin(t *testing.T) {
	p := testPool()
	p.Headroom = Headroom{Unit: unit, Units: 10}
	h := newHarness(t, "", unitsNode("a", 9))
	h.reconcile(t, p)
	h.clock.advance(p.ScaleOutGrace + time.Minute)
	d := h.reconcile(t, p)
	if len(d.ScaleOut) != 1 || !strings.Contains(d.Reason, "only 0 of 1 launched nodes joined") {
		t.Fatalf("decision %+v, want the expired launch closed and a new one", d)
	}
}

func TestControllerWithFakeNomadScalesUpToMin(t *testing.T) {
	p := testPool()
	p.Min = 3
	h := newHarness(t, "", unitsNode("a", 0))
	d := h.reconcile(t, p)
	if LaunchCount(d.ScaleOut) != 2 || d.ScaleOutReason != ScaleOutMin {
		t.Fatalf("decision %+v, want two nodes for min", d)
	}
}

func idleNodes(n int) []Node {
	var nodes []Node
	for i := range n {
		nodes = append(nodes, poolNode(fmt.Sprintf("n%02d", i), Resources{CPUMHz: 4000, MemoryMiB: 4096}, Resources{CPUMHz: int64(100 * (i + 1)), MemoryMiB: 256}))
	}
	return nodes
}

func TestControllerWithFakeNomadDrainsTheLeastLoadedIdleNodeThenTerminatesIt(t *testing.T) {
	p := testPool()
	h := newHarness(t, "", idleNodes(10)...)
	for range 2 {
		if d := h.reconcile(t, p); len(d.Drains) != 0 {
			t.Fatalf("drained %+v before the node was idle for 2 periods", d.Drains)
		}
		h.clock.advance(time.Minute)
	}
	d := h.reconcile(t, p)
	if len(d.Drains) != 1 || d.Drains[0].NodeID != "n00" {
		t.Fatalf("drains %+v, want only the least loaded n00 (cap 1 of 10)", d.Drains)
	}
	opts := h.nomad.drains["n00"]
	if opts.Deadline != 15*time.Minute || opts.Meta["drained_by"] != "nomadscalerd" {
		t.Fatalf("drain options %+v", opts)
	}
	h.clock.advance(time.Minute)
	if d := h.reconcile(t, p); len(d.Drains) != 0 {
		t.Fatalf("drained %+v while n00 still drains (cap 1)", d.Drains)
	}
	h.nomad.edit("n00", func(n *Node) { n.Draining, n.Allocated = false, Resources{} })
	h.clock.advance(time.Minute)
	d = h.reconcile(t, p)
	if !slices.Equal(h.provider.terminated, []string{"n00"}) {
		t.Fatalf("terminated %v, want n00 (decision %q)", h.provider.terminated, d.Reason)
	}
	if got := testutil.ToFloat64(h.ctl.d.Metrics.drains.WithLabelValues("web")); got != 1 {
		t.Fatalf("drains_total = %v, want 1", got)
	}
}

func TestControllerWithFakeNomadFinishesAnInFlightDrainAfterRestart(t *testing.T) {
	for phase, why := range map[Phase]string{PhaseDraining: "drain complete", PhaseTerminating: "termination was interrupted"} {
		t.Run(string(phase), func(t *testing.T) {
			p := testPool()
			h := newHarness(t, "", idleNodes(3)...)
			h.nomad.edit("n01", func(n *Node) { n.Eligible = false }) // drained, not yet terminated
			_ = h.journal.Append(context.Background(), Entry{ID: "x", Pool: "web", Kind: KindDrain, Phase: phase, NodeID: "n01", NodeName: "name-n01", At: h.clock.now()})
			h.restart(t, "")
			d := h.reconcile(t, p)
			if !strings.Contains(d.Reason, why) {
				t.Fatalf("reason %q, want %q", d.Reason, why)
			}
			if !slices.Equal(h.provider.terminated, []string{"n01"}) {
				t.Fatalf("terminated %v, want n01", h.provider.terminated)
			}
			if e, _ := h.journal.Latest("x"); e.Phase != PhaseTerminated {
				t.Fatalf("journal entry %+v, want terminated", e)
			}
			h.reconcile(t, p) // the fake provider removed the node
			if e, _ := h.journal.Latest("x"); e.Phase != PhaseDone {
				t.Fatalf("journal entry %+v, want done", e)
			}
		})
	}
}

func TestControllerWithFakeNomadCountsTerminatedNodesAgainstTheCapUntilGone(t *testing.T) {
	p := testPool()
	h := newHarness(t, "", idleNodes(10)...)
	// n00 was terminated but Nomad still lists it (ready, ineligible).
	h.nomad.edit("n00", func(n *Node) { n.Eligible = false })
	_ = h.journal.Append(context.Background(), Entry{ID: "x", Pool: "web", Kind: KindDrain, Phase: PhaseTerminated, NodeID: "n00", At: h.clock.now()})
	var d Decision
	for range 3 {
		d = h.reconcile(t, p)
		h.clock.advance(time.Minute)
	}
	if len(d.Drains) != 0 || !strings.Contains(d.Reason, "not gone yet") {
		t.Fatalf("decision %+v, want no drain while the terminated node lingers", d)
	}
	h.nomad.edit("n00", func(n *Node) { n.Status = NodeStatusDown })
	d = h.reconcile(t, p)
	if len(d.Drains) != 1 {
		t.Fatalf("decision %+v, want a drain once the terminated node is down", d)
	}
}

func TestControllerWithFakeNomadMakesANodeEligibleAgainWhenTerminationFails(t *testing.T) {
	p := testPool()
	h := newHarness(t, "", idleNodes(3)...)
	h.nomad.edit("n01", func(n *Node) { n.Eligible = false })
	_ = h.journal.Append(context.Background(), Entry{ID: "x", Pool: "web", Kind: KindDrain, Phase: PhaseDraining, NodeID: "n01", At: h.clock.now()})
	h.provider.termErr = errors.New("cloud says no")
	d, err := h.ctl.Reconcile(context.Background(), p)
	if err == nil || !strings.Contains(err.Error(), "cloud says no") || len(d.Errors) == 0 {
		t.Fatalf("err = %v, want the termination failure", err)
	}
	if !h.nomad.eligible["n01"] || !h.nomad.nodes["n01"].Eligible {
		t.Fatal("node n01 was not made eligible again")
	}
	if e, _ := h.journal.Latest("x"); e.Phase != PhaseFailed {
		t.Fatalf("journal entry %+v, want failed", e)
	}
}

func TestControllerWithFakeNomadClosesADrainAnOperatorCancelled(t *testing.T) {
	p := testPool()
	h := newHarness(t, "", idleNodes(3)...)
	_ = h.journal.Append(context.Background(), Entry{ID: "x", Pool: "web", Kind: KindDrain, Phase: PhaseDraining, NodeID: "n01", At: h.clock.now()})
	h.reconcile(t, p)
	// Within the settle the eligible node may be a view that has not
	// seen the drain yet.
	if e, _ := h.journal.Latest("x"); e.Phase != PhaseDraining {
		t.Fatalf("journal entry %+v within the drain settle, want still draining", e)
	}
	h.clock.advance(DrainSettle)
	h.reconcile(t, p)
	if len(h.provider.terminated) != 0 {
		t.Fatalf("terminated %v a node whose drain was cancelled", h.provider.terminated)
	}
	if e, _ := h.journal.Latest("x"); e.Phase != PhaseDone {
		t.Fatalf("journal entry %+v, want done", e)
	}
}

func TestControllerWithFakeNomadNeverDrainsItsOwnNode(t *testing.T) {
	p := testPool()
	p.Min = 0
	p.ScaleDownMaxFraction = 1
	h := newHarness(t, "n00", idleNodes(2)...)
	var d Decision
	for range 3 {
		d = h.reconcile(t, p)
		h.clock.advance(time.Minute)
	}
	for _, dr := range d.Drains {
		if dr.NodeID == "n00" {
			t.Fatalf("drained its own node: %+v", d.Drains)
		}
	}
	if len(d.Drains) != 1 {
		t.Fatalf("drains %+v, want n01 only", d.Drains)
	}
}

func TestControllerWithFakeNomadKeepsHeadroomOverDrains(t *testing.T) {
	p := testPool()
	p.Min = 0
	p.ScaleDownMaxFraction = 1
	p.Headroom = Headroom{Unit: unit, Units: 6}
	// Two empty 4-unit nodes: draining either leaves 4 < 6.
	empty := func(id string) Node {
		return poolNode(id, Resources{CPUMHz: 4000, MemoryMiB: 2048}, Resources{})
	}
	h := newHarness(t, "", empty("a"), empty("b"))
	var d Decision
	for range 3 {
		d = h.reconcile(t, p)
		h.clock.advance(time.Minute)
	}
	if len(d.Drains) != 0 || !strings.Contains(d.Reason, "below the required 6") {
		t.Fatalf("decision %+v, want no drain because of headroom", d)
	}
}

func TestControllerWithFakeNomadPlanDecidesWithoutActing(t *testing.T) {
	p := testPool()
	p.Headroom = Headroom{Unit: unit, Units: 10}
	h := newHarness(t, "", unitsNode("a", 2))
	d, err := h.ctl.Plan(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.ScaleOut) == 0 || d.Acted {
		t.Fatalf("plan %+v, want a scale out that was not acted on", d)
	}
	pending := h.pending(t)
	idle, _ := h.idle.LoadIdle(context.Background(), "web")
	if h.provider.launched() != 0 || len(pending) != 0 || len(idle.Nodes) != 0 {
		t.Fatalf("plan acted: launched %d, journal %v, idle %v", h.provider.launched(), pending, idle)
	}
}

func TestControllerWithFakeNomadOnBlockedLaunchesAtOnceAndReportsUnplaceable(t *testing.T) {
	p := testPool()
	h := newHarness(t, "", unitsNode("a", 0))
	queued := []QueuedGroup{
		{Job: "api", Group: "web", Count: 6, Resources: Resources{CPUMHz: 2000, MemoryMiB: 1024}, Reason: ReasonCPU},
		{Job: "db", Group: "big", Count: 1, Resources: Resources{CPUMHz: 64000, MemoryMiB: 1024}, Reason: ReasonCPU},
	}
	d, err := h.ctl.OnBlocked(context.Background(), p, queued)
	if err != nil {
		t.Fatal(err)
	}
	// 6×2000 MHz fits one large (3.5) or three small (3.0): three small.
	if fmt.Sprint(d.ScaleOut) != "[{small false 3 1}]" || h.provider.launched() != 3 {
		t.Fatalf("decision %+v, want three small nodes", d)
	}
	if len(d.Unplaceable) != 1 || d.Unplaceable[0].Job != "db" {
		t.Fatalf("unplaceable %+v, want db/big", d.Unplaceable)
	}
	// The same blocked evaluation again packs into the launching nodes.
	d, err = h.ctl.OnBlocked(context.Background(), p, queued[:1])
	if err != nil {
		t.Fatal(err)
	}
	if len(d.ScaleOut) != 0 || h.provider.launched() != 3 {
		t.Fatalf("repeat decision %+v launched again", d)
	}
	if got := testutil.ToFloat64(h.ctl.d.Metrics.scaleOut.WithLabelValues("web", "blocked")); got != 3 {
		t.Fatalf("scale_out_total{reason=blocked} = %v, want 3", got)
	}
}

func TestControllerWithFakeNomadOnBlockedLaunchesOnceWhileTheLaunchedNodeJoinsAndNomadPlacesTheWork(t *testing.T) {
	p := testPool()
	h := newHarness(t, "", unitsNode("a", 0))
	queued := []QueuedGroup{{Job: "api", Group: "web", Count: 2, Resources: Resources{CPUMHz: 2000, MemoryMiB: 512}, Reason: ReasonCPU}}
	blocked := func(when string) Decision {
		t.Helper()
		d, err := h.ctl.OnBlocked(context.Background(), p, queued)
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		return d
	}
	if d := blocked("first blocked evaluation"); LaunchCount(d.ScaleOut) != 1 {
		t.Fatalf("decision %+v, want one small node", d)
	}
	// The queued work stays in Nomad's blocked evaluations and job summary
	// while the node registers, fingerprints, and until the scheduler has
	// placed the work on it: none of these listings launches again.
	small := Resources{CPUMHz: 4000, MemoryMiB: 2048}
	h.nomad.add(Node{ID: "d", NodePool: "web", InstanceType: "small", Status: NodeStatusInitializing, Total: small})
	h.clock.advance(time.Second)
	h.reconcile(t, p)
	if d := blocked("node initializing"); len(d.ScaleOut) != 0 {
		t.Fatalf("launched again while the node initializes: %+v", d)
	}
	h.nomad.edit("d", func(n *Node) { n.Status, n.Eligible = NodeStatusReady, true })
	h.clock.advance(time.Second)
	h.reconcile(t, p)
	if d := blocked("node ready, work not placed yet"); len(d.ScaleOut) != 0 {
		t.Fatalf("launched again before Nomad placed the work on the ready node: %+v", d)
	}
	if h.provider.launched() != 1 {
		t.Fatalf("launched %d nodes, want 1", h.provider.launched())
	}
	// Work still queued after the settle did not fit the new node after
	// all (constraints, say): it is launched for again.
	h.clock.advance(JoinSettle + time.Second)
	h.reconcile(t, p)
	if d := blocked("after the settle"); LaunchCount(d.ScaleOut) != 1 {
		t.Fatalf("decision %+v after the settle, want one more node", d)
	}
}

func TestControllerWithFakeNomadMarksAFailedDrainEligibleAgain(t *testing.T) {
	p := testPool()
	h := newHarness(t, "", idleNodes(10)...)
	h.nomad.drainError = errors.New("permission denied")
	var err error
	for range 3 {
		_, err = h.ctl.Reconcile(context.Background(), p)
		h.clock.advance(time.Minute)
	}
	if err == nil || !h.nomad.eligible["n00"] {
		t.Fatalf("err = %v, eligible calls %v; want the drain error and n00 eligible", err, h.nomad.eligible)
	}
	if pending := h.pending(t); len(pending) != 0 {
		t.Fatalf("failed drain left %+v pending", pending)
	}
}

func TestControllerWithFakeNomadKeepsTwoLaunchesAtTheSameInstantApart(t *testing.T) {
	p := testPool()
	h := newHarness(t, "", unitsNode("a", 0))
	q := func(n int) []QueuedGroup {
		return []QueuedGroup{{Job: "api", Group: "web", Count: n, Resources: Resources{CPUMHz: 4000, MemoryMiB: 1024}, Reason: ReasonCPU}}
	}
	for _, n := range []int{1, 2} {
		if _, err := h.ctl.OnBlocked(context.Background(), p, q(n)); err != nil {
			t.Fatal(err)
		}
	}
	pending := h.pending(t)
	launching := 0
	for _, e := range pending {
		launching += e.Count
	}
	if len(pending) != 2 || launching != 2 || h.provider.launched() != 2 {
		t.Fatalf("journal %+v, launched %d; want two entries for two nodes", pending, h.provider.launched())
	}
}

// mixedFakeProvider launches a spot request into a spot group with room for
// spotRoom nodes and the rest on demand, as the AWS provider does; while
// onDemandErr is set the on-demand part fails and the spot nodes already
// launched are reported in a *PartialScaleOutError.
type mixedFakeProvider struct {
	fakeProvider
	spotRoom    int
	onDemandErr error
	// running counts the nodes actually launched, spot and on demand.
	running int
}

func (p *mixedFakeProvider) ScaleOut(_ context.Context, r ScaleOutRequest) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.scaleOuts = append(p.scaleOuts, r)
	spot := 0
	if r.Spot {
		spot = min(r.Count, p.spotRoom)
	}
	p.spotRoom -= spot
	p.running += spot
	if rest := r.Count - spot; rest > 0 {
		if p.onDemandErr != nil {
			return &PartialScaleOutError{Spot: spot, Err: p.onDemandErr}
		}
		p.running += rest
	}
	return nil
}

func TestControllerWithFakeProviderCountsTheSpotNodesOfAPartlyFailedLaunchAsPendingSoItNeitherRelaunchesThemNorPassesMax(t *testing.T) {
	p := testPool()
	p.Max = 3 // one node now: room for two more
	p.InstanceTypes[0].SpotPrice, p.SpotMaxShare = 0.4, 1
	h := newHarness(t, "", unitsNode("a", 0))
	pr := &mixedFakeProvider{fakeProvider: fakeProvider{nomad: h.nomad}, spotRoom: 1, onDemandErr: errors.New("on-demand group: access denied")}
	h.ctl.d.Providers = map[string]Provider{"web": pr}
	queued := []QueuedGroup{{Job: "api", Group: "web", Count: 2, Resources: Resources{CPUMHz: 4000, MemoryMiB: 1024}, Reason: ReasonCPU}}

	d, err := h.ctl.OnBlocked(context.Background(), p, queued)
	if err == nil || !strings.Contains(err.Error(), "access denied") {
		t.Fatalf("err = %v, want the on-demand failure", err)
	}
	if LaunchCount(d.ScaleOut) != 2 || pr.running != 1 {
		t.Fatalf("decision %+v, running %d: want two asked for and the one spot node launched", d, pr.running)
	}
	pending := 0
	for _, e := range h.pending(t) {
		pending += e.Count
	}
	if pending != 1 {
		t.Fatalf("journal has %d nodes pending (%+v), want the one spot node that launched", pending, h.pending(t))
	}

	// The runner retries the blocked work once the on-demand group works.
	pr.onDemandErr = nil
	d, err = h.ctl.OnBlocked(context.Background(), p, queued)
	if err != nil {
		t.Fatal(err)
	}
	if LaunchCount(d.ScaleOut) != 1 {
		t.Fatalf("retry launched %s, want only the one node that failed", describeLaunches(d.ScaleOut))
	}
	if nodes := 1 + pr.running; nodes > p.Max {
		t.Fatalf("pool has %d nodes running or launched, past its max %d", nodes, p.Max)
	}
}

func TestControllerWithFakeNomadKeepsADrainItJustStartedOpenUntilTheLaggingViewShowsItAndThenTerminatesTheNode(t *testing.T) {
	p := testPool()
	h := newHarness(t, "", idleNodes(10)...)
	h.nomad.viewLags = true
	for range 2 {
		h.reconcile(t, p)
		h.clock.advance(time.Minute)
	}
	if d := h.reconcile(t, p); len(d.Drains) != 1 || d.Drains[0].NodeID != "n00" {
		t.Fatalf("drains %+v, want n00", d.Drains)
	}
	pending := h.pending(t)
	if len(pending) != 1 {
		t.Fatalf("journal has %+v pending, want n00's drain", pending)
	}
	drain := pending[0].ID
	// A blocked allocation launches a node meanwhile, so no reconcile
	// drains again until it joins: nothing else would track n00.
	queued := []QueuedGroup{{Job: "api", Group: "web", Count: 1, Resources: Resources{CPUMHz: 2000, MemoryMiB: 512}, Reason: ReasonCPU}}
	if _, err := h.ctl.OnBlocked(context.Background(), p, queued); err != nil {
		t.Fatal(err)
	}
	// One pool interval later the view still shows n00 as before the
	// drain: eligible and not draining.
	h.clock.advance(10 * time.Second)
	d := h.reconcile(t, p)
	if e, _ := h.journal.Latest(drain); e.Phase != PhaseDraining {
		t.Fatalf("drain entry %+v (reason %q), want it still draining: the view has not caught up yet", e, d.Reason)
	}
	h.nomad.viewLags = false
	h.nomad.edit("n00", func(n *Node) { n.Draining, n.Eligible = true, false })
	h.clock.advance(time.Minute)
	h.reconcile(t, p)
	h.nomad.edit("n00", func(n *Node) { n.Draining, n.Allocated = false, Resources{} })
	h.clock.advance(time.Minute)
	d = h.reconcile(t, p)
	if !slices.Equal(h.provider.terminated, []string{"n00"}) {
		t.Fatalf("terminated %v, want n00 once its drain finished (reason %q)", h.provider.terminated, d.Reason)
	}
}

func TestADrainWhoseAnswerWasLostStaysOpenAndItsNodeIsTerminatedOrReleasedAsFakeNomadShows(t *testing.T) {
	for _, applied := range []bool{true, false} {
		t.Run(fmt.Sprintf("applied=%v", applied), func(t *testing.T) {
			p := testPool()
			h := newHarness(t, "", idleNodes(10)...)
			h.nomad.drainError = fmt.Errorf("context deadline exceeded: %w", ErrDrainOutcomeUnknown)
			h.nomad.drainApplied = applied
			var err error
			for range 3 {
				_, err = h.ctl.Reconcile(context.Background(), p)
				h.clock.advance(time.Minute)
			}
			if !errors.Is(err, ErrDrainOutcomeUnknown) || len(h.nomad.eligible) != 0 {
				t.Fatalf("err = %v, eligibility calls %v; want the unknown outcome reported and no eligibility change", err, h.nomad.eligible)
			}
			pending := h.pending(t)
			if len(pending) != 1 || pending[0].Kind != KindDrain || pending[0].Phase != PhaseDraining || pending[0].NodeID != "n00" {
				t.Fatalf("pending %+v, want n00's drain kept open", pending)
			}
			h.nomad.drainError = nil
			if applied {
				// Nomad drained it: once empty, it is terminated.
				h.nomad.edit("n00", func(n *Node) { n.Draining, n.Allocated = false, Resources{} })
				h.reconcile(t, p)
				if !slices.Equal(h.provider.terminated, []string{"n00"}) {
					t.Fatalf("terminated %v, want the drained n00", h.provider.terminated)
				}
				// The provider is told when the drain began, so an
				// instance found by a reused address is not taken for it.
				if got := h.provider.lastTerm.DrainedSince; got.IsZero() || !got.Equal(pending[0].DrainStarted) {
					t.Fatalf("termination's DrainedSince %v, want the drain's start %v", got, pending[0].DrainStarted)
				}
				return
			}
			// Nomad never drained it: the drain is closed once the settle
			// has passed, and the node stays.
			h.clock.advance(DrainSettle)
			h.reconcile(t, p)
			if len(h.provider.terminated) != 0 {
				t.Fatalf("terminated %v, want none", h.provider.terminated)
			}
			for _, e := range h.pending(t) {
				if e.NodeID == "n00" && e.Kind == KindDrain && e.At.Before(h.clock.now().Add(-DrainSettle)) {
					t.Fatalf("n00's unapplied drain still open after the settle: %+v", e)
				}
			}
		})
	}
}
