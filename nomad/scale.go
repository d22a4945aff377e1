package nomad

import (
	"context"
	"fmt"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/nomadscalerd/nomadscalerd/history"
	"github.com/nomadscalerd/nomadscalerd/reconciler"
)

// Scale calls Nomad's job scale API; a nil count records a scaling event
// without changing anything (dry run).
func (c *Client) Scale(ctx context.Context, r reconciler.ScaleRequest) error {
	_, err := c.ScaleIndex(ctx, r)
	return err
}

// ScaleIndex is Scale that also returns the job's modify index after the
// change, for views that must not be rolled back by older events.
func (c *Client) ScaleIndex(ctx context.Context, r reconciler.ScaleRequest) (uint64, error) {
	var count *int64
	if r.Count != nil {
		v := int64(*r.Count)
		count = &v
	}
	req := &nomadapi.ScalingRequest{
		Count:   count,
		Target:  map[string]string{"Job": r.Job, "Group": r.Group},
		Message: r.Message,
		Meta:    r.Meta,
	}
	w := (&nomadapi.WriteOptions{Namespace: r.Namespace}).WithContext(ctx)
	resp, _, err := c.api.Jobs().ScaleWithRequest(r.Job, req, w)
	if err != nil {
		return 0, fmt.Errorf("scale %s/%s: %w", r.Job, r.Group, Classify(err))
	}
	return resp.JobModifyIndex, nil
}

// groupScaleStatus reads the job's scale status (GET /v1/job/:id/scale,
// one request) and the group's part of it; the status is nil when the job
// is gone, and ok false when the group is. The error is Nomad's, for the
// caller to wrap.
func (c *Client) groupScaleStatus(ctx context.Context, namespace, job, group string) (st *nomadapi.JobScaleStatusResponse, tg nomadapi.TaskGroupScaleStatus, ok bool, err error) {
	q := (&nomadapi.QueryOptions{Namespace: namespace}).WithContext(ctx)
	st, _, err = c.api.Jobs().ScaleStatus(job, q)
	if err != nil {
		if isNotFound(err) {
			return nil, tg, false, nil
		}
		return nil, tg, false, err
	}
	tg, ok = st.TaskGroups[group]
	return st, tg, ok, nil
}

// GroupStatus reads the group's desired count and allocation counts from the
// job's scale status.
func (c *Client) GroupStatus(ctx context.Context, namespace, job, group string) (reconciler.GroupStatus, error) {
	st, tg, ok, err := c.groupScaleStatus(ctx, namespace, job, group)
	if err != nil {
		return reconciler.GroupStatus{}, fmt.Errorf("scale status %s: %w", job, err)
	}
	if !ok || st.JobStopped {
		return reconciler.GroupStatus{}, nil
	}
	pending := tg.Desired - tg.Running
	if pending < 0 {
		pending = 0
	}
	return reconciler.GroupStatus{Exists: true, Desired: tg.Desired, Running: tg.Running, Pending: pending}, nil
}

// LastScalingEvent reads the group's newest scaling event that does not
// report an error, in one request (GET /v1/job/:id/scale); ok is false
// when the group has none or the job or group is gone. The newest is
// picked by time, not by position: Nomad lists them newest first, but
// nothing here depends on it.
func (c *Client) LastScalingEvent(ctx context.Context, namespace, job, group string) (reconciler.ScalingEvent, bool, error) {
	_, tg, ok, err := c.groupScaleStatus(ctx, namespace, job, group)
	if err != nil {
		return reconciler.ScalingEvent{}, false, fmt.Errorf("scale status %s: %w", job, Classify(err))
	}
	if !ok {
		return reconciler.ScalingEvent{}, false, nil
	}
	var last *nomadapi.ScalingEvent
	for i, e := range tg.Events {
		// An error event records a scale that did not happen (or a
		// report): it starts no cooldown, and must not hide the scale
		// before it.
		if e.Error {
			continue
		}
		if last == nil || e.Time > last.Time {
			last = &tg.Events[i]
		}
	}
	if last == nil {
		return reconciler.ScalingEvent{}, false, nil
	}
	ev := reconciler.ScalingEvent{Time: time.Unix(0, int64(last.Time)), PreviousCount: int(last.PreviousCount), Message: last.Message, Meta: last.Meta}
	if last.Count != nil {
		n := int(*last.Count)
		ev.Count = &n
	}
	return ev, true, nil
}

var _ reconciler.ScalingEvents = (*Client)(nil)

// GroupCount is the group's desired count, the count nomad-autoscaler's
// Nomad target reports to its strategies; 0 when the job or group is gone.
func (c *Client) GroupCount(ctx context.Context, namespace, job, group string) (int, error) {
	st, err := c.GroupStatus(ctx, namespace, job, group)
	if err != nil {
		return 0, err
	}
	return st.Desired, nil
}

// ListPolicies returns every scaling policy in every namespace, with bodies.
func (c *Client) ListPolicies(ctx context.Context) ([]*nomadapi.ScalingPolicy, error) {
	q := (&nomadapi.QueryOptions{Namespace: "*"}).WithContext(ctx)
	stubs, _, err := c.api.Scaling().ListPolicies(q)
	if err != nil {
		return nil, fmt.Errorf("list scaling policies: %w", err)
	}
	out := make([]*nomadapi.ScalingPolicy, 0, len(stubs))
	for _, s := range stubs {
		p, _, err := c.api.Scaling().GetPolicy(s.ID, (&nomadapi.QueryOptions{Namespace: s.Target["Namespace"]}).WithContext(ctx))
		if err != nil {
			if isNotFound(err) {
				continue // deleted between list and get
			}
			return nil, fmt.Errorf("get scaling policy %s: %w", s.ID, err)
		}
		out = append(out, p)
	}
	return out, nil
}

func isNotFound(err error) bool {
	if e, ok := err.(nomadapi.UnexpectedResponseError); ok {
		return e.StatusCode() == 404
	}
	return false
}

// GroupResources sums the CPU (MHz) and memory (MiB) the group's tasks ask
// for: what one replica is allocated.
func (c *Client) GroupResources(ctx context.Context, namespace, job, group string) (cpuMHz, memoryMiB float64, err error) {
	j, _, err := c.api.Jobs().Info(job, (&nomadapi.QueryOptions{Namespace: namespace}).WithContext(ctx))
	if err != nil {
		return 0, 0, fmt.Errorf("job %s: %w", job, err)
	}
	for _, tg := range j.TaskGroups {
		if tg.Name != nil && *tg.Name == group {
			cpuMHz, memoryMiB = history.GroupAllocation(tg)
			return cpuMHz, memoryMiB, nil
		}
	}
	return 0, 0, fmt.Errorf("job %s has no group %s", job, group)
}
