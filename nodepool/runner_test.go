package nodepool

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/nomadscalerd/nomadscalerd/clock"
)

// fakePoolCtl records what the runner asks of a pool controller; OnBlocked
// fails while failures > 0.
type fakePoolCtl struct {
	clk        clock.Clock
	mu         sync.Mutex
	failures   int
	blocked    []blockedCall
	reconciles atomic.Int64
}

type blockedCall struct {
	at     time.Time
	pool   string
	queued []QueuedGroup
}

var _ PoolController = (*fakePoolCtl)(nil)

func (f *fakePoolCtl) Plan(_ context.Context, p Pool) (Decision, error) {
	return Decision{Pool: p.Name, Reason: "planned"}, nil
}

func (f *fakePoolCtl) Reconcile(_ context.Context, p Pool) (Decision, error) {
	f.reconciles.Add(1)
	return Decision{Pool: p.Name, Reason: "reconciled"}, nil
}

func (f *fakePoolCtl) OnBlocked(_ context.Context, p Pool, q []QueuedGroup) (Decision, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.blocked = append(f.blocked, blockedCall{at: f.clk.Now(), pool: p.Name, queued: q})
	if f.failures > 0 {
		f.failures--
		return Decision{Pool: p.Name, Reason: "launch failed"}, errors.New("provider: throttled")
	}
	return Decision{Pool: p.Name, Reason: "launched"}, nil
}

func (f *fakePoolCtl) calls() []blockedCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]blockedCall(nil), f.blocked...)
}

// fakeBlockedSource is Nomad's blocked evaluations and job state.
type fakeBlockedSource struct {
	mu        sync.Mutex
	evals     []*nomadapi.Evaluation
	jobs      map[string]*nomadapi.Job
	summaries map[string]*nomadapi.JobSummary
	lists     int
}

var _ BlockedSource = (*fakeBlockedSource)(nil)

func (f *fakeBlockedSource) BlockedEvaluations(context.Context) ([]*nomadapi.Evaluation, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lists++
	return append([]*nomadapi.Evaluation(nil), f.evals...), nil
}

func (f *fakeBlockedSource) JobState(_ context.Context, _, id string) (*nomadapi.Job, *nomadapi.JobSummary, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	job, ok := f.jobs[id]
	if !ok {
		return nil, nil, errors.New("job not found")
	}
	return job, f.summaries[id], nil
}

func (f *fakeBlockedSource) setQueued(job, group string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.summaries[job].Summary[group] = nomadapi.TaskGroupSummary{Queued: n}
}

type fixedLeader bool

func (l fixedLeader) IsLeader() bool { return bool(l) }

func testJob(id, group string) *nomadapi.Job {
	j := nomadapi.NewServiceJob(id, id, "global", 50)
	j.Datacenters = []string{"dc1"}
	tg := nomadapi.NewTaskGroup(group, 1)
	task := nomadapi.NewTask("main", "raw_exec")
	cpu, mem := 500, 256
	task.Resources = &nomadapi.Resources{CPU: &cpu, MemoryMB: &mem}
	tg.AddTask(task)
	j.AddTaskGroup(tg)
	return j
}

func blockedEval(id, job, group string, failed int) *nomadapi.Evaluation {
	return &nomadapi.Evaluation{ID: id, JobID: job, Namespace: "default", Status: nomadapi.EvalStatusBlocked,
		FailedTGAllocs: map[string]*nomadapi.AllocationMetric{group: {CoalescedFailures: failed - 1, NodesEvaluated: 1, DimensionExhausted: map[string]int{"cpu": 1}}}}
}

func newRunnerHarness(t *testing.T, leader bool, cfg RunnerConfig) (*Runner, *fakePoolCtl, *fakeBlockedSource, *clock.Fake) {
	t.Helper()
	clk := clock.NewFake(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC))
	ctl := &fakePoolCtl{clk: clk}
	src := &fakeBlockedSource{jobs: map[string]*nomadapi.Job{}, summaries: map[string]*nomadapi.JobSummary{}}
	for _, j := range []struct{ id, group string }{{"web", "api"}, {"batch", "work"}} {
		src.jobs[j.id] = testJob(j.id, j.group)
		src.summaries[j.id] = &nomadapi.JobSummary{JobID: j.id, Summary: map[string]nomadapi.TaskGroupSummary{}}
	}
	if cfg.Pools == nil {
		cfg.Pools = []Pool{{Name: "general", Selector: Selector{NodePool: "default"}}}
	}
	if cfg.Interval == 0 {
		cfg.Interval = time.Hour
	}
	r := NewRunner(ctl, src, fixedLeader(leader), clk, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	return r, ctl, src, clk
}

