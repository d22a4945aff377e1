package nomad

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/nomadscalerd/nomadscalerd/clock"
)

// silentNomad is an HTTP transport to a Nomad that takes every request
// and answers those grant lets through (a granted lock acquire), leaving
// the others unanswered until the request's context ends, as a server
// that stopped answering does to a real transport. It records the lock
// operation of every request, in order.
type silentNomad struct {
	grant func(op string) bool
	// gone ends the requests still waiting when the test is over, so
	// that nothing is left running however the code under test behaves.
	gone chan struct{}

	mu      sync.Mutex
	ops     []string
	waiting []string // the operations of the requests not answered yet
}

func (n *silentNomad) RoundTrip(r *http.Request) (*http.Response, error) {
	var op string
	for k := range r.URL.Query() {
		if strings.HasPrefix(k, "lock-") {
			op = k
		}
	}
	n.mu.Lock()
	n.ops = append(n.ops, op)
	n.mu.Unlock()
	if r.Body != nil {
		_ = r.Body.Close()
	}
	if n.grant != nil && n.grant(op) {
		body := `{"Path":"` + LeaderLockPath + `","Lock":{"TTL":"10s","LockDelay":"1s","ID":"lock-1"}}`
		return &http.Response{StatusCode: http.StatusOK, Header: http.Header{"X-Nomad-Index": {"1"}},
			Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)), Request: r}, nil
	}
	n.mu.Lock()
	n.waiting = append(n.waiting, op)
	n.mu.Unlock()
	defer func() {
		n.mu.Lock()
		defer n.mu.Unlock()
		n.waiting = slices.Delete(n.waiting, slices.Index(n.waiting, op), slices.Index(n.waiting, op)+1)
	}()
	select {
	case <-r.Context().Done():
		return nil, r.Context().Err()
	case <-n.gone:
		return nil, errors.New("test over")
	}
}

func (n *silentNomad) unanswered() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.waiting...)
}

func (n *silentNomad) sent() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.ops...)
}

// runOnSilentNomad runs, inside a synctest bubble (its clock moves only
// when every goroutine waits), a Leader on Nomad's own lock client over
// the silentNomad n. It returns the leader, the run's cancel and a channel
// closed when Run returns.
func runOnSilentNomad(t *testing.T, n *silentNomad) (*Leader, context.CancelFunc, chan struct{}) {
	t.Helper()
	c, err := newClientOver(n)
	if err != nil {
		t.Fatal(err)
	}
	l := NewLeader(c, MinHandOver, clock.Real{}, nil, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = l.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); close(n.gone); <-done })
	return l, cancel, done
}

// newClientOver is a Client whose requests go to rt.
func newClientOver(rt http.RoundTripper) (*Client, error) {
	cfg := nomadapi.DefaultConfig()
	cfg.Address = "http://nomad.invalid:4646"
	hc := &http.Client{Transport: rt}
	cfg.HttpClient = hc
	return newClient(cfg, cfg.Address, "", hc, nil)
}

func TestAFollowerStopsAtOnceWhileItsLockAcquireWaitsOnANomadThatNeverAnswers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := &silentNomad{gone: make(chan struct{})}
		_, cancel, done := runOnSilentNomad(t, n)
		synctest.Wait()
		if ops := n.sent(); len(ops) != 1 || ops[0] != "lock-acquire" {
			t.Fatalf("requests %v, want one lock acquire waiting for an answer", ops)
		}
		cancel()
		// No time passes: the acquire is cut off by the stop itself.
		synctest.Wait()
		select {
		case <-done:
		default:
			t.Error("Run is still waiting on Nomad's answer to the lock acquire after its context ended")
		}
	})
}

func TestALeaderStoppingReleasesItsLockWithinTheReleaseDeadlineWhenNomadNeverAnswers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := &silentNomad{gone: make(chan struct{}), grant: func(op string) bool { return op == "lock-acquire" }}
		l, cancel, done := runOnSilentNomad(t, n)
		synctest.Wait()
		if !l.IsLeader() {
			t.Fatalf("not leader after a granted acquire (requests %v)", n.sent())
		}
		stopped := time.Now()
		cancel()
		// A minute on the bubble's clock, which moves only when every
		// goroutine waits: no wall-clock time is measured.
		select {
		case <-done:
		case <-time.After(time.Minute):
			t.Fatalf("Run did not return within a minute of its context ending while Nomad did not answer the release (requests %v)", n.sent())
		}
		if took := time.Since(stopped); took > releaseTimeout {
			t.Errorf("Run returned %s after its context ended, want within the release deadline %s", took, releaseTimeout)
		}
		if ops := n.sent(); len(ops) != 2 || ops[1] != "lock-release" {
			t.Errorf("requests %v, want the acquire then a release on the way out", ops)
		}
	})
}

func TestARenewalWaitingOnANomadThatNeverAnswersIsCutOffWhenTheLeaseRunsOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		acquires := 0 // only the Run goroutine sends requests
		n := &silentNomad{gone: make(chan struct{}), grant: func(op string) bool {
			if op == "lock-acquire" {
				acquires++
			}
			return op == "lock-acquire" && acquires == 1
		}}
		l, _, _ := runOnSilentNomad(t, n)
		synctest.Wait()
		if !l.IsLeader() {
			t.Fatalf("not leader after a granted acquire (requests %v)", n.sent())
		}
		// The renewal is sent at 5 s and never answered; the lease (10 s
		// TTL less 1 s) runs out at 9 s, the release is given up at 12 s,
		// and a follower asks for the lock again at 13 s.
		time.Sleep(14 * time.Second)
		synctest.Wait()
		if l.IsLeader() {
			t.Error("still leader after the lease ran out")
		}
		if ops := n.sent(); !slices.Equal(ops, []string{"lock-acquire", "lock-renew", "lock-release", "lock-acquire"}) {
			t.Errorf("requests %v, want acquire, renew, release, acquire", ops)
		}
		if w := n.unanswered(); !slices.Equal(w, []string{"lock-acquire"}) {
			t.Errorf("requests still waiting on Nomad: %v, want only the follower's new acquire", w)
		}
	})
}
