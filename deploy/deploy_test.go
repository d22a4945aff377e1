package deploy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/nomadscalerd/nomadscalerd/nomadtest"
	"github.com/nomadscalerd/nomadscalerd/reconciler"
)

// buildDir holds the nomadscalerd binary the tests build; TestMain removes it.
var buildDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "deploy-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	buildDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// buildOnce builds ./cmd/nomadscalerd once per test binary; the HiGHS build
// environment (PKG_CONFIG_PATH, CGO_LDFLAGS) is inherited.
var buildOnce = sync.OnceValues(func() (string, error) {
	out := filepath.Join(buildDir, "nomadscalerd")
	cmd := exec.Command("go", "build", "-o", out, "./cmd/nomadscalerd")
	cmd.Dir = moduleRoot()
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %w\n%s", err, b)
	}
	return out, nil
})

func nomadscalerdBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the CLI")
	}
	p, err := buildOnce()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// moduleRoot is the directory above this package (tests run in deploy/).
func moduleRoot() string {
	wd, err := os.Getwd()
	if err != nil {
		panic(err)
	}
	return filepath.Dir(wd)
}

// jobVars are the variables each job file needs; files not listed need none.
func jobVars(binary string, httpPort int, nomadAddr string) map[string]map[string]string {
	return map[string]map[string]string{
		"demo.nomad.hcl":                  {"nomadscalerd_bin": binary},
		"nomadscalerd-raw_exec.nomad.hcl": {"binary": binary, "http_port": fmt.Sprint(httpPort), "nomad_addr": nomadAddr},
	}
}

func jobFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("nomad/*.nomad.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 4 {
		t.Fatalf("found %d job files in deploy/nomad, want at least the service job, its raw_exec variant, the example app and the demo: %v", len(files), files)
	}
	return files
}

// nomadValidate runs `nomad job validate` with the real binary.
func nomadValidate(t *testing.T, addr, file string, vars map[string]string) (string, error) {
	t.Helper()
	args := []string{"job", "validate", "-address=" + addr}
	for k, v := range vars {
		args = append(args, "-var", k+"="+v)
	}
	out, err := exec.Command(nomadtest.Require(t), append(args, file)...).CombinedOutput()
	return string(out), err
}

func TestEveryJobFileInDeployValidatesWithNomad(t *testing.T) {
	agent := nomadtest.StartServer(t, nomadtest.Options{})
	vars := jobVars("/usr/local/bin/nomadscalerd", 8000, agent.Addr)
	for _, f := range jobFiles(t) {
		out, err := nomadValidate(t, agent.Addr, f, vars[filepath.Base(f)])
		if err != nil {
			t.Errorf("nomad job validate %s: %v\n%s", f, err, out)
		}
	}
	// The check must be able to fail: a broken copy of a job is refused.
	src, err := os.ReadFile("nomad/example-app.nomad.hcl")
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "bad.nomad.hcl")
	broken := strings.Replace(string(src), "min     = 2", "min     = 50", 1) // min above max
	if broken == string(src) {
		t.Fatal("example-app.nomad.hcl no longer has `min     = 2`; update this test")
	}
	if err := os.WriteFile(bad, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := nomadValidate(t, agent.Addr, bad, nil); err == nil {
		t.Errorf("nomad job validate accepted a scaling block with min > max:\n%s", out)
	}
}

func TestEveryExampleScalingPolicyIsAValidNomadscalerPolicy(t *testing.T) {
	agent := nomadtest.StartServer(t, nomadtest.Options{})
	c := agent.Client(t)
	vars := jobVars("/usr/local/bin/nomadscalerd", 8000, agent.Addr)
	policies := 0
	for _, f := range jobFiles(t) {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var varFile strings.Builder
		for k, v := range vars[filepath.Base(f)] {
			fmt.Fprintf(&varFile, "%s = %q\n", k, v)
		}
		job, err := c.Jobs().ParseHCLOpts(&nomadapi.JobsParseRequest{JobHCL: string(src), Variables: varFile.String(), Canonicalize: true})
		if err != nil {
			t.Fatalf("parse %s: %v", f, err)
		}
		for _, tg := range job.TaskGroups {
			if tg.Scaling == nil {
				continue
			}
			// Nomad fills the target from the job when it registers it.
			sp := *tg.Scaling
			sp.Target = map[string]string{"Namespace": "default", "Job": *job.ID, "Group": *tg.Name}
			p, err := reconciler.ParsePolicy(&sp, reconciler.Defaults{CacheSize: 10, ForecastHorizon: 60})
			if err != nil {
				t.Errorf("%s group %s: %v", f, *tg.Name, err)
				continue
			}
			policies++
			if w := p.Warnings(); len(w) > 0 {
				t.Errorf("%s group %s sets what does nothing: %q", f, *tg.Name, w)
			}
			if filepath.Base(f) == "example-app.nomad.hcl" {
				names := map[string]bool{}
				for _, ch := range p.Checks {
					names[ch.Name] = true
				}
				for _, want := range []string{"requests", "avg_response_time", "authentication_awaiting_users", "queue_waiting", "avg_processing_time"} {
					if !names[want] {
						t.Errorf("example app policy has no %q check", want)
					}
				}
			}
		}
	}
	if policies < 2 {
		t.Errorf("found %d nomadscaler policies in the job files, want the example app's and the demo's", policies)
	}
}

