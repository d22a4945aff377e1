package optimize

import (
	"strings"
	"testing"
)

func TestDecodeRequestReadsTheSeedsBodyAndDefaultsTheCacheSize(t *testing.T) {
	body := `{"token":"t","check":{"name":"c","source":"prometheus","group":"web","metric_app_name":"app"},
	          "current_replicas":2,"min_replicas":1,"max_replicas":5}`
	r, err := DecodeRequest(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	want := Request{Token: "t", Check: Check{Name: "c", Source: "prometheus", Group: "web", MetricAppName: "app"},
		CurrentReplicas: 2, MinReplicas: 1, MaxReplicas: 5, CacheSize: DefaultCacheSize, CacheSizeAbsent: true}
	if r != want {
		t.Fatalf("got %+v, want %+v", r, want)
	}
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestDecodeRequestTellsAnAbsentCacheSizeFromAGivenOne(t *testing.T) {
	for _, c := range []struct {
		body   string
		size   int
		absent bool
	}{
		{`{"current_replicas":1,"min_replicas":1,"max_replicas":5}`, DefaultCacheSize, true},
		{`{"current_replicas":1,"min_replicas":1,"max_replicas":5,"cache_size":null}`, DefaultCacheSize, true},
		{`{"current_replicas":1,"min_replicas":1,"max_replicas":5,"cache_size":10}`, 10, false},
		{`{"current_replicas":1,"min_replicas":1,"max_replicas":5,"cache_size":30}`, 30, false},
		{`{"current_replicas":1,"min_replicas":1,"max_replicas":5,"cache_size":0}`, 0, false},
	} {
		r, err := DecodeRequest(strings.NewReader(c.body))
		if err != nil {
			t.Fatalf("%s: %v", c.body, err)
		}
		if r.CacheSize != c.size || r.CacheSizeAbsent != c.absent {
			t.Errorf("%s: cache_size %d absent %v, want %d absent %v", c.body, r.CacheSize, r.CacheSizeAbsent, c.size, c.absent)
		}
	}
	// A given 0 stays invalid: only an absent cache_size takes a default.
	r, err := DecodeRequest(strings.NewReader(`{"current_replicas":1,"min_replicas":1,"max_replicas":5,"cache_size":0}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Validate(); err == nil {
		t.Error("cache_size 0 validated")
	}
	// The decode errors still name the field.
	_, err = DecodeRequest(strings.NewReader(`{"current_replicas":"two"}`))
	if err == nil || !strings.Contains(err.Error(), "current_replicas") {
		t.Errorf("err %v, want one naming current_replicas", err)
	}
	_, err = DecodeRequest(strings.NewReader(`{"cache_size":"ten"}`))
	if err == nil || !strings.Contains(err.Error(), "cache_size") {
		t.Errorf("err %v, want one naming cache_size", err)
	}
}

func TestDecodeRequestRejectsUnknownFieldsAndTrailingData(t *testing.T) {
	for name, body := range map[string]string{
		"unknown field": `{"current_replicas":1,"min_replicas":1,"max_replicas":1,"replicas":3}`,
		"trailing":      `{"current_replicas":1,"min_replicas":1,"max_replicas":1} {}`,
		"not json":      `max_replicas=1`,
	} {
		if _, err := DecodeRequest(strings.NewReader(body)); err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
}

func TestRequestValidateGivesOneLineReasons(t *testing.T) {
	ok := Request{CurrentReplicas: 1, MinReplicas: 1, MaxReplicas: 3, CacheSize: 10}
	cases := []struct {
		name string
		mut  func(*Request)
		want string
	}{
		{"min above max", func(r *Request) { r.MinReplicas = 4 }, "exceeds max_replicas"},
		{"negative current", func(r *Request) { r.CurrentReplicas = -1 }, "current_replicas -1 is negative"},
		{"negative min", func(r *Request) { r.MinReplicas = -1 }, "min_replicas -1 is negative"},
		{"negative max", func(r *Request) { r.MaxReplicas, r.MinReplicas = -1, -1 }, "negative"},
		{"zero cache", func(r *Request) { r.CacheSize = 0 }, "cache_size 0 is outside 1..3600"},
		{"huge cache", func(r *Request) { r.CacheSize = 3601 }, "outside 1..3600"},
	}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid request: %v", err)
	}
	for _, c := range cases {
		r := ok
		c.mut(&r)
		err := r.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: err %v, want one line containing %q", c.name, err, c.want)
		}
	}
}

func TestParseSeriesAcceptsLinesAndJSONArrays(t *testing.T) {
	for name, in := range map[string]string{
		"lines": "1\n 2.5\n\n# comment\n3\n",
		"json":  " [1, 2.5, 3]\n",
	} {
		v, err := ParseSeries(strings.NewReader(in))
		if err != nil || len(v) != 3 || v[1] != 2.5 {
			t.Errorf("%s: %v, %v", name, v, err)
		}
	}
	if _, err := ParseSeries(strings.NewReader("1\nx\n")); err == nil {
		t.Error("a bad line must fail")
	}
}

func TestTheBundledSampleSeriesIsUsable(t *testing.T) {
	v := SampleRequests()
	if len(v) != 600 {
		t.Fatalf("sample has %d values, want 600", len(v))
	}
	for i, x := range v {
		if x < 0 {
			t.Fatalf("sample[%d] = %v is negative", i, x)
		}
	}
}
