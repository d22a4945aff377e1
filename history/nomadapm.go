package history

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"

	nomadapi "github.com/hashicorp/nomad/api"
	"golang.org/x/sync/errgroup"
)

// apmParallelStats bounds the allocation stats requests of one sample.
const apmParallelStats = 8

// NomadAPM reads resource usage of a task group's running allocations from
// Nomad's allocation stats, like nomad-autoscaler's nomad-apm plugin.
//
// Queries are <op>_<metric>: op is avg, sum, min or max over the running
// allocations; metric is
//
//	cpu_percent     CPU used as a percentage of the CPU the allocation asked
//	                for (TotalTicks / allocated MHz * 100)
//	cpu_mhz         CPU used in MHz (TotalTicks)
//	memory_percent  memory used as a percentage of the allocation's memory
//	memory_mib      memory used in MiB
//
// CPU percent is relative to the allocation, not to one core as
// CpuStats.Percent is, so a target like 70 means the same thing for a group
// that asked for 100 MHz and one that asked for 4000, and cpu_percent and
// memory_percent are on one scale (nomad-autoscaler's "cpu-allocated").
// Memory used is RSS, or the cgroup's total usage where RSS is not measured
// (cgroups v2 reports 0 RSS for some drivers).
//
// nomad-autoscaler's nomad-apm metrics are answered too, computed as its
// v0.4.7 plugin computes them (plugins/builtin/apm/nomad/plugin/job.go), so
// a policy written for it means the same here:
//
//	cpu               CpuStats.Percent (percent of one core)
//	cpu-allocated     TotalTicks / allocated MHz * 100
//	memory            memory usage in bytes (MemoryStats.Usage)
//	memory-allocated  usage in whole MiB / allocated MiB * 100
//
// Its long form taskgroup_<op>_<metric>/<group>/<job>@<namespace> is read
// as <op>_<metric>: the group is always the policy's own.
type NomadAPM struct {
	client *nomadapi.Client
}

// NewNomadAPM reads stats through client.
func NewNomadAPM(client *nomadapi.Client) *NomadAPM { return &NomadAPM{client: client} }

// apmQuery is a parsed nomad-apm query.
type apmQuery struct {
	op, metric string
}

var (
	apmOps     = []string{"avg", "sum", "min", "max"}
	apmMetrics = []string{"cpu_percent", "cpu_mhz", "memory_percent", "memory_mib",
		"cpu", "cpu-allocated", "memory", "memory-allocated"}
)

// ValidateAPMQuery reports whether q is a nomad-apm query this package
// can answer, so a policy can be refused when it is read rather than fail
// every sample.
func ValidateAPMQuery(q string) error {
	_, err := parseAPMQuery(q)
	return err
}

