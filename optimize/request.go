package optimize

import (
	"bufio"
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Cache sizes accepted in a Request.
const (
	DefaultCacheSize = 10
	MaxCacheSize     = 3600
	// MaxRequestReplicas bounds a request's replica counts: a plan's cost
	// grows with the range of counts, and no Nomad group runs more.
	MaxRequestReplicas = 10000
)

// Check names the series a request plans for, as in the seed's body.
type Check struct {
	Name          string `json:"name"`
	Source        string `json:"source"`
	Group         string `json:"group"`
	MetricAppName string `json:"metric_app_name"`
}

// Request is the seed's optimize request body.
type Request struct {
	Token           string `json:"token"`
	Check           Check  `json:"check"`
	CurrentReplicas int    `json:"current_replicas"`
	MinReplicas     int    `json:"min_replicas"`
	MaxReplicas     int    `json:"max_replicas"`
	// CacheSize is the plan length in seconds; DefaultCacheSize when absent.
	CacheSize int `json:"cache_size"`
	// CacheSizeAbsent is set by DecodeRequest when the body gives no
	// cache_size (or null): the seed's field is optional, and its optimizer
	// then answered with its own CACHE_SIZE, so a service with a configured
	// cache size (the daemon's, or the policy's cache_size) uses that
	// instead of DefaultCacheSize.
	CacheSizeAbsent bool `json:"-"`
}

// Response is the seed's optimize response body.
type Response struct {
	Desired []int `json:"desired"`
}

// DecodeRequest reads one Request, rejecting unknown fields, trailing data
// and missing replica counts, and fills CacheSize when absent (marking it
// CacheSizeAbsent). It does not validate the values.
func DecodeRequest(r io.Reader) (Request, error) {
	// The counts are read as pointers, in one pass, to tell an absent field
	// from one given as 0: the outer fields take their JSON names from
	// the embedded Request's. The seed's body makes only cache_size
	// optional: a missing count would otherwise plan as 0 (max_replicas 0
	// is a plan of zeros, current_replicas 0 a plan ramping up from
	// nothing).
	var body struct {
		Request
		CurrentReplicas *int `json:"current_replicas"`
		MinReplicas     *int `json:"min_replicas"`
		MaxReplicas     *int `json:"max_replicas"`
		CacheSize       *int `json:"cache_size"`
	}
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		return Request{}, fmt.Errorf("decode request: %w", err)
	}
	if dec.More() {
		return Request{}, errors.New("decode request: trailing data after the JSON object")
	}
	req := body.Request
	for _, f := range []struct {
		name string
		v    *int
		to   *int
	}{{"current_replicas", body.CurrentReplicas, &req.CurrentReplicas}, {"min_replicas", body.MinReplicas, &req.MinReplicas}, {"max_replicas", body.MaxReplicas, &req.MaxReplicas}} {
		if f.v == nil {
			return Request{}, fmt.Errorf("decode request: %s is required (only cache_size may be left out)", f.name)
		}
		*f.to = *f.v
	}
	// An absent or null cache_size is DefaultCacheSize.
	req.CacheSize, req.CacheSizeAbsent = DefaultCacheSize, body.CacheSize == nil
	if body.CacheSize != nil {
		req.CacheSize = *body.CacheSize
	}
	return req, nil
}

// Validate returns a one-line reason the request cannot be served, or nil.
func (r Request) Validate() error {
	switch {
	case r.CurrentReplicas < 0:
		return fmt.Errorf("current_replicas %d is negative", r.CurrentReplicas)
	case r.MinReplicas < 0:
		return fmt.Errorf("min_replicas %d is negative", r.MinReplicas)
	case r.MaxReplicas < 0:
		return fmt.Errorf("max_replicas %d is negative", r.MaxReplicas)
	case r.MinReplicas > r.MaxReplicas:
		return fmt.Errorf("min_replicas %d exceeds max_replicas %d", r.MinReplicas, r.MaxReplicas)
	case r.MaxReplicas > MaxRequestReplicas || r.CurrentReplicas > MaxRequestReplicas:
		return fmt.Errorf("max_replicas and current_replicas must be at most %d", MaxRequestReplicas)
	case r.CacheSize < 1 || r.CacheSize > MaxCacheSize:
		return fmt.Errorf("cache_size %d is outside 1..%d", r.CacheSize, MaxCacheSize)
	}
	return nil
}

// Apply copies the request's counts into a Problem template.
func (r Request) Apply(p Problem) Problem {
	p.CurrentReplicas, p.MinReplicas, p.MaxReplicas = r.CurrentReplicas, r.MinReplicas, r.MaxReplicas
	return p
}

//go:embed sample/requests.txt
var sampleRequests []byte

// SampleRequests returns the bundled sample request series (requests per
// second, one value per second, 600 s with a daily-like wave, a spike and a
// lull) used by the CLI and the test-data mode.
func SampleRequests() []float64 {
	v, err := ParseSeries(bytes.NewReader(sampleRequests))
	if err != nil {
		panic("optimize: bundled sample series is malformed: " + err.Error())
	}
	return v
}

// ParseSeries reads a series given either as a JSON array of numbers or as
// one number per line (blank lines and lines starting with # ignored).
func ParseSeries(r io.Reader) ([]float64, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read series: %w", err)
	}
	if t := bytes.TrimSpace(data); len(t) > 0 && t[0] == '[' {
		var v []float64
		if err := json.Unmarshal(t, &v); err != nil {
			return nil, fmt.Errorf("parse series: %w", err)
		}
		return v, nil
	}
	var v []float64
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f, err := strconv.ParseFloat(line, 64)
		if err != nil {
			return nil, fmt.Errorf("parse series line %d: %w", n, err)
		}
		v = append(v, f)
	}
	return v, sc.Err()
}
