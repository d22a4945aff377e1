package history

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	nomadapi "github.com/hashicorp/nomad/api"
)

func TestSeveralNomadAPMChecksOfOneGroupReadEachAllocationsStatsOncePerTickFromAFakeNomad(t *testing.T) {
	var mu sync.Mutex
	hits := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits[r.URL.Path]++
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Path == "/v1/job/web":
			_, _ = w.Write([]byte(`{"ID":"web","Name":"web","TaskGroups":[{"Name":"g","Tasks":[{"Name":"t","Resources":{"CPU":100,"MemoryMB":64}}]}]}`))
		case r.URL.Path == "/v1/job/web/allocations":
			_, _ = w.Write([]byte(`[{"ID":"a1","TaskGroup":"g","ClientStatus":"running"},{"ID":"a2","TaskGroup":"g","ClientStatus":"running"},{"ID":"a3","TaskGroup":"g","ClientStatus":"complete"}]`))
		case strings.HasPrefix(r.URL.Path, "/v1/client/allocation/") && strings.HasSuffix(r.URL.Path, "/stats"):
			_, _ = w.Write([]byte(`{"ResourceUsage":{"CpuStats":{"TotalTicks":50},"MemoryStats":{"RSS":33554432}}}`))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	cfg := nomadapi.DefaultConfig()
	cfg.Address = srv.URL
	c, err := nomadapi.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	apm := NewNomadAPM(c)
	q := func(s string) Query {
		return Query{Source: SourceNomadAPM, Query: s, Namespace: "default", Job: "web", Group: "g"}
	}
	res := Sources{SourceNomadAPM: apm}.SampleBatch(context.Background(),
		[]Query{q("avg_cpu_percent"), q("sum_cpu_mhz"), q("max_memory_mib"), q("bogus")}, 4)
	want := []float64{50, 100, 32}
	for i, w := range want {
		if res[i].Err != nil || res[i].V != w {
			t.Errorf("check %d = %v, %v; want %v", i, res[i].V, res[i].Err, w)
		}
	}
	if res[3].Err == nil {
		t.Error("an unknown nomad-apm query did not fail")
	}
	mu.Lock()
	defer mu.Unlock()
	for path, n := range hits {
		if n != 1 {
			t.Errorf("%s read %d times for three checks of one group, want once", path, n)
		}
	}
	if hits["/v1/client/allocation/a1/stats"] != 1 || hits["/v1/client/allocation/a2/stats"] != 1 || hits["/v1/client/allocation/a3/stats"] != 0 {
		t.Errorf("stats reads %v, want each running allocation once and the complete one never", hits)
	}
}