func TestExampleConfigFileStartsTheDaemon(t *testing.T) {
	bin := nomadscalerdBinary(t)
	agent := nomadtest.StartServer(t, nomadtest.Options{})
	port := nomadtest.FreePort(t)
	// Flags override the file's db, nomad_addr and http_addr, as in
	// production a Nomad job or a unit file would.
	args := []string{"--db", filepath.Join(t.TempDir(), "n.db"), "run", "--config", "nomad/nomadscalerd.hcl",
		"--nomad-addr", agent.Addr, "--http-addr", fmt.Sprintf("127.0.0.1:%d", port)}
	var logs nomadtest.LockedBuffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	url := fmt.Sprintf("http://127.0.0.1:%d/health", port)
	ok := waitFor(30*time.Second, func() bool {
		select {
		case <-done:
			return true // exited: reported below
		default:
		}
		code, _ := get(url, "")
		return code == http.StatusOK
	})
	if !ok || cmd.ProcessState != nil {
		t.Fatalf("daemon with the example config did not become healthy:\n%s", logs.String())
	}
	// The file's keys took effect: JSON logs, HA, and its one pool.
	for _, want := range []string{`"msg":"node pool configured","pool":"web","min":2,"max":20`, `"ha":true`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, logs.String())
		}
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		done <- err
		if err != nil {
			t.Errorf("daemon exited with %v after SIGTERM:\n%s", err, logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Errorf("daemon did not stop within 30s of SIGTERM")
	}
}

