package awstest

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"
)

// Fault is a response the proxy gives instead of forwarding a request.
type Fault struct {
	// Action is the query-API action it answers, e.g. "SetDesiredCapacity".
	Action string
	// Params, when set, must all equal the request's form values (e.g.
	// AutoScalingGroupName), so one group can fail while another works.
	Params map[string]string
	// Times is how many matching requests it answers; 0 means all.
	Times  int
	Status int
	Body   string
}

// FaultInjectingProxy forwards requests to moto except those a Fault
// matches, which it answers itself. It stands in for the AWS behaviour an
// emulator does not have: throttling, capacity shortages, failed launches.
type FaultInjectingProxy struct {
	// URL is the endpoint to give the code under test.
	URL string

	mu       sync.Mutex
	faults   []*fault
	injected map[string]int // action -> responses injected
	seen     map[string]int // action -> requests received
}

type fault struct {
	Fault
	used int
}

// NewFaultInjectingProxy serves a proxy to target until the test ends.
func NewFaultInjectingProxy(t *testing.T, target string) *FaultInjectingProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatalf("fault-injecting proxy target %q: %v", target, err)
	}
	p := &FaultInjectingProxy{injected: map[string]int{}, seen: map[string]int{}}
	forward := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		form, _ := url.ParseQuery(string(body)) // a body that is no form matches no fault
		if f := p.match(form); f != nil {
			w.Header().Set("Content-Type", "text/xml")
			w.WriteHeader(f.Status)
			_, _ = io.WriteString(w, f.Body)
			return
		}
		forward.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

func (p *FaultInjectingProxy) match(form url.Values) *Fault {
	action := form.Get("Action")
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seen[action]++
	for _, f := range p.faults {
		if f.Action != action || (f.Times > 0 && f.used >= f.Times) {
			continue
		}
		ok := true
		for k, v := range f.Params {
			ok = ok && form.Get(k) == v
		}
		if ok {
			f.used++
			p.injected[action]++
			return &f.Fault
		}
	}
	return nil
}

// Inject adds a fault; earlier ones match first.
func (p *FaultInjectingProxy) Inject(f Fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults = append(p.faults, &fault{Fault: f})
}

// Injected is how many responses to action the proxy made up.
func (p *FaultInjectingProxy) Injected(action string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.injected[action]
}

// Seen is how many requests for action reached the proxy.
func (p *FaultInjectingProxy) Seen(action string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.seen[action]
}

// QueryError is the error document of the query-protocol services (Auto
// Scaling, STS), as AWS sends it with a 400.
func QueryError(code, message string) string {
	return fmt.Sprintf(`<ErrorResponse xmlns="https://autoscaling.amazonaws.com/doc/2011-01-01/">`+
		`<Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error>`+
		`<RequestId>fault-injected</RequestId></ErrorResponse>`, code, message)
}

// EC2Error is EC2's error document.
func EC2Error(code, message string) string {
	return fmt.Sprintf(`<Response><Errors><Error><Code>%s</Code><Message>%s</Message></Error></Errors>`+
		`<RequestID>fault-injected</RequestID></Response>`, code, message)
}

// FailedScalingActivity is a DescribeScalingActivities answer whose one
// activity, started at startTime (RFC 3339), failed with message.
func FailedScalingActivity(group, startTime, message string) string {
	return fmt.Sprintf(`<DescribeScalingActivitiesResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/">`+
		`<DescribeScalingActivitiesResult><Activities><member>`+
		`<ActivityId>fault-injected</ActivityId><AutoScalingGroupName>%s</AutoScalingGroupName>`+
		`<Description>Launching a new EC2 instance.  Status Reason: %s</Description>`+
		`<Cause>an instance was started in response to a difference between desired and actual capacity</Cause>`+
		`<StartTime>%s</StartTime><EndTime>%s</EndTime><StatusCode>Failed</StatusCode>`+
		`<StatusMessage>%s</StatusMessage><Progress>100</Progress></member></Activities>`+
		`</DescribeScalingActivitiesResult><ResponseMetadata><RequestId>fault-injected</RequestId></ResponseMetadata>`+
		`</DescribeScalingActivitiesResponse>`, group, message, startTime, startTime, message)
}
