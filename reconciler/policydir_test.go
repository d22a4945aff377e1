package reconciler

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/nomadscalerd/nomadscalerd/store"
)

type listedPolicies []*nomadapi.ScalingPolicy

func (l listedPolicies) ListPolicies(context.Context) ([]*nomadapi.ScalingPolicy, error) {
	return l, nil
}

// filePolicy is a policy file of the nomad-autoscaler layout for one group.
func filePolicy(name, job, group, extraTarget string) string {
	return `scaling "` + name + `" {
  enabled = true
  min     = 1
  max     = 5
  policy {
    check "cpu" {
      source = "nomad-apm"
      query  = "avg_cpu-allocated"
      strategy "target-value" {
        target = 70
      }
    }
    target "nomadscaler" {
      namespace = "default"
      job       = "` + job + `"
      group     = "` + group + `"
      ` + extraTarget + `
    }
  }
}
`
}

func writeFile(t *testing.T, path, src string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
}

// testController is a controller whose workers never scale (a follower),
// reading dir and the given Nomad policies.
func testController(t *testing.T, dir string, nomadPolicies listedPolicies, log *slog.Logger) *Controller {
	t.Helper()
	d, err := NewPolicyDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(filepath.Join(t.TempDir(), "c.db"), store.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	c := NewController(New(Deps{Leader: follower{}, State: db, Log: log}), nomadPolicies, Defaults{CacheSize: 10, ForecastHorizon: 60}, nil, log)
	c.SetPolicyDir(d)
	return c
}

func keysOf(ps []Policy) string {
	var ks []string
	for _, p := range ps {
		ks = append(ks, p.Key)
	}
	return strings.Join(ks, " ")
}

func TestPolicyFilesRunBesideJobPoliciesAndMalformedOnesAreReportedAndSkipped(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a-web.hcl"), filePolicy("web", "shop", "web", "")+filePolicy("api", "shop", "api", `cache_sise = 3`))
	writeFile(t, filepath.Join(dir, "b-broken.hcl"), `scaling "x" {`)
	writeFile(t, filepath.Join(dir, "c-taken.hcl"), filePolicy("again", "shop", "web", ""))
	writeFile(t, filepath.Join(dir, "d-job-owned.hcl"), filePolicy("owned", "billing", "worker", ""))
	writeFile(t, filepath.Join(dir, "e-other.hcl"), strings.Replace(filePolicy("theirs", "shop", "cart", ""), `target "nomadscaler"`, `target "nomad-target"`, 1))
	writeFile(t, filepath.Join(dir, "f.json"), `{"scaling": `)
	writeFile(t, filepath.Join(dir, "notes.txt"), `not a policy`)
	job := seedPolicy()
	job.Target = map[string]string{"Namespace": "default", "Job": "billing", "Group": "worker"}
	delete(targetBody(job), "namespace")
	delete(targetBody(job), "job")
	delete(targetBody(job), "group")
	c := testController(t, dir, listedPolicies{job}, slog.New(slog.DiscardHandler))
	var first map[string]string
	for i := 0; i < 5; i++ {
		if err := c.Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := keysOf(c.Policies()); got != "default/billing/worker default/shop/web" {
			t.Fatalf("active = %q, want the job's policy and the one good file policy", got)
		}
		inv := c.Invalid()
		if i == 0 {
			first = inv
		} else if len(inv) != len(first) {
			t.Fatalf("refresh %d reported %v, the first %v", i, inv, first)
		}
		for k, v := range first {
			if inv[k] != v {
				t.Fatalf("refresh %d reported %q for %s, the first %q", i, inv[k], k, v)
			}
		}
	}
	want := map[string]string{
		filepath.Join(dir, "a-web.hcl") + ":21":      `target "nomadscaler": unknown key "cache_sise"`,
		filepath.Join(dir, "b-broken.hcl"):           "b-broken.hcl:1,",
		filepath.Join(dir, "c-taken.hcl") + ":1":     "group default/shop/web already has a policy, in " + filepath.Join(dir, "a-web.hcl") + ":1",
		filepath.Join(dir, "d-job-owned.hcl") + ":1": "group default/billing/worker already has a policy, in job billing",
		filepath.Join(dir, "f.json"):                 "f.json:1,",
	}
	if len(first) != len(want) {
		t.Errorf("invalid = %v, want %d entries", first, len(want))
	}
	for where, frag := range want {
		if !strings.Contains(first[where], frag) {
			t.Errorf("invalid[%s] = %q, want it to contain %q", where, first[where], frag)
		}
	}
}

// runController runs c until the test ends.
func runController(t *testing.T, c *Controller) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestAnEditedPolicyFileIsReadWithinAPoll(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "web.hcl")
	writeFile(t, path, filePolicy("web", "shop", "web", ""))
	c := testController(t, dir, nil, slog.New(slog.DiscardHandler))
	c.filePoll = 20 * time.Millisecond
	runController(t, c)
	waitFor(t, "the first policy", func() bool { return keysOf(c.Policies()) == "default/shop/web" })
	writeFile(t, path, filePolicy("web", "shop", "web", "")+filePolicy("api", "shop", "api", ""))
	waitFor(t, "the added policy", func() bool { return keysOf(c.Policies()) == "default/shop/api default/shop/web" })
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the removed policies", func() bool { return keysOf(c.Policies()) == "" })
}

