package main

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/nomadscalerd/nomadscalerd/nomad"
)

// leaderLogRe matches the elector's leadership changes in a daemon's text
// log.
var leaderLogRe = regexp.MustCompile(`(?m)^time=(\S+) .*msg="leadership changed" lock=nomadscalerd/leader leader=(true|false)`)

// term is one replica's time as leader: from its own "leadership changed
// leader=true" line to its "leader=false" line, or to when the test killed
// or stopped it; end is zero while it leads.
type term struct {
	replica    string
	start, end time.Time
}

// flapReplica is one daemon process of the flapping test and when it ended.
type flapReplica struct {
	*procDaemon
	name  string
	ended time.Time // SIGKILL or SIGTERM sent; zero while it runs
}

// terms reads the replica's leader terms from its log.
func (r *flapReplica) terms(t *testing.T) []term {
	t.Helper()
	var out []term
	for _, m := range leaderLogRe.FindAllStringSubmatch(r.log.String(), -1) {
		at, err := time.Parse(time.RFC3339Nano, m[1])
		if err != nil {
			t.Fatalf("%s: log time %q: %v", r.name, m[1], err)
		}
		switch {
		case m[2] == "true":
			out = append(out, term{replica: r.name, start: at})
		case len(out) > 0 && out[len(out)-1].end.IsZero():
			out[len(out)-1].end = at
		}
	}
	if n := len(out); n > 0 && out[n-1].end.IsZero() && !r.ended.IsZero() {
		out[n-1].end = r.ended
	}
	return out
}

// collectScalingEvents polls the group's stored scaling events every
// second until ctx ends (Nomad keeps only the last 20 a group), keyed by
// time and message. A failed poll while it runs is retried a second later;
// the last one, when the events are read, must work.
func collectScalingEvents(t *testing.T, ctx context.Context, c *nomadapi.Client, job, group string) func() []nomadapi.ScalingEvent {
	var mu sync.Mutex
	seen := map[string]nomadapi.ScalingEvent{}
	poll := func() error {
		st, _, err := c.Jobs().ScaleStatus(job, nil)
		if err != nil {
			return fmt.Errorf("scale status of %s: %w", job, err)
		}
		mu.Lock()
		defer mu.Unlock()
		for _, e := range st.TaskGroups[group].Events {
			seen[fmt.Sprintf("%d/%s", e.Time, e.Message)] = e
		}
		return nil
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			_ = poll() // retried a second later; the last poll is checked
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
	}()
	return func() []nomadapi.ScalingEvent {
		<-done
		if err := poll(); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		out := make([]nomadapi.ScalingEvent, 0, len(seen))
		for _, e := range seen {
			out = append(out, e)
		}
		sort.Slice(out, func(i, j int) bool { return out[i].Time < out[j].Time })
		return out
	}
}

// streamCountChanges follows Nomad's event stream (topic Job) for job until
// ctx ends and returns the group counts its registrations set, in order,
// each only when it changed.
func streamCountChanges(t *testing.T, ctx context.Context, c *nomadapi.Client, job, group string) func() []int {
	t.Helper()
	evs, err := c.EventStream().Stream(ctx, map[nomadapi.Topic][]string{nomadapi.TopicJob: {job}}, 0, nil)
	if err != nil {
		t.Fatalf("event stream: %v", err)
	}
	var counts []int
	var streamErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		last := -1
		for batch := range evs {
			if batch.Err != nil {
				if ctx.Err() == nil {
					streamErr = batch.Err
				}
				return
			}
			for _, e := range batch.Events {
				if e.Type != "JobRegistered" {
					continue
				}
				j, err := e.Job()
				if err != nil || j == nil {
					streamErr = fmt.Errorf("decode job event %d: %w", e.Index, err)
					return
				}
				for _, tg := range j.TaskGroups {
					if tg.Name != nil && *tg.Name == group && tg.Count != nil && *tg.Count != last {
						last = *tg.Count
						counts = append(counts, last)
					}
				}
			}
		}
	}()
	return func() []int {
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("the event stream did not end within 10 s of its context")
		}
		if streamErr != nil {
			t.Fatalf("event stream: %v", streamErr)
		}
		return counts
	}
}

