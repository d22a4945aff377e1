package optimize

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"time"
)

// Solver finds a plan for a Problem. Implementations fill Serving, Desired,
// Objective and Solver; the Planner stamps ID and Start.
type Solver interface {
	Solve(ctx context.Context, p Problem) (Plan, error)
}

// Plan is a per-second schedule of replica counts, stamped with the time
// its first second starts. It is the prediction cache of the seed: it is
// served in a loop and refreshed after two passes (see Value).
type Plan struct {
	ID    string    `json:"id"`
	Start time.Time `json:"start"`
	// Desired holds the counts to request, one per second.
	Desired []int `json:"desired"`
	// Serving holds the counts the plan expects to be serving; it equals
	// Desired when the startup delay is 0.
	Serving []int `json:"serving,omitempty"`
	// MinReplicas and MaxReplicas clamp every served value.
	MinReplicas int `json:"min_replicas"`
	MaxReplicas int `json:"max_replicas"`
	// Objective is Objective(problem, plan).
	Objective float64 `json:"objective"`
	// Solver names what produced the plan: "dp", "highs", "highs_incumbent"
	// or "interpolation".
	Solver string `json:"solver"`
	// Lower and Upper are the forecast band of demand per second, when the
	// forecaster gives one (see BandForecaster): demand outside it means
	// the forecast is off and a new plan is due.
	Lower []float64 `json:"lower,omitempty"`
	Upper []float64 `json:"upper,omitempty"`
	// Demand is the demand per second the plan was solved for (the
	// forecast with the policy's margins). It is not part of the plan's
	// JSON: the decider reads it in memory to judge a scale-down.
	Demand []float64 `json:"-"`
	// Burst is the forecast band's burst headroom (forecast.Band.Burst),
	// for status; not part of the plan's JSON, which POST /optimize
	// answers in a fixed format.
	Burst float64 `json:"-"`
}

// newPlanID returns a sortable, unique plan id: the start time and 48
// random bits.
func newPlanID(start time.Time) string {
	var b [6]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux.
	return start.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

// Value returns the count to serve at now and whether a fresh plan is due.
// The count is Desired[elapsed % len(Desired)], elapsed being whole seconds
// since Start (0 before Start), clamped to [MinReplicas, MaxReplicas]. A
// refresh is due once the plan has been served through twice
// (elapsed >= 2*len(Desired)). An empty plan serves MinReplicas and is
// always due.
func (pl Plan) Value(now time.Time) (count int, refresh bool) {
	n := len(pl.Desired)
	if n == 0 {
		return pl.MinReplicas, true
	}
	elapsed := 0
	if d := now.Sub(pl.Start); d > 0 {
		elapsed = int(d / time.Second)
	}
	return clamp(pl.Desired[elapsed%n], pl.MinReplicas, pl.MaxReplicas), elapsed >= 2*n
}

// Serve returns the count to apply at now given the cached plan cur, and
// the plan to cache from now on. When cur is due for a refresh it calls
// produce; if that fails, cur keeps being served and the error is returned
// alongside the count (the caller logs it and keeps next == cur). When cur
// is empty and produce fails, count is cur's clamped MinReplicas.
func Serve(ctx context.Context, now time.Time, cur Plan, produce func(context.Context) (Plan, error)) (count int, next Plan, err error) {
	count, refresh := cur.Value(now)
	if !refresh {
		return count, cur, nil
	}
	fresh, err := produce(ctx)
	if err == nil && len(fresh.Desired) == 0 {
		err = errors.New("fresh plan is empty")
	}
	if err != nil {
		return count, cur, err
	}
	count, _ = fresh.Value(now)
	return count, fresh, nil
}

// At returns the count the plan asks for at now, read at the second now
// falls in (the first value before Start, the last after the end),
// clamped to [MinReplicas, MaxReplicas]. This is how a plan is served when
// it is re-made every few seconds; Value is the seed's looping cache.
func (pl Plan) At(now time.Time) int {
	if len(pl.Desired) == 0 {
		return pl.MinReplicas
	}
	return clamp(pl.Desired[pl.index(now)], pl.MinReplicas, pl.MaxReplicas)
}

// MaxBetween is the highest count the plan asks for in [from, to].
func (pl Plan) MaxBetween(from, to time.Time) int {
	if len(pl.Desired) == 0 {
		return pl.MinReplicas
	}
	i, j := pl.index(from), pl.index(to)
	m := pl.Desired[i]
	for _, v := range pl.Desired[i : j+1] {
		m = max(m, v)
	}
	return clamp(m, pl.MinReplicas, pl.MaxReplicas)
}

// DemandMaxBetween is the highest demand the plan was solved for in
// [from, to]; ok is false when the plan does not carry its demand.
func (pl Plan) DemandMaxBetween(from, to time.Time) (peak float64, ok bool) {
	if len(pl.Demand) != len(pl.Desired) || len(pl.Demand) == 0 {
		return 0, false
	}
	i, j := pl.index(from), pl.index(to)
	for _, v := range pl.Demand[i : j+1] {
		peak = max(peak, v)
	}
	return peak, true
}

// NextChange is the start of the first second after now whose count
// differs from now's; ok is false when the plan holds to its end.
func (pl Plan) NextChange(now time.Time) (at time.Time, ok bool) {
	if len(pl.Desired) == 0 {
		return time.Time{}, false
	}
	i := pl.index(now)
	for j := i + 1; j < len(pl.Desired); j++ {
		if pl.Desired[j] != pl.Desired[i] {
			return pl.Start.Add(time.Duration(j) * time.Second), true
		}
	}
	return time.Time{}, false
}

// BandAt is the forecast band of demand at the second t falls in: lower
// and upper edge. Without a band (Upper empty) both are 0.
func (pl Plan) BandAt(t time.Time) (lower, upper float64) {
	if len(pl.Upper) == 0 {
		return 0, 0
	}
	d := t.Sub(pl.Start)
	i := 0
	if d > 0 {
		i = min(int(d/time.Second), len(pl.Upper)-1)
	}
	if i < len(pl.Lower) {
		lower = pl.Lower[i]
	}
	return lower, pl.Upper[i]
}

func (pl Plan) index(t time.Time) int {
	d := t.Sub(pl.Start)
	if d <= 0 {
		return 0
	}
	return min(int(d/time.Second), len(pl.Desired)-1)
}