// start runs the runner until the test ends.
func start(t *testing.T, r *Runner) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = r.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

// advanceUntil moves the fake clock in steps until cond holds (giving the
// runner's goroutine a moment after each step), or fails after max.
func advanceUntil(t *testing.T, clk *clock.Fake, step, max time.Duration, cond func() bool) {
	t.Helper()
	for moved := time.Duration(0); ; moved += step {
		for i := 0; i < 50 && !cond(); i++ {
			time.Sleep(time.Millisecond)
		}
		if cond() {
			return
		}
		if moved >= max {
			t.Fatalf("condition not met after advancing the clock %s", max)
		}
		clk.Advance(step)
	}
}

func TestBlockedEvaluationsArrivingTogetherAreDecidedOncePerPoolAfterTheBatchWindow(t *testing.T) {
	r, ctl, src, clk := newRunnerHarness(t, true, RunnerConfig{})
	src.setQueued("web", "api", 3)
	src.setQueued("batch", "work", 2)
	start(t, r)
	advanceUntil(t, clk, time.Millisecond, 0, func() bool { return ctl.reconciles.Load() == 1 })
	for _, ev := range []*nomadapi.Evaluation{blockedEval("e1", "web", "api", 1), blockedEval("e2", "web", "api", 3), blockedEval("e3", "batch", "work", 2)} {
		r.OnBlockedEvaluation(context.Background(), ev)
	}
	clk.Advance(500 * time.Millisecond)
	time.Sleep(20 * time.Millisecond)
	if n := len(ctl.calls()); n != 0 {
		t.Fatalf("%d scale-outs before the batch window closed", n)
	}
	advanceUntil(t, clk, 100*time.Millisecond, 2*time.Second, func() bool { return len(ctl.calls()) > 0 })
	time.Sleep(20 * time.Millisecond)
	calls := ctl.calls()
	if len(calls) != 1 {
		t.Fatalf("%d scale-out decisions for one batch, want 1: %+v", len(calls), calls)
	}
	got := map[string]int{}
	for _, q := range calls[0].queued {
		got[q.Job+"/"+q.Group] = q.Count
		if q.Resources.CPUMHz != 500 || q.Resources.MemoryMiB != 256 {
			t.Errorf("%s/%s resources %+v, want the job's 500 MHz / 256 MiB", q.Job, q.Group, q.Resources)
		}
	}
	if got["web/api"] != 3 || got["batch/work"] != 2 || len(got) != 2 {
		t.Fatalf("queued %v, want web/api 3 (two evaluations of one group counted once) and batch/work 2", got)
	}
}

func TestABlockedEvaluationTheEventStreamMissedIsFoundOnTheNextInterval(t *testing.T) {
	r, ctl, src, clk := newRunnerHarness(t, true, RunnerConfig{Interval: time.Minute})
	start(t, r)
	advanceUntil(t, clk, time.Millisecond, 0, func() bool { return ctl.reconciles.Load() == 1 })
	if len(ctl.calls()) != 0 {
		t.Fatal("scaled out with nothing blocked")
	}
	src.mu.Lock()
	src.evals = []*nomadapi.Evaluation{blockedEval("missed", "web", "api", 4)}
	src.mu.Unlock()
	src.setQueued("web", "api", 4)
	advanceUntil(t, clk, time.Second, 2*time.Minute, func() bool { return len(ctl.calls()) == 1 })
	c := ctl.calls()[0]
	if len(c.queued) != 1 || c.queued[0].Count != 4 || c.pool != "general" {
		t.Fatalf("scale-out %+v, want 4 of web/api in pool general", c)
	}
}