// Over about a minute, leadership among three replicas (--ha-lock-ttl 21s,
// a 10 s Nomad lock TTL) is
// forced to change again and again: each leader leads for a few seconds,
// then is paused past its TTL and resumed, stopped cleanly and replaced, or
// killed and replaced, while the load follows a 90 s compressed day so the
// leaders scale.
// Every scaling event Nomad stored must come from the replica that led at
// that moment (from the replicas' own logs; tolerance flapTolerance), no
// action id may be applied twice, every count change Nomad's event stream
// shows must be one of those events, and no two replicas may say they lead
// at once.
func TestLeadershipForcedToChangeRepeatedlyNeverLetsANonLeaderScaleNorAnActionApplyTwice(t *testing.T) {
	t.Parallel() // mostly waiting on real agents and lock TTLs
	const (
		ttl = nomad.MinHandOver // a 10 s Nomad lock TTL, Nomad's shortest
		// leadFor is how long each leader leads before it is disrupted.
		leadFor = 6 * time.Second
		// flapTolerance is how far a scaling event's time (stamped by the
		// Nomad server) may lie outside its replica's term as that replica
		// logged it: the scale request's round trip and the log line's
		// own timing. A paused leader that acted on waking would act at
		// least the lock TTL after another replica took over, far beyond
		// it.
		flapTolerance = 2 * time.Second
	)
	agent, c, loadPort, prom := startLoadCluster(t)
	job := nomadapi.NewServiceJob("shop", "shop", "global", 50)
	job.Datacenters = []string{"*"}
	// A compressed day of 90 s: any minute of it moves demand by several
	// replicas (10 requests/s each), so the leaders keep scaling.
	load := loadGroup(t, fmt.Sprintf("127.0.0.1:%d", loadPort), "--pattern", "day", "--low", "5", "--high", "75",
		"--period", "90s", "--noise", "0")
	load.Update = &nomadapi.UpdateStrategy{MaxParallel: intp(0)} // no deployment to block scaling
	job.AddTaskGroup(load)
	job.AddTaskGroup(scalingGroup("web", 1, 1, 10, constantPolicy(nil)))

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	counts := streamCountChanges(t, ctx, c, "shop", "web")
	if _, _, err := c.Jobs().Register(job, nil); err != nil {
		t.Fatal(err)
	}
	events := collectScalingEvents(t, ctx, c, "shop", "web")

	args := []string{"--nomad-addr", agent.Addr, "--prometheus-addr", prom, "--ha", "--ha-lock-ttl", ttl.String()}
	var replicas []*flapReplica
	start := func() *flapReplica {
		d := startDaemonProcess(t, args...)
		r := &flapReplica{procDaemon: d, name: d.replica()}
		replicas = append(replicas, r)
		return r
	}
	live := func() []*flapReplica {
		var out []*flapReplica
		for _, r := range replicas {
			if r.ended.IsZero() {
				out = append(out, r)
			}
		}
		return out
	}
	for range 3 {
		start()
	}
	// leaderOther waits until a replica other than not says it leads,
	// checking all the while that no two do.
	leaderOther := func(not *flapReplica, within time.Duration, what string) *flapReplica {
		t.Helper()
		var l *flapReplica
		waitUntil(t, within, what, func() bool {
			var leaders []*flapReplica
			for _, r := range live() {
				if r.role() == "leader" {
					leaders = append(leaders, r)
				}
			}
			if len(leaders) > 1 {
				t.Fatalf("two replicas say they lead: %s and %s", leaders[0].name, leaders[1].name)
			}
			if len(leaders) == 1 && leaders[0] != not {
				l = leaders[0]
				return true
			}
			return false
		})
		return l
	}
	// hold lets the leader lead for a few seconds, so it scales, checking
	// that no two replicas say they lead.
	hold := func() {
		t.Helper()
		for end := time.Now().Add(leadFor); time.Now().Before(end); time.Sleep(500 * time.Millisecond) {
			n := 0
			for _, r := range live() {
				if r.role() == "leader" {
					n++
				}
			}
			if n > 1 {
				t.Fatalf("%d replicas say they lead at once", n)
			}
		}
	}
	leader := leaderOther(nil, 60*time.Second, "a first leader")
	began := time.Now()
	changes := 0
	// One of each disruption and a second clean stop: about a minute (a
	// pause or a crash waits for Nomad to free the lock).
	kinds := []string{"SIGSTOP", "SIGTERM", "SIGKILL", "SIGTERM"}
	for _, kind := range kinds {
		hold()
		old := leader
		switch kind {
		case "SIGSTOP": // paused past the TTL, then resumed beside the new leader
			if err := old.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			leader = leaderOther(old, 2*ttl+10*time.Second, "a new leader while the old one is paused")
			if err := old.cmd.Process.Signal(syscall.SIGCONT); err != nil {
				t.Fatal(err)
			}
		case "SIGTERM": // a clean stop releases the lock; a new replica joins
			old.ended = time.Now()
			if err := old.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			start()
			leader = leaderOther(old, ttl, "a new leader after a clean stop")
		case "SIGKILL": // a crash leaves the lock to expire; a new replica joins
			old.ended = time.Now()
			if err := old.cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			start()
			leader = leaderOther(old, 2*ttl+10*time.Second, "a new leader after a SIGKILL")
		}
		changes++
		t.Logf("+%4.1fs change %d (%s): %s -> %s", time.Since(began).Seconds(), changes, kind, old.name, leader.name)
	}
	hold()
	stop()
	evs := events()
	streamed := counts()

	var terms []term
	for _, r := range replicas {
		terms = append(terms, r.terms(t)...)
	}
	sort.Slice(terms, func(i, j int) bool { return terms[i].start.Before(terms[j].start) })
	for _, tm := range terms {
		t.Logf("term %s: %s .. %s", tm.replica, tm.start.Format("15:04:05.000"), tm.end.Format("15:04:05.000"))
	}
	if len(terms) < 3 {
		t.Fatalf("%d leader terms in the logs after %d forced changes, want at least 3", len(terms), changes)
	}
	// ledAt reports whether who held a term around at (within the
	// tolerance) and no other replica's term began between its start and
	// at - tolerance: it was the latest to take the lock.
	ledAt := func(who string, at time.Time) bool {
		for i, tm := range terms {
			if tm.replica != who || tm.start.After(at.Add(flapTolerance)) || (!tm.end.IsZero() && tm.end.Before(at.Add(-flapTolerance))) {
				continue
			}
			superseded := false
			for _, other := range terms[i+1:] {
				if other.replica != who && other.start.Before(at.Add(-flapTolerance)) {
					superseded = true
				}
			}
			if !superseded {
				return true
			}
		}
		return false
	}
	actions := map[string]int{}
	applied := map[int]bool{}
	byReplica := map[string]int{}
	for _, e := range evs {
		at := time.Unix(0, int64(e.Time))
		who, _ := e.Meta["replica"].(string)
		id, _ := e.Meta["action_id"].(string)
		if who == "" || id == "" {
			t.Errorf("a scaling event at %s without replica or action_id meta: %s %v", at.Format("15:04:05.000"), e.Message, e.Meta)
			continue
		}
		if e.Count == nil || e.Error {
			continue // a refused or failed scale changed nothing
		}
		applied[int(*e.Count)] = true
		actions[id]++
		// The event's replica name ends with the process's /pid/addr.
		var name string
		for _, r := range replicas {
			if strings.HasSuffix(who, r.name) {
				name = r.name
			}
		}
		byReplica[name]++
		if name == "" || !ledAt(name, at) {
			t.Errorf("%s scaled %d -> %d at %s without leading then (terms above): %s",
				who, e.PreviousCount, *e.Count, at.Format("15:04:05.000"), e.Message)
		}
	}
	for id, n := range actions {
		if n > 1 {
			t.Errorf("action %s applied %d times", id, n)
		}
	}
	for _, n := range streamed[1:] { // the first is the job's registration
		if !applied[n] {
			t.Errorf("the event stream shows the group scaled to %d, but no stored scaling event of nomadscalerd set it (counts %v)", n, streamed)
		}
	}
	t.Logf("%d forced leadership changes in %s; %d terms; %d scaling actions by replica %v; counts streamed %v",
		changes, time.Since(began).Round(time.Second), len(terms), len(actions), byReplica, streamed)
	if len(actions) < 2 {
		t.Errorf("%d scaling actions while demand changed for %s: too few to show anything", len(actions), time.Since(began).Round(time.Second))
	}
}
