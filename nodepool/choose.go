package nodepool

import (
	"cmp"
	"context"
	"slices"
)

// CapacityType is one instance type as the capacity choice sees it: what one
// node of it provides in each dimension of the problem, and how many more may
// be launched (negative: no limit).
type CapacityType struct {
	InstanceType
	Provides  []int64
	Available int
}

// CapacityProblem asks for the cheapest set of new nodes whose summed
// Provides covers Need in every dimension. Dimensions are whatever the caller
// needs covered: headroom units, or CPU MHz and memory MiB of blocked work.
type CapacityProblem struct {
	Dims  []string
	Need  []int64
	Types []CapacityType
	// MaxNodes caps the number of new nodes (negative: no cap).
	MaxNodes int
	// SpotMaxShare caps spot nodes as a share of new nodes; zero forbids spot.
	SpotMaxShare float64
	// PriorNodes and PriorSpot are nodes already chosen in the same decision,
	// which the spot share covers too.
	PriorNodes, PriorSpot int
}

// Choice is a chooser's answer. Covered is false when the limits do not
// allow covering the need; Launches then holds the best partial answer.
type Choice struct {
	Launches []Launch
	Covered  bool
	Method   string
}

// Chooser picks what to launch for a capacity problem.
type Chooser interface {
	Choose(ctx context.Context, p CapacityProblem) (Choice, error)
}

// GreedyChooser repeatedly adds the node with the lowest price per unit of
// still-uncovered need, then drops nodes that turned out redundant. It is
// the fallback when the MIP solver fails and the reference it is tested
// against.
type GreedyChooser struct{}

type option struct {
	t    int
	spot bool
}

func (o option) price(p CapacityProblem) float64 {
	if o.spot {
		return p.Types[o.t].SpotPrice
	}
	return p.Types[o.t].Price
}

// spotAllowed reports whether spot nodes out of total new nodes respect the
// share together with the prior nodes.
func (p CapacityProblem) spotAllowed(spot, total int) bool {
	if spot == 0 {
		return true
	}
	return float64(p.PriorSpot+spot) <= p.SpotMaxShare*float64(p.PriorNodes+total)+1e-9
}

// Choose implements Chooser.
func (GreedyChooser) Choose(_ context.Context, p CapacityProblem) (Choice, error) {
	rem := slices.Clone(p.Need)
	perType := make([]int, len(p.Types))
	var chosen []option
	spot := 0
	for !covered(rem) {
		if p.MaxNodes >= 0 && len(chosen) >= p.MaxNodes {
			break
		}
		best, bestScore, bestUseful := option{t: -1}, 0.0, 0.0
		for t, ty := range p.Types {
			if ty.Available >= 0 && perType[t] >= ty.Available {
				continue
			}
			useful := 0.0
			for d := range rem {
				if rem[d] > 0 && p.Need[d] > 0 {
					useful += float64(min(ty.Provides[d], rem[d])) / float64(p.Need[d])
				}
			}
			if useful <= 0 {
				continue
			}
			for _, s := range []bool{false, true} {
				o := option{t: t, spot: s}
				if s && (ty.SpotPrice <= 0 || !p.spotAllowed(spot+1, len(chosen)+1)) {
					continue
				}
				score := o.price(p) / useful
				if best.t < 0 || score < bestScore || (score == bestScore && useful > bestUseful) {
					best, bestScore, bestUseful = o, score, useful
				}
			}
		}
		if best.t < 0 {
			break
		}
		chosen = append(chosen, best)
		perType[best.t]++
		if best.spot {
			spot++
		}
		for d := range rem {
			rem[d] -= p.Types[best.t].Provides[d]
		}
	}
	if !covered(rem) {
		if alt, ok := p.bestSingleType(); ok {
			return Choice{Launches: alt, Covered: true, Method: "greedy"}, nil
		}
		return Choice{Launches: p.launches(chosen), Method: "greedy"}, nil
	}
	// Drop the most expensive nodes that are not needed after all.
	slices.SortStableFunc(chosen, func(a, b option) int { return cmp.Compare(b.price(p), a.price(p)) })
	for i := 0; i < len(chosen); {
		o := chosen[i]
		for d := range rem {
			rem[d] += p.Types[o.t].Provides[d]
		}
		s := spot
		if o.spot {
			s--
		}
		if covered(rem) && p.spotAllowed(s, len(chosen)-1) {
			chosen = slices.Delete(chosen, i, i+1)
			spot = s
			continue
		}
		for d := range rem {
			rem[d] -= p.Types[o.t].Provides[d]
		}
		i++
	}
	best := p.launches(chosen)
	// Per-unit greedy can miss that one large node beats many small ones;
	// a single-type answer guards against that.
	if alt, ok := p.bestSingleType(); ok && LaunchCost(alt) < LaunchCost(best)-1e-9 {
		best = alt
	}
	return Choice{Launches: best, Covered: true, Method: "greedy"}, nil
}