func TestConfigFileWithAnUnknownKeyIsRefusedWithItsLine(t *testing.T) {
	bin := nomadscalerdBinary(t)
	src, err := os.ReadFile("nomad/nomadscalerd.hcl")
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "bad.hcl")
	lines := strings.Count(string(src), "\n")
	if err := os.WriteFile(bad, append(src, []byte("sample_intervall = \"1s\"\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "--db", filepath.Join(t.TempDir(), "n.db"), "run", "--config", bad).CombinedOutput()
	if err == nil {
		t.Fatalf("daemon accepted an unknown key:\n%s", out)
	}
	want := fmt.Sprintf("%s:%d: unknown key \"sample_intervall\"", bad, lines+1)
	if !strings.Contains(string(out), want) {
		t.Errorf("error does not name the key and line (%s):\n%s", want, out)
	}
}

// putJobVariable writes the service job's variable. A fresh server answers
// 500 "keyring has not been initialized yet" for its first seconds, so it
// retries that until the server takes variables.
func putJobVariable(t *testing.T, c *nomadapi.Client, items nomadapi.VariableItems) {
	t.Helper()
	var err error
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		_, _, err = c.Variables().Create(&nomadapi.Variable{Path: "nomad/jobs/nomadscalerd", Items: items}, nil)
		if err == nil || !strings.Contains(err.Error(), "keyring") {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
}

func TestServiceJobRunsOnNomadAndPassesItsHealthCheck(t *testing.T) {
	bin := nomadscalerdBinary(t)
	agent := nomadtest.StartServer(t, nomadtest.Options{})
	c := agent.Client(t)
	port := nomadtest.FreePort(t)
	const apiToken = "e2e-api-token"
	// The job reads its tokens from its own Nomad variable; the dev agent
	// has no ACLs, so the Nomad token is ignored by it.
	putJobVariable(t, c, nomadapi.VariableItems{"nomad_token": "unused-without-acls", "api_token": apiToken})
	src, err := os.ReadFile("nomad/nomadscalerd-raw_exec.nomad.hcl")
	if err != nil {
		t.Fatal(err)
	}
	var varFile strings.Builder
	for k, v := range jobVars(bin, port, agent.Addr)["nomadscalerd-raw_exec.nomad.hcl"] {
		fmt.Fprintf(&varFile, "%s = %q\n", k, v)
	}
	job, err := c.Jobs().ParseHCLOpts(&nomadapi.JobsParseRequest{JobHCL: string(src), Variables: varFile.String(), Canonicalize: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Jobs().Register(job, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _, _ = c.Jobs().Deregister("nomadscalerd", true, nil) })

	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	var body string
	if !waitFor(90*time.Second, func() bool {
		var code int
		code, body = get(base+"/health", "")
		return code == http.StatusOK
	}) {
		t.Fatalf("GET %s/health never answered 200 (last body %q)\n%s", base, body, allocReport(t, c))
	}
	// --ha with one replica: it takes the lock and says so.
	if !waitFor(30*time.Second, func() bool {
		_, body = get(base+"/health", "")
		return strings.Contains(body, `"role":"leader"`)
	}) {
		t.Errorf("the only replica never became leader: %s", body)
	}
	// The API token came from the Nomad variable through the template.
	if code, _ := get(base+"/v1/status", ""); code != http.StatusUnauthorized {
		t.Errorf("GET /v1/status without a token: %d, want 401", code)
	}
	if code, b := get(base+"/v1/status", apiToken); code != http.StatusOK {
		t.Errorf("GET /v1/status with the variable's token: %d %s, want 200", code, b)
	}
	// Nomad's own service check sees it healthy too.
	allocs, _, err := c.Jobs().Allocations("nomadscalerd", false, nil)
	if err != nil || len(allocs) == 0 {
		t.Fatalf("allocations: %v %d", err, len(allocs))
	}
	var checks nomadapi.AllocCheckStatuses
	if !waitFor(30*time.Second, func() bool {
		checks, err = c.Allocations().Checks(allocs[0].ID, nil)
		for _, st := range checks {
			if st.Check == "health" && st.Status == "success" {
				return true
			}
		}
		return false
	}) {
		t.Errorf("nomad's health check never passed: %+v (err %v)", checks, err)
	}
	regs, _, err := c.Services().Get("nomadscalerd", nil)
	if err != nil || len(regs) != 1 || regs[0].Port != port {
		t.Errorf("service registration: %v %+v, want one on port %d", err, regs, port)
	}
}

func TestTwoReplicasOfTheServiceJobElectOneLeader(t *testing.T) {
	bin := nomadscalerdBinary(t)
	agent := nomadtest.StartServer(t, nomadtest.Options{})
	c := agent.Client(t)
	putJobVariable(t, c, nomadapi.VariableItems{"nomad_token": "unused-without-acls", "api_token": "t"})
	src, err := os.ReadFile("nomad/nomadscalerd-raw_exec.nomad.hcl")
	if err != nil {
		t.Fatal(err)
	}
	vars := fmt.Sprintf("binary = %q\nnomad_addr = %q\nhttp_port = 0\ncount = 2\n", bin, agent.Addr)
	job, err := c.Jobs().ParseHCLOpts(&nomadapi.JobsParseRequest{JobHCL: string(src), Variables: vars, Canonicalize: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Jobs().Register(job, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _, _ = c.Jobs().Deregister("nomadscalerd", true, nil) })

	// Both replicas register with Nomad's service discovery on their own
	// ports, both are healthy, and exactly one leads.
	var roles map[string]string
	if !waitFor(90*time.Second, func() bool {
		regs, _, err := c.Services().Get("nomadscalerd", nil)
		if err != nil || len(regs) != 2 {
			return false
		}
		roles = map[string]string{}
		leaders := 0
		for _, r := range regs {
			code, body := get(fmt.Sprintf("http://%s:%d/health", r.Address, r.Port), "")
			if code != http.StatusOK {
				return false
			}
			var h struct{ Role string }
			if json.Unmarshal([]byte(body), &h) != nil {
				return false
			}
			roles[fmt.Sprintf("%s:%d", r.Address, r.Port)] = h.Role
			if h.Role == "leader" {
				leaders++
			}
		}
		return leaders == 1
	}) {
		t.Fatalf("two healthy replicas with one leader never appeared (roles %v)\n%s", roles, allocReport(t, c))
	}
}

func allocReport(t *testing.T, c *nomadapi.Client) string {
	allocs, _, err := c.Jobs().Allocations("nomadscalerd", true, nil)
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, a := range allocs {
		fmt.Fprintf(&b, "alloc %s %s\n", a.ID[:8], a.ClientStatus)
		for task, st := range a.TaskStates {
			for _, e := range st.Events {
				fmt.Fprintf(&b, "  %s: %s %s %s\n", task, e.Type, e.DisplayMessage, e.DriverError)
			}
		}
		if full, _, err := c.Allocations().Info(a.ID, nil); err == nil {
			fs := c.AllocFS()
			for _, f := range []string{"alloc/logs/nomadscalerd.stderr.0", "alloc/logs/nomadscalerd.stdout.0"} {
				if r, err := fs.Cat(full, f, nil); err == nil {
					out, _ := io.ReadAll(io.LimitReader(r, 8000))
					r.Close()
					fmt.Fprintf(&b, "--- %s ---\n%s\n", f, out)
				}
			}
		}
	}
	return b.String()
}

func get(url, token string) (int, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err.Error()
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	return res.StatusCode, string(b)
}

func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(250 * time.Millisecond)
	}
	return cond()
}
