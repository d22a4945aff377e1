package nomad

import (
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/nomadscalerd/nomadscalerd/nomadtest"
)

// cutProxy forwards to Nomad until cut, then answers every request with a
// 503: a replica behind it stops reaching Nomad as if it had been killed
// (no lock released, no heartbeat removed).
type cutProxy struct {
	cut atomic.Bool
	rp  *httputil.ReverseProxy
}

func (p *cutProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p.cut.Load() {
		http.Error(w, "cut", http.StatusServiceUnavailable)
		return
	}
	p.rp.ServeHTTP(w, r)
}

// A replica that crashes (SIGKILL: no lock released, no heartbeat removed)
// and comes back under a new name (its name holds its pid) after Nomad
// has freed the crashed one's locks takes every shard at once: the
// predecessor's heartbeat, last written well over a lock TTL before on the
// servers' clock, counts for nothing. It used to count as live, claiming
// its shards, for a lock TTL from the restart.
func TestOnARealNomadAReplicaRestartedUnderANewNameAfterACrashDoesNotWaitATTLForItsPredecessorsShards(t *testing.T) {
	agent := nomadtest.StartServer(t, nomadtest.Options{ACLs: true})
	token := agent.TokenFor(t, "nomadscalerd", nomadtest.JobFilePolicy(t, "../deploy/nomad/nomadscalerd.nomad.hcl"))
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	target, err := url.Parse(agent.Addr)
	if err != nil {
		t.Fatal(err)
	}
	proxy := &cutProxy{rp: httputil.NewSingleHostReverseProxy(target)}
	srv := httptest.NewServer(proxy)
	defer srv.Close()
	start := func(addr, name string) (*Shards, func()) { return runReplica(t, addr, token, name, log) }
	old, stopOld := start(srv.URL, "host-100")
	mgmt := agent.Client(t)
	waitFor(t, "the first replica to hold both shards and say so", func() bool {
		v, _, err := mgmt.Variables().Read(HeartbeatPrefix+"host-100", nil)
		return slices.Equal(old.Held(), []int{0, 1}) && err == nil && v != nil && v.Items[heartbeatShardsItem] == "0,1"
	})
	proxy.cut.Store(true)
	stopOld()

	// Nomad frees the locks 2 x 10 s + 1 s after their last renewal.
	freed := func() bool {
		for _, p := range []string{ShardLockPrefix + "0", ShardLockPrefix + "1"} {
			v, _, err := mgmt.Variables().Read(p, nil)
			if err != nil || v.Lock != nil {
				return false
			}
		}
		return true
	}
	waitFor(t, "Nomad to free the crashed replica's locks", freed)

	began := time.Now()
	restarted, stop := start(agent.Addr, "host-200")
	defer stop()
	waitFor(t, "the restarted replica to hold both shards", func() bool { return slices.Equal(restarted.Held(), []int{0, 1}) })
	took := time.Since(began)
	t.Logf("the restarted replica held both shards %.1f s after it started", took.Seconds())
	// A lock TTL is 10 s here; competing at once takes a look and a
	// follower poll (a second each).
	if took >= 5*time.Second {
		t.Errorf("the restarted replica took %.1f s to take its crashed predecessor's free shards: it waited for the predecessor's heartbeat to go stale", took.Seconds())
	}
	// Its heartbeat at the first look, its held shards at the next.
	waitFor(t, "the crashed replica's variables to be removed", func() bool {
		for _, p := range []string{HeartbeatPrefix + "host-100", HeldPrefix + "host-100"} {
			if _, _, err := mgmt.Variables().Read(p, nil); !errors.Is(err, nomadapi.ErrVariablePathNotFound) {
				return false
			}
		}
		return true
	})
}