// bestSingleType is the cheapest answer using one instance type only, with
// as many spot nodes as the share allows.
func (p CapacityProblem) bestSingleType() ([]Launch, bool) {
	var best []Launch
	for _, ty := range p.Types {
		n := int64(0)
		ok := true
		for d, need := range p.Need {
			if need <= 0 {
				continue
			}
			if ty.Provides[d] <= 0 {
				ok = false
				break
			}
			n = max(n, (need+ty.Provides[d]-1)/ty.Provides[d])
		}
		if !ok || n == 0 || (ty.Available >= 0 && n > int64(ty.Available)) || (p.MaxNodes >= 0 && n > int64(p.MaxNodes)) {
			continue
		}
		spot := int64(0)
		if ty.SpotPrice > 0 && ty.SpotPrice < ty.Price {
			for spot < n && p.spotAllowed(int(spot+1), int(n)) {
				spot++
			}
		}
		var ls []Launch
		if n-spot > 0 {
			ls = append(ls, Launch{InstanceType: ty.Name, Count: int(n - spot), UnitPrice: ty.Price})
		}
		if spot > 0 {
			ls = append(ls, Launch{InstanceType: ty.Name, Spot: true, Count: int(spot), UnitPrice: ty.SpotPrice})
		}
		if best == nil || LaunchCost(ls) < LaunchCost(best) {
			best = ls
		}
	}
	return best, best != nil
}

func covered(rem []int64) bool {
	for _, r := range rem {
		if r > 0 {
			return false
		}
	}
	return true
}

// launches groups chosen options into Launch records in type order.
func (p CapacityProblem) launches(chosen []option) []Launch {
	counts := map[option]int{}
	for _, o := range chosen {
		counts[o]++
	}
	var out []Launch
	for t, ty := range p.Types {
		for _, s := range []bool{false, true} {
			if n := counts[option{t, s}]; n > 0 {
				out = append(out, Launch{InstanceType: ty.Name, Spot: s, Count: n, UnitPrice: option{t, s}.price(p)})
			}
		}
	}
	return out
}

// Provided sums what launches provide in each dimension of p.
func (p CapacityProblem) Provided(ls []Launch) []int64 {
	got := make([]int64, len(p.Need))
	for _, l := range ls {
		for _, ty := range p.Types {
			if ty.Name == l.InstanceType {
				for d := range got {
					got[d] += int64(l.Count) * ty.Provides[d]
				}
			}
		}
	}
	return got
}

// Feasible reports whether launches respect p's limits (not whether they
// cover the need).
func (p CapacityProblem) Feasible(ls []Launch) bool {
	total, spot := 0, 0
	per := map[string]int{}
	for _, l := range ls {
		total += l.Count
		per[l.InstanceType] += l.Count
		if l.Spot {
			spot += l.Count
		}
	}
	if p.MaxNodes >= 0 && total > p.MaxNodes {
		return false
	}
	for _, ty := range p.Types {
		if ty.Available >= 0 && per[ty.Name] > ty.Available {
			return false
		}
	}
	return p.spotAllowed(spot, total)
}