func TestAFailedScaleOutIsRetriedWithBackoffUntilItSucceedsAndThenNotAgain(t *testing.T) {
	r, ctl, src, clk := newRunnerHarness(t, true, RunnerConfig{RetryInitial: 5 * time.Second, RetryMax: time.Minute})
	ctl.failures = 2
	src.setQueued("web", "api", 2)
	start(t, r)
	advanceUntil(t, clk, time.Millisecond, 0, func() bool { return ctl.reconciles.Load() == 1 })
	t0 := clk.Now()
	r.OnBlockedEvaluation(context.Background(), blockedEval("e1", "web", "api", 2))
	advanceUntil(t, clk, 250*time.Millisecond, 2*time.Minute, func() bool { return len(ctl.calls()) == 3 })
	calls := ctl.calls()
	first, second := calls[1].at.Sub(calls[0].at), calls[2].at.Sub(calls[1].at)
	if calls[0].at.Sub(t0) > 2*time.Second {
		t.Errorf("first attempt %s after the evaluation, want within the batch window", calls[0].at.Sub(t0))
	}
	if first < 4*time.Second || first > 6*time.Second {
		t.Errorf("first retry after %s, want about 5 s", first)
	}
	if second <= first {
		t.Errorf("second retry after %s, not longer than the first (%s): no backoff", second, first)
	}
	clk.Advance(10 * time.Minute)
	time.Sleep(50 * time.Millisecond)
	if n := len(ctl.calls()); n != 3 {
		t.Fatalf("%d scale-outs after the success, want no more than 3", n)
	}
}

func TestAFailedScaleOutIsDroppedOnceNomadShowsNothingQueued(t *testing.T) {
	r, ctl, src, clk := newRunnerHarness(t, true, RunnerConfig{RetryInitial: 5 * time.Second, RetryMax: time.Minute})
	ctl.failures = 100
	src.setQueued("web", "api", 2)
	start(t, r)
	advanceUntil(t, clk, time.Millisecond, 0, func() bool { return ctl.reconciles.Load() == 1 })
	r.OnBlockedEvaluation(context.Background(), blockedEval("e1", "web", "api", 2))
	advanceUntil(t, clk, 250*time.Millisecond, time.Minute, func() bool { return len(ctl.calls()) == 1 })
	src.setQueued("web", "api", 0) // placed on a node that came up by itself
	clk.Advance(10 * time.Minute)
	time.Sleep(50 * time.Millisecond)
	if n := len(ctl.calls()); n != 1 {
		t.Fatalf("%d scale-outs, want none after the allocations were placed", n)
	}
	if _, ok := r.nextRetry(); ok {
		t.Fatal("a retry is still scheduled for placed allocations")
	}
}

func TestAFollowerNeitherReconcilesPoolsNorScalesOut(t *testing.T) {
	r, ctl, src, clk := newRunnerHarness(t, false, RunnerConfig{Interval: time.Second})
	src.evals = []*nomadapi.Evaluation{blockedEval("e1", "web", "api", 1)}
	src.setQueued("web", "api", 1)
	start(t, r)
	r.OnBlockedEvaluation(context.Background(), blockedEval("e2", "web", "api", 1))
	for range 20 {
		clk.Advance(time.Second)
		time.Sleep(2 * time.Millisecond)
	}
	if n, m := ctl.reconciles.Load(), len(ctl.calls()); n != 0 || m != 0 {
		t.Fatalf("follower reconciled %d times and scaled out %d times", n, m)
	}
}

func TestTheEventWatcherNeverWaitsForTheRunnerEvenWithAFullQueue(t *testing.T) {
	r, _, _, _ := newRunnerHarness(t, true, RunnerConfig{QueueSize: 1})
	done := make(chan struct{})
	go func() {
		for i := range 5 {
			r.OnBlockedEvaluation(context.Background(), blockedEval(string(rune('a'+i)), "web", "api", 1))
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("OnBlockedEvaluation blocked with the runner not running")
	}
	if len(r.queue) != 1 {
		t.Fatalf("queue holds %d, want 1 (the rest dropped for the next listing)", len(r.queue))
	}
}

func TestQueuedFromStateTrustsTheJobSummary(t *testing.T) {
	job := testJob("web", "api")
	cases := []struct {
		name    string
		evals   []*nomadapi.Evaluation
		summary *nomadapi.JobSummary
		want    int // queued count of web/api; -1 for none
	}{
		{"no summary: the evaluation's count", []*nomadapi.Evaluation{blockedEval("a", "web", "api", 3)}, nil, 3},
		{"two evaluations of one group: the larger", []*nomadapi.Evaluation{blockedEval("a", "web", "api", 3), blockedEval("b", "web", "api", 5)}, nil, 5},
		{"summary queues more than the evaluation saw", []*nomadapi.Evaluation{blockedEval("a", "web", "api", 3)},
			&nomadapi.JobSummary{Summary: map[string]nomadapi.TaskGroupSummary{"api": {Queued: 7}}}, 7},
		{"summary shows it placed", []*nomadapi.Evaluation{blockedEval("a", "web", "api", 3)},
			&nomadapi.JobSummary{Summary: map[string]nomadapi.TaskGroupSummary{"api": {Queued: 0, Running: 3}}}, -1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := QueuedFromState(c.evals, job, c.summary)
			if c.want < 0 {
				if len(got) != 0 {
					t.Fatalf("got %+v, want nothing queued", got)
				}
				return
			}
			if len(got) != 1 || got[0].Count != c.want {
				t.Fatalf("got %+v, want one group with %d queued", got, c.want)
			}
		})
	}
}

