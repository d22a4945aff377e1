package optimize

import (
	"context"
	"testing"
)

// The last-resort plan under demand whose covering count is past int's
// range must head for MaxReplicas, not wrap negative and head for min.
func TestInterpolationUnderHugeDemandHeadsForMax(t *testing.T) {
	p := DefaultProblem()
	p.Demand = []float64{1e300, 1e300, 1e300}
	p.MinReplicas, p.MaxReplicas, p.CurrentReplicas = 1, 10, 5
	plan, err := InterpolationSolver{}.Solve(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if last := plan.Desired[len(plan.Desired)-1]; last != p.MaxReplicas {
		t.Errorf("interpolation ends at %d under 1e300 requests/s, want max %d (plan %v)", last, p.MaxReplicas, plan.Desired)
	}
}
