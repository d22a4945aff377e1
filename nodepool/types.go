package nodepool

// Resources is an amount of CPU and memory in the units Nomad schedules.
type Resources struct {
	CPUMHz    int64 `json:"cpu_mhz"`
	MemoryMiB int64 `json:"memory_mib"`
}

// Add returns r+o.
func (r Resources) Add(o Resources) Resources {
	return Resources{CPUMHz: r.CPUMHz + o.CPUMHz, MemoryMiB: r.MemoryMiB + o.MemoryMiB}
}

// Sub returns r-o; it can be negative when a node is over-committed.
func (r Resources) Sub(o Resources) Resources {
	return Resources{CPUMHz: r.CPUMHz - o.CPUMHz, MemoryMiB: r.MemoryMiB - o.MemoryMiB}
}

// FitsIn reports whether r fits in capacity c in every dimension.
func (r Resources) FitsIn(c Resources) bool {
	return r.CPUMHz <= c.CPUMHz && r.MemoryMiB <= c.MemoryMiB
}

// NodeStatusReady and NodeStatusDown are the Nomad node statuses the pool
// logic distinguishes; anything else (initializing, disconnected) is neither
// schedulable nor gone.
const (
	NodeStatusReady = "ready"
	NodeStatusDown  = "down"
)

// Node is what the pool logic needs to know about one Nomad client node.
// Total is the allocatable capacity (node resources minus reserved) and
// Allocated is the sum of the resources of its non-terminal allocations, as
// Nomad accounts them (allocated, not used).
type Node struct {
	ID           string
	Name         string
	Datacenter   string
	NodePool     string
	NodeClass    string
	InstanceType string // from node meta; empty when unknown
	// InstanceID is the cloud instance behind the node, from the node
	// attribute AWSInstanceIDAttribute; empty off AWS. Address is the
	// node's IP, which providers match on when InstanceID is empty.
	InstanceID string
	Address    string
	Status     string
	Eligible   bool
	Draining   bool
	Total      Resources
	Allocated  Resources
}

// Schedulable reports whether Nomad may place new work on the node: the only
// nodes whose free capacity counts as headroom.
func (n Node) Schedulable() bool {
	return n.Status == NodeStatusReady && n.Eligible && !n.Draining
}

// Free is the capacity Nomad can still allocate on the node, never negative.
func (n Node) Free() Resources {
	f := n.Total.Sub(n.Allocated)
	return Resources{CPUMHz: max(f.CPUMHz, 0), MemoryMiB: max(f.MemoryMiB, 0)}
}

// Utilization returns the allocated fraction of CPU and memory; a node
// reporting no capacity counts as fully used so it is never thought idle.
func (n Node) Utilization() (cpu, mem float64) {
	cpu, mem = 1, 1
	if n.Total.CPUMHz > 0 {
		cpu = float64(n.Allocated.CPUMHz) / float64(n.Total.CPUMHz)
	}
	if n.Total.MemoryMiB > 0 {
		mem = float64(n.Allocated.MemoryMiB) / float64(n.Total.MemoryMiB)
	}
	return cpu, mem
}

// load orders drain candidates: the larger of the two utilizations.
func (n Node) load() float64 {
	c, m := n.Utilization()
	return max(c, m)
}

// Selector picks the nodes of a pool; every non-empty field must match.
type Selector struct {
	NodePool   string
	NodeClass  string
	Datacenter string
}

// Matches reports whether n belongs to the pool selected by s.
func (s Selector) Matches(n Node) bool {
	return (s.NodePool == "" || s.NodePool == n.NodePool) &&
		(s.NodeClass == "" || s.NodeClass == n.NodeClass) &&
		(s.Datacenter == "" || s.Datacenter == n.Datacenter)
}

// InstanceType is a kind of machine a provider can launch into the pool.
// SpotPrice zero means no spot offering; Max zero means no per-type limit.
type InstanceType struct {
	Name      string
	Resources Resources
	Price     float64
	SpotPrice float64
	Max       int
}

// Launch is a request to start Count nodes of one instance type.
type Launch struct {
	InstanceType string  `json:"instance_type"`
	Spot         bool    `json:"spot"`
	Count        int     `json:"count"`
	UnitPrice    float64 `json:"unit_price"`
}

// LaunchCost is the total price of launches.
func LaunchCost(ls []Launch) float64 {
	var c float64
	for _, l := range ls {
		c += float64(l.Count) * l.UnitPrice
	}
	return c
}

// LaunchCount is the total number of nodes in launches.
func LaunchCount(ls []Launch) int {
	n := 0
	for _, l := range ls {
		n += l.Count
	}
	return n
}