// endingLease is a leadership whose term the test ends.
type endingLease struct{ ctx context.Context }

func (l endingLease) IsLeader() bool           { return l.ctx.Err() == nil }
func (l endingLease) Context() context.Context { return l.ctx }

// hangingCtl is a pool controller whose scale-out hangs until its context
// ends, reporting why it ended.
type hangingCtl struct {
	fakePoolCtl
	started chan struct{}
	ended   chan error
}

func (h *hangingCtl) OnBlocked(ctx context.Context, p Pool, _ []QueuedGroup) (Decision, error) {
	close(h.started)
	<-ctx.Done()
	h.ended <- ctx.Err()
	return Decision{Pool: p.Name}, ctx.Err()
}

func TestPoolWorkInFlightStopsWhenTheLeadersTermEnds(t *testing.T) {
	term, endTerm := context.WithCancel(context.Background())
	clk := clock.NewFake(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC))
	ctl := &hangingCtl{fakePoolCtl: fakePoolCtl{clk: clk}, started: make(chan struct{}), ended: make(chan error, 1)}
	src := &fakeBlockedSource{jobs: map[string]*nomadapi.Job{"web": testJob("web", "api")},
		summaries: map[string]*nomadapi.JobSummary{"web": {Summary: map[string]nomadapi.TaskGroupSummary{"api": {Queued: 2}}}},
		evals:     []*nomadapi.Evaluation{blockedEval("e1", "web", "api", 2)}}
	r := NewRunner(ctl, src, endingLease{term}, clk, RunnerConfig{Pools: []Pool{{Name: "general", Selector: Selector{NodePool: "default"}}}, Interval: time.Hour},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	start(t, r)
	select {
	case <-ctl.started:
	case <-time.After(5 * time.Second):
		t.Fatal("the runner never scaled out for the listed blocked evaluation")
	}
	endTerm()
	select {
	case err := <-ctl.ended:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("scale-out ended with %v, want it cancelled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the scale-out kept running after the term ended")
	}
}

func TestAJobPinnedToANodeClassTargetsOnlyThePoolOfThatClass(t *testing.T) {
	pinned := func(where string, class string) *nomadapi.Job {
		j := testJob("web", "api")
		c := nomadapi.NewConstraint("${node.class}", "=", class)
		switch where {
		case "job":
			j.Constraints = append(j.Constraints, c)
		case "group":
			j.TaskGroups[0].Constraints = append(j.TaskGroups[0].Constraints, c)
		case "task":
			j.TaskGroups[0].Tasks[0].Constraints = append(j.TaskGroups[0].Tasks[0].Constraints, c)
		}
		return j
	}
	spot := Selector{NodePool: "default", NodeClass: "spot"}
	for _, tc := range []struct {
		name string
		job  *nomadapi.Job
		sel  Selector
		want bool
	}{
		{"unpinned job, class pool", testJob("web", "api"), spot, true},
		{"pinned to the pool's class", pinned("job", "spot"), spot, true},
		{"pinned to another class at the job", pinned("job", "ondemand"), spot, false},
		{"pinned to another class in a group", pinned("group", "ondemand"), spot, false},
		{"pinned to another class in a task", pinned("task", "ondemand"), spot, false},
		{"pinned, but the pool names no class", pinned("job", "ondemand"), Selector{NodePool: "default"}, true},
	} {
		if got := JobTargetsPool(tc.job, tc.sel); got != tc.want {
			t.Errorf("%s: JobTargetsPool = %v, want %v", tc.name, got, tc.want)
		}
	}
}
