package nodepool

import "math"

// Headroom is the spare capacity a pool keeps ready for new work, counted in
// units of a fixed size. A zero Unit dimension is not constrained.
type Headroom struct {
	Unit  Resources
	Units int
}

// Enabled reports whether the pool keeps any headroom at all.
func (h Headroom) Enabled() bool {
	return h.Units > 0 && (h.Unit.CPUMHz > 0 || h.Unit.MemoryMiB > 0)
}

// UnitsIn is how many whole units fit into free: the smaller of the CPU and
// memory quotients, since a unit needs both.
func UnitsIn(free, unit Resources) int {
	if unit.CPUMHz <= 0 && unit.MemoryMiB <= 0 {
		return 0
	}
	n := int64(math.MaxInt32)
	if unit.CPUMHz > 0 {
		n = min(n, free.CPUMHz/unit.CPUMHz)
	}
	if unit.MemoryMiB > 0 {
		n = min(n, free.MemoryMiB/unit.MemoryMiB)
	}
	return int(max(n, 0))
}

// FreeUnits sums the headroom units over the schedulable nodes; units do not
// straddle nodes, so each node is floored on its own.
func FreeUnits(nodes []Node, unit Resources) int {
	total := 0
	for _, n := range nodes {
		if n.Schedulable() {
			total += UnitsIn(n.Free(), unit)
		}
	}
	return total
}

// unitsConsumed estimates how many units relocating alloc would use up on
// other nodes: the larger per-dimension quotient, rounded up.
func unitsConsumed(alloc, unit Resources) int {
	var n int64
	if unit.CPUMHz > 0 {
		n = max(n, ceilDiv(alloc.CPUMHz, unit.CPUMHz))
	}
	if unit.MemoryMiB > 0 {
		n = max(n, ceilDiv(alloc.MemoryMiB, unit.MemoryMiB))
	}
	return int(n)
}

func ceilDiv(a, b int64) int64 {
	if a <= 0 {
		return 0
	}
	return (a + b - 1) / b
}
