package history

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/nomadscalerd/nomadscalerd/store"
)

func TestPromValueTakesAScalarOrOneElementVectorAndRefusesTheRest(t *testing.T) {
	vector := func(vs ...float64) instantAnswer {
		a := instantAnswer{resultType: "vector"}
		for _, v := range vs {
			a.samples = append(a.samples, instantSample{v: v})
		}
		return a
	}
	tests := []struct {
		name    string
		in      instantAnswer
		want    float64
		wantErr string
		noData  bool
	}{
		{name: "scalar", in: instantAnswer{resultType: "scalar", scalar: 4.5}, want: 4.5},
		{name: "one-element vector", in: vector(12), want: 12},
		{name: "empty vector is no data", in: vector(), noData: true},
		{name: "no result is no data", in: instantAnswer{}, noData: true},
		{name: "two elements are refused", in: vector(1, 2), wantErr: "2 series"},
		{name: "NaN is refused", in: vector(math.NaN()), wantErr: "not a finite"},
		{name: "Inf is refused", in: instantAnswer{resultType: "scalar", scalar: math.Inf(1)}, wantErr: "not a finite"},
		{name: "a matrix is refused", in: instantAnswer{resultType: "matrix"}, wantErr: "not supported"},
		{name: "a string is refused", in: instantAnswer{resultType: "string"}, wantErr: "not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := promValue(tt.in)
			switch {
			case tt.noData:
				if !errors.Is(err, ErrNoData) {
					t.Fatalf("err = %v, want ErrNoData", err)
				}
			case tt.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
			default:
				if err != nil || got != tt.want {
					t.Fatalf("promValue = %v, %v; want %v", got, err, tt.want)
				}
			}
		})
	}
}

func TestNomadAPMQueriesAggregateAllocationsRelativeToWhatTheyAskedFor(t *testing.T) {
	const mib = 1 << 20
	us := []allocUsage{
		{cpuMHz: 50, memBytes: 32 * mib, allocCPUMHz: 100, allocMemMiB: 64},
		{cpuMHz: 150, memBytes: 16 * mib, allocCPUMHz: 100, allocMemMiB: 64},
	}
	tests := []struct {
		query string
		in    []allocUsage
		want  float64
	}{
		{"avg_cpu_percent", us, 100},
		{"max_cpu_percent", us, 150},
		{"min_cpu_percent", us, 50},
		{"sum_cpu_mhz", us, 200},
		{"avg_cpu_mhz", us, 100},
		{"avg_memory_percent", us, 37.5},
		{"max_memory_mib", us, 32},
		{"sum_memory_mib", us, 48},
		{"avg_cpu_percent", us[:1], 50},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			q, err := parseAPMQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			got, err := q.aggregate(tt.in)
			if err != nil || math.Abs(got-tt.want) > 1e-9 {
				t.Fatalf("%s = %v, %v; want %v", tt.query, got, err, tt.want)
			}
		})
	}
}

// The expected values follow nomad-autoscaler v0.4.7's nomad-apm plugin
// (plugins/builtin/apm/nomad/plugin/job.go, getTaskGroupResourceUsage):
// cpu is CpuStats.Percent, cpu-allocated TotalTicks over the group's
// allocated MHz, memory MemoryStats.Usage in bytes, memory-allocated whole
// MiB of usage over allocated MiB.
func TestNomadAutoscalersNomadAPMQueriesMeanWhatTheyMeanThere(t *testing.T) {
	const mib = 1 << 20
	us := []allocUsage{
		{cpuMHz: 50, cpuCorePercent: 2.5, memBytes: 8 * mib, memUsageBytes: 32*mib + 1000, allocCPUMHz: 100, allocMemMiB: 64},
		{cpuMHz: 150, cpuCorePercent: 7.5, memBytes: 8 * mib, memUsageBytes: 16 * mib, allocCPUMHz: 100, allocMemMiB: 64},
	}
	tests := []struct {
		query string
		want  float64
	}{
		{"avg_cpu", 5},
		{"max_cpu", 7.5},
		{"avg_cpu-allocated", 100},
		{"min_cpu-allocated", 50},
		{"sum_memory", 48*mib + 1000},
		{"avg_memory-allocated", 37.5},
		{"taskgroup_avg_cpu-allocated/api/web@default", 100},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			if err := ValidateAPMQuery(tt.query); err != nil {
				t.Fatalf("ValidateAPMQuery: %v", err)
			}
			q, err := parseAPMQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			got, err := q.aggregate(us)
			if err != nil || math.Abs(got-tt.want) > 1e-9 {
				t.Fatalf("%s = %v, %v; want %v", tt.query, got, err, tt.want)
			}
		})
	}
}