func parseAPMQuery(q string) (apmQuery, error) {
	short := q
	if rest, ok := strings.CutPrefix(q, "taskgroup_"); ok {
		short, _, _ = strings.Cut(rest, "/")
	}
	op, metric, ok := strings.Cut(short, "_")
	if !ok || !contains(apmOps, op) || !contains(apmMetrics, metric) {
		return apmQuery{}, fmt.Errorf("nomad-apm: unknown query %q, want <%s>_<%s> (e.g. avg_cpu_percent)",
			q, strings.Join(apmOps, "|"), strings.Join(apmMetrics, "|"))
	}
	return apmQuery{op: op, metric: metric}, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// allocUsage is what one allocation used and asked for.
type allocUsage struct {
	cpuMHz, memBytes         float64
	allocCPUMHz, allocMemMiB float64
	// cpuCorePercent and memUsageBytes are the raw stats nomad-autoscaler's
	// queries read (percent of one core; usage without the RSS preference).
	cpuCorePercent, memUsageBytes float64
}

// value is the metric of one allocation.
func (q apmQuery) value(u allocUsage) (float64, error) {
	switch q.metric {
	case "cpu_mhz":
		return u.cpuMHz, nil
	case "memory_mib":
		return u.memBytes / (1 << 20), nil
	case "cpu_percent":
		if u.allocCPUMHz <= 0 {
			return 0, fmt.Errorf("group allocates no CPU, cpu_percent is undefined")
		}
		return u.cpuMHz / u.allocCPUMHz * 100, nil
	case "memory_percent":
		if u.allocMemMiB <= 0 {
			return 0, fmt.Errorf("group allocates no memory, memory_percent is undefined")
		}
		return u.memBytes / (1 << 20) / u.allocMemMiB * 100, nil
	case "cpu":
		return u.cpuCorePercent, nil
	case "cpu-allocated":
		if u.allocCPUMHz <= 0 {
			return 0, fmt.Errorf("group allocates no CPU, cpu-allocated is undefined")
		}
		return u.cpuMHz / u.allocCPUMHz * 100, nil
	case "memory":
		return u.memUsageBytes, nil
	case "memory-allocated":
		if u.allocMemMiB <= 0 {
			return 0, fmt.Errorf("group allocates no memory, memory-allocated is undefined")
		}
		// Whole MiB, as nomad-autoscaler divides integers.
		return math.Floor(u.memUsageBytes/(1<<20)) / u.allocMemMiB * 100, nil
	}
	return 0, fmt.Errorf("nomad-apm: unknown metric %q", q.metric)
}

// aggregate combines the allocations' values; none is ErrNoData.
func (q apmQuery) aggregate(us []allocUsage) (float64, error) {
	if len(us) == 0 {
		return 0, ErrNoData
	}
	var out float64
	for i, u := range us {
		v, err := q.value(u)
		if err != nil {
			return 0, err
		}
		switch {
		case i == 0:
			out = v
		case q.op == "min":
			out = math.Min(out, v)
		case q.op == "max":
			out = math.Max(out, v)
		default:
			out += v
		}
	}
	if q.op == "avg" {
		out /= float64(len(us))
	}
	return finite(out)
}

// Sample lists the job's allocations, reads the stats of the group's running
// ones and aggregates them. An allocation whose stats cannot be read (it is
// stopping, or its node is gone) is left out rather than failing the sample,
// so scale-downs do not leave gaps; if none can be read the sample fails.
func (n *NomadAPM) Sample(ctx context.Context, q Query) (float64, error) {
	aq, err := parseAPMQuery(q.Query)
	if err != nil {
		return 0, err
	}
	if q.Job == "" || q.Group == "" {
		return 0, fmt.Errorf("nomad-apm: query %q needs a job and a group", q.Query)
	}
	us, err := n.usages(ctx, q.Namespace, q.Job, q.Group)
	if err != nil {
		return 0, err
	}
	return aq.aggregateGroup(us, q)
}

// SampleBatch reads each group's allocations and their stats once for all
// the checks on that group, however many there are, at most concurrency
// groups at a time.
func (n *NomadAPM) SampleBatch(ctx context.Context, qs []Query, concurrency int) []Result {
	out := make([]Result, len(qs))
	type groupKey struct{ ns, job, group string }
	byGroup := map[groupKey][]int{}
	for i, q := range qs {
		if _, err := parseAPMQuery(q.Query); err != nil {
			out[i].Err = err
			continue
		}
		if q.Job == "" || q.Group == "" {
			out[i].Err = fmt.Errorf("nomad-apm: query %q needs a job and a group", q.Query)
			continue
		}
		k := groupKey{q.Namespace, q.Job, q.Group}
		byGroup[k] = append(byGroup[k], i)
	}
	var g errgroup.Group
	g.SetLimit(max(concurrency, 1))
	for k, idx := range byGroup {
		g.Go(func() error {
			us, err := n.usages(ctx, k.ns, k.job, k.group)
			for _, i := range idx {
				if err != nil {
					out[i].Err = err
					continue
				}
				aq, _ := parseAPMQuery(qs[i].Query)
				out[i].V, out[i].Err = aq.aggregateGroup(us, qs[i])
			}
			return nil
		})
	}
	_ = g.Wait()
	return out
}

func (aq apmQuery) aggregateGroup(us []allocUsage, q Query) (float64, error) {
	v, err := aq.aggregate(us)
	if errors.Is(err, ErrNoData) {
		return 0, fmt.Errorf("nomad-apm: %s/%s has no running allocations: %w", q.Job, q.Group, err)
	}
	return v, err
}

// usages reads what each running allocation of the group uses and asks
// for; nil (no error) when none runs.
func (n *NomadAPM) usages(ctx context.Context, namespace, jobID, group string) ([]allocUsage, error) {
	opts := (&nomadapi.QueryOptions{Namespace: namespace}).WithContext(ctx)
	job, _, err := n.client.Jobs().Info(jobID, opts)
	if err != nil {
		return nil, fmt.Errorf("nomad-apm: job %s: %w", jobID, err)
	}
	tg := job.LookupTaskGroup(group)
	if tg == nil {
		return nil, fmt.Errorf("nomad-apm: job %s has no group %q", jobID, group)
	}
	cpu, mem := GroupAllocation(tg)
	allocs, _, err := n.client.Jobs().Allocations(jobID, false, opts)
	if err != nil {
		return nil, fmt.Errorf("nomad-apm: allocations of %s: %w", jobID, err)
	}
	var running []*nomadapi.AllocationListStub
	for _, a := range allocs {
		if a.ClientStatus == nomadapi.AllocClientStatusRunning && a.TaskGroup == group {
			running = append(running, a)
		}
	}
	// Stats are answered by each allocation's node; asking them in parallel
	// keeps a large group within the sample timeout.
	found := make([]*allocUsage, len(running))
	errs := make([]error, len(running))
	var g errgroup.Group
	g.SetLimit(apmParallelStats)
	for i, a := range running {
		g.Go(func() error {
			st, err := n.client.Allocations().Stats(&nomadapi.Allocation{ID: a.ID, Namespace: a.Namespace}, opts)
			if err != nil {
				errs[i] = err
				return nil
			}
			if st != nil && st.ResourceUsage != nil {
				u := usageOf(st.ResourceUsage, cpu, mem)
				found[i] = &u
			}
			return nil
		})
	}
	_ = g.Wait()
	var usages []allocUsage
	var lastErr error
	for i := range running {
		if found[i] != nil {
			usages = append(usages, *found[i])
		}
		if errs[i] != nil {
			lastErr = errs[i]
		}
	}
	if len(usages) == 0 && lastErr != nil {
		return nil, fmt.Errorf("nomad-apm: allocation stats of %s/%s: %w", jobID, group, lastErr)
	}
	return usages, nil
}

// GroupAllocation sums what the group's tasks ask for: the CPU (MHz) and
// memory (MiB) one replica of the group is allocated.
func GroupAllocation(tg *nomadapi.TaskGroup) (cpuMHz, memMiB float64) {
	for _, t := range tg.Tasks {
		if t.Resources == nil {
			continue
		}
		if t.Resources.CPU != nil {
			cpuMHz += float64(*t.Resources.CPU)
		}
		if t.Resources.MemoryMB != nil {
			memMiB += float64(*t.Resources.MemoryMB)
		}
	}
	return cpuMHz, memMiB
}

func usageOf(ru *nomadapi.ResourceUsage, allocCPU, allocMem float64) allocUsage {
	u := allocUsage{allocCPUMHz: allocCPU, allocMemMiB: allocMem}
	if ru.CpuStats != nil {
		u.cpuMHz = ru.CpuStats.TotalTicks
		u.cpuCorePercent = ru.CpuStats.Percent
	}
	if m := ru.MemoryStats; m != nil {
		u.memUsageBytes = float64(m.Usage)
		u.memBytes = float64(m.RSS)
		if m.RSS == 0 {
			u.memBytes = float64(m.Usage)
		}
	}
	return u
}