func TestAReloadRereadsPolicyFilesAtOnceEvenWhenTheirTimesAreUnchanged(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "web.hcl")
	writeFile(t, path, filePolicy("web", "shop", "web", ""))
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	c := testController(t, dir, nil, slog.New(slog.DiscardHandler))
	c.filePoll = time.Hour
	runController(t, c)
	waitFor(t, "the first policy", func() bool { return keysOf(c.Policies()) == "default/shop/web" })
	// Same size, same modification time: only a reload can tell.
	writeFile(t, path, strings.Replace(filePolicy("web", "shop", "web", ""), "max     = 5", "max     = 6", 1))
	if err := os.Chtimes(path, st.ModTime(), st.ModTime()); err != nil {
		t.Fatal(err)
	}
	c.Reload()
	waitFor(t, "max 6 after the reload", func() bool {
		ps := c.Policies()
		return len(ps) == 1 && ps[0].Max == 6
	})
}

func TestAPolicyDirThatCannotBeListedDoesNotStopAFakeNomadsPoliciesFromBeingRead(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "policies")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "web.hcl"), filePolicy("web", "shop", "web", ""))
	src := &mutablePolicies{}
	d, err := NewPolicyDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(filepath.Join(t.TempDir(), "c.db"), store.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	log := slog.New(slog.DiscardHandler)
	c := NewController(New(Deps{Leader: follower{}, State: db, Log: log}), src, Defaults{CacheSize: 10, ForecastHorizon: 60}, nil, log)
	c.SetPolicyDir(d)
	if err := c.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := keysOf(c.Policies()); got != "default/shop/web" {
		t.Fatalf("active = %q, want the file's policy", got)
	}
	// The directory goes (an unmounted volume, a deploy that replaces
	// it) while a job with a policy is registered.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	job := seedPolicy()
	job.Target = map[string]string{"Namespace": "default", "Job": "billing", "Group": "worker"}
	for _, k := range []string{"namespace", "job", "group"} {
		delete(targetBody(job), k)
	}
	src.set(job)
	err = c.Refresh(context.Background())
	if err == nil || !strings.Contains(err.Error(), dir) {
		t.Errorf("Refresh = %v, want the unreadable directory reported", err)
	}
	// The job's policy is read; the files' policies are kept as last read.
	if got := keysOf(c.Policies()); got != "default/billing/worker default/shop/web" {
		t.Errorf("active = %q, want the job's policy and the file's as last read", got)
	}
}

func TestAFilePolicyRefusedForAJobsPolicyIsNoLongerReportedOnceAFakeJobDropsIt(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "web.hcl")
	writeFile(t, path, filePolicy("web", "shop", "web", ""))
	src := &jobPolicies{}
	d, err := NewPolicyDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(filepath.Join(t.TempDir(), "c.db"), store.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	log := slog.New(slog.DiscardHandler)
	c := NewController(New(Deps{Leader: follower{}, State: db, Log: log}), src, Defaults{CacheSize: 10, ForecastHorizon: 60}, nil, log)
	c.SetPolicyDir(d)
	if err := c.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	jobEvent := []nomadapi.Event{{Topic: nomadapi.TopicJob, Type: "JobRegistered", Payload: map[string]any{"Job": map[string]any{"Namespace": "default", "ID": "shop"}}}}
	// Job shop gets a policy of its own for the group: the file's is
	// refused, naming the job.
	job := seedPolicy()
	job.Target = map[string]string{"Namespace": "default", "Job": "shop", "Group": "web"}
	for _, k := range []string{"namespace", "job", "group"} {
		delete(targetBody(job), k)
	}
	src.set(job)
	c.HandleEvents(context.Background(), 10, jobEvent)
	if got := c.Invalid()[path+":1"]; !strings.Contains(got, "in job shop") {
		t.Fatalf("invalid[%s] = %q, want the file refused for job shop's policy", path+":1", got)
	}
	// The job is registered again without it: the file's policy runs,
	// and nothing says it is refused.
	src.set()
	c.HandleEvents(context.Background(), 11, jobEvent)
	ps := c.Policies()
	if len(ps) != 1 || ps[0].Key != "default/shop/web" || !strings.HasPrefix(ps[0].ID, "file:") {
		t.Fatalf("active = %+v, want the file's policy for default/shop/web", ps)
	}
	if inv := c.Invalid(); len(inv) != 0 {
		t.Errorf("invalid = %v while the file's policy runs, want none", inv)
	}
}

func TestAPolicyDirThatGoesIsWarnedAboutOnceNotAtEveryPoll(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "policies")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "web.hcl"), filePolicy("web", "shop", "web", ""))
	var mu sync.Mutex
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&lockedBuilder{mu: &mu, b: &logs}, nil))
	c := testController(t, dir, nil, log)
	c.filePoll = 10 * time.Millisecond
	runController(t, c)
	waitFor(t, "the first policy", func() bool { return keysOf(c.Policies()) == "default/shop/web" })
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	// Thirty polls or more while it is gone.
	time.Sleep(300 * time.Millisecond)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the directory noticed again", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return strings.Contains(logs.String(), "policy dir readable again")
	})
	mu.Lock()
	defer mu.Unlock()
	if n := strings.Count(logs.String(), "policy dir unreadable"); n != 1 {
		t.Errorf("%d warnings about the unreadable directory, want 1:\n%s", n, logs.String())
	}
}

// lockedBuilder is a log sink safe for the controller's goroutines.
type lockedBuilder struct {
	mu *sync.Mutex
	b  *strings.Builder
}

func (l *lockedBuilder) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