func TestNomadAPMRefusesUnknownQueriesAndReportsNoRunningAllocations(t *testing.T) {
	for _, q := range []string{"cpu_percent", "median_cpu_percent", "avg_disk_percent", "avg_cpu-percent", "taskgroup_avg_gpu/web/api@default", ""} {
		if _, err := parseAPMQuery(q); err == nil || !strings.Contains(err.Error(), "unknown query") {
			t.Errorf("parseAPMQuery(%q) err = %v, want unknown query", q, err)
		}
	}
	q, _ := parseAPMQuery("avg_cpu_percent")
	if _, err := q.aggregate(nil); !errors.Is(err, ErrNoData) {
		t.Errorf("no allocations: err = %v, want ErrNoData", err)
	}
	if _, err := q.aggregate([]allocUsage{{cpuMHz: 10}}); err == nil {
		t.Errorf("no allocated CPU: want an error, not a division by zero")
	}
}

type constSource float64

func (c constSource) Sample(context.Context, Query) (float64, error) { return float64(c), nil }

func TestSourcesDispatchesByNameAndRefusesUnknownSources(t *testing.T) {
	s := Sources{"a": constSource(1), "b": constSource(2)}
	if v, err := s.Sample(context.Background(), Query{Source: "b"}); err != nil || v != 2 {
		t.Fatalf("b = %v, %v; want 2", v, err)
	}
	if _, err := s.Sample(context.Background(), Query{Source: "datadog"}); err == nil || !strings.Contains(err.Error(), "datadog") {
		t.Fatalf("unknown source err = %v", err)
	}
}

func TestAKnownSourceThatIsNotConfiguredSaysSo(t *testing.T) {
	s, err := NewSources(nil, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Sample(context.Background(), Query{Source: SourcePrometheus}); err == nil || !strings.Contains(err.Error(), "not configured") {
		t.Fatalf("err = %v, want prometheus not configured", err)
	}
}

type fixedSource float64

func (f fixedSource) Sample(context.Context, Query) (float64, error) { return float64(f), nil }

type fixedCount struct {
	n   int
	err error
}

func (f fixedCount) GroupCount(context.Context, string, string, string) (int, error) {
	return f.n, f.err
}

func TestGroupTotalsMultiplyOnlyMarkedQueriesByTheCountAndReadZeroReplicasAsOne(t *testing.T) {
	q := Query{Source: SourceNomadAPM, Query: "avg_cpu_percent", Job: "web", Group: "api"}
	tests := []struct {
		name  string
		times bool
		count int
		want  float64
	}{
		{"an unmarked query is the metric itself", false, 4, 60},
		{"a marked query is the group's total", true, 4, 240},
		{"a marked query of a group at zero is one replica's", true, 0, 60},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q.TimesCount = tt.times
			got, err := GroupTotals{Inner: fixedSource(60), Counts: fixedCount{n: tt.count}}.Sample(context.Background(), q)
			if err != nil || got != tt.want {
				t.Fatalf("Sample = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
	boom := errors.New("boom")
	q.TimesCount = true
	if _, err := (GroupTotals{Inner: fixedSource(60), Counts: fixedCount{err: boom}}).Sample(context.Background(), q); !errors.Is(err, boom) {
		t.Fatalf("count failure: err = %v, want it wrapped", err)
	}
}

// fakeBatchRange is a fake source that batches and evaluates ranges,
// counting how it was asked.
type fakeBatchRange struct{ samples, batches, ranges int }

func (f *fakeBatchRange) Sample(context.Context, Query) (float64, error) { f.samples++; return 60, nil }
func (f *fakeBatchRange) SampleBatch(_ context.Context, qs []Query, _ int) []Result {
	f.batches++
	out := make([]Result, len(qs))
	for i := range out {
		out[i].V = 60
	}
	return out
}
func (f *fakeBatchRange) SampleRange(_ context.Context, qs []Query, from, _ time.Time, _ time.Duration) []RangeResult {
	f.ranges++
	out := make([]RangeResult, len(qs))
	for i := range out {
		out[i].Points = []store.Sample{{T: from, V: 60}, {T: from.Add(time.Second), V: 30}}
	}
	return out
}

func TestGroupTotalsOverAFakeBatchingSourceKeepItsBatchingAndItsBackFill(t *testing.T) {
	inner := &fakeBatchRange{}
	g := GroupTotals{Inner: inner, Counts: fixedCount{n: 3}}
	qs := []Query{{Query: "a", Job: "web", Group: "api", TimesCount: true}, {Query: "b", Job: "web", Group: "api"}}
	res := g.SampleBatch(context.Background(), qs, 4)
	if inner.batches != 1 || inner.samples != 0 {
		t.Fatalf("%d batches and %d single samples, want the inner batch once", inner.batches, inner.samples)
	}
	if res[0].V != 180 || res[1].V != 60 {
		t.Fatalf("batch values %v, %v; want 180 (the group's total) and 60", res[0].V, res[1].V)
	}
	rr := g.SampleRange(context.Background(), qs, time.Unix(0, 0), time.Unix(2, 0), time.Second)
	if inner.ranges != 1 || rr[0].Points[1].V != 90 || rr[1].Points[1].V != 30 {
		t.Fatalf("range %+v, want the marked query's points tripled and the other's as they are", rr)
	}
	var _ RangeSource = g // the recorder back-fills only from a RangeSource
}
