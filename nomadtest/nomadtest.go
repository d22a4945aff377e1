// Package nomadtest starts real Nomad agents for integration tests: a
// server (which is also a client) and optional extra client agents, each with
// its own data directory and loopback ports, so one machine holds a small
// multi-node cluster. The binary is the Nomad v1.10.0 that `make deps` builds.
package nomadtest

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	nomad "github.com/hashicorp/nomad/api"
)

// Binary finds the Nomad binary: $NOMADSCALERD_NOMAD_BIN, else
// .cache/nomad/nomad under the module root.
func Binary() (string, error) {
	if p := os.Getenv("NOMADSCALERD_NOMAD_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("nomad binary %s: %w", p, err)
		}
		return p, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			p := filepath.Join(dir, ".cache", "nomad", "nomad")
			if _, err := os.Stat(p); err != nil {
				return "", fmt.Errorf("nomad binary not built (run `make deps`): %w", err)
			}
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}

// Require returns the binary or ends the test: integration tests must run in
// CI, so a missing binary is a failure, not a skip. Under -short they skip.
func Require(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs a Nomad agent")
	}
	p, err := Binary()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Options shape an agent.
type Options struct {
	// Name is the node name; defaults to a unique one.
	Name string
	// NodePool, NodeClass and Datacenter place the node (defaults: "default", "", "dc1").
	NodePool   string
	NodeClass  string
	Datacenter string
	// CPUMHz and MemoryMiB override the fingerprinted size so tests know
	// exactly what fits (0: fingerprinted).
	CPUMHz    int
	MemoryMiB int
	// Meta is added to the node's metadata.
	Meta map[string]string
	// DataDir reuses a data directory (restart tests); default a temp dir.
	DataDir string
	// Ports reuses ports (restart tests).
	Ports *Ports
	// ExtraConfig is appended to the generated HCL.
	ExtraConfig string
	// ACLs enables Nomad's ACL system on a server and bootstraps it:
	// ManagementToken then holds the bootstrap token, which Client and
	// the waits for readiness use, and TokenFor makes tokens of narrower
	// policies.
	ACLs bool
}

// Ports are the agent's listeners.
type Ports struct{ HTTP, RPC, Serf int }

// Agent is a running Nomad agent.
type Agent struct {
	Name    string
	Server  bool
	Addr    string // http://127.0.0.1:port
	Ports   Ports
	DataDir string
	Opts    Options
	// ManagementToken is the bootstrap token of a server started with
	// ACLs ("" without).
	ManagementToken string
	bin             string
	cmd             *exec.Cmd
	log             *LockedBuffer
	done            chan struct{}
	servers         string // for clients: the server's RPC address
	mu              sync.Mutex
}

// LockedBuffer collects a child process's or a logger's output while a
// test reads it.
type LockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (l *LockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String is everything written so far.
func (l *LockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// FreePort asks the kernel for an unused loopback port.
func FreePort(t testing.TB) int {
	t.Helper()
	return FreePorts(t, 1)[0]
}

// FreePorts finds n distinct unused loopback ports, each free for TCP and
// UDP (serf binds both), held open until all are chosen so none comes out
// twice. They are drawn below the kernel's ephemeral range (32768-60999 by
// default): a port the kernel offers for ":0" is one it may also hand to any
// outgoing connection in the gap before the agent binds it, which once took
// an agent's serf port in CI. No port is handed out twice in one test
// binary: a port is free only until whoever asked for it binds it, and a
// later draw in that gap once gave nomad-autoscaler the port of a daemon
// started a moment earlier.
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	handedOut.Lock()
	defer handedOut.Unlock()
	if handedOut.ports == nil {
		handedOut.ports = map[int]bool{}
	}
	ports := make([]int, 0, n)
	for tries := 0; len(ports) < n; tries++ {
		if tries > 1000 {
			t.Fatalf("no free loopback port found in %d tries", tries)
		}
		p := 10000 + rand.IntN(22000)
		if handedOut.ports[p] {
			continue
		}
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		pc, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			ln.Close()
			continue
		}
		defer ln.Close()
		defer pc.Close()
		ports = append(ports, p)
		handedOut.ports[p] = true
	}
	return ports
}

// handedOut holds every port FreePorts has returned in this process.
var handedOut struct {
	sync.Mutex
	ports map[int]bool
}

// portTaken reports whether an agent failed because one of its ports was
// bound by someone else between FreePorts and its own bind; such a start is
// retried on new ports.
func portTaken(log string) bool {
	return strings.Contains(log, "address already in use")
}

var nameSeq struct {
	sync.Mutex
	n int
}

func uniqueName(prefix string) string {
	nameSeq.Lock()
	defer nameSeq.Unlock()
	nameSeq.n++
	return fmt.Sprintf("%s-%d-%d", prefix, os.Getpid(), nameSeq.n)
}

// StartServer starts a single-server cluster whose server is also a client
// node, waits for a leader and a ready node, and stops it when the test ends.
func StartServer(t testing.TB, o Options) *Agent {
	t.Helper()
	a := newAgent(t, Require(t), true, o, "")
	t.Cleanup(a.Stop)
	for attempt := 1; ; attempt++ {
		a.start(t)
		err := a.bootstrapACLs(90 * time.Second)
		if err == nil {
			err = a.WaitNode(a.Name, 90*time.Second)
		}
		if err == nil {
			return a
		}
		if o.Ports == nil && attempt < 4 && portTaken(a.Log()) {
			a.Stop()
			a.newPorts(t)
			continue
		}
		t.Fatalf("nomad agent %s not ready: %v\n--- agent log ---\n%s", a.Name, err, a.Log())
	}
}

// StartClient starts a client-only agent joined to the server s, as another
// node, and waits until that node is ready.
func (s *Agent) StartClient(t testing.TB, o Options) *Agent {
	t.Helper()
	c := newAgent(t, s.bin, false, o, fmt.Sprintf("127.0.0.1:%d", s.Ports.RPC))
	t.Cleanup(c.Stop)
	for attempt := 1; ; attempt++ {
		c.start(t)
		err := s.WaitNodeWhile(c, c.Name, 90*time.Second)
		if err == nil {
			return c
		}
		if o.Ports == nil && attempt < 4 && portTaken(c.Log()) {
			c.Stop()
			c.newPorts(t)
			continue
		}
		t.Fatalf("client %s: %v\n%s", c.Name, err, c.Log())
	}
}

func newAgent(t testing.TB, bin string, server bool, o Options, servers string) *Agent {
	if o.Name == "" {
		o.Name = uniqueName("node")
	}
	if o.Datacenter == "" {
		o.Datacenter = "dc1"
	}
	if o.NodePool == "" {
		o.NodePool = "default"
	}
	if o.DataDir == "" {
		dir, err := os.MkdirTemp("", "nomadtest-")
		if err != nil {
			t.Fatal(err)
		}
		o.DataDir = dir
		t.Cleanup(func() { ReapDir(dir); os.RemoveAll(dir) })
	}
	a := &Agent{Name: o.Name, Server: server, DataDir: o.DataDir, Opts: o, bin: bin, servers: servers}
	if o.Ports != nil {
		a.Ports = *o.Ports
		a.Addr = fmt.Sprintf("http://127.0.0.1:%d", a.Ports.HTTP)
	} else {
		a.newPorts(t)
	}
	return a
}

// newPorts gives the agent fresh ports (before a first start, or after a
// start lost one of its ports to another process).
func (a *Agent) newPorts(t testing.TB) {
	free := FreePorts(t, 3)
	a.Ports = Ports{HTTP: free[0], RPC: free[1], Serf: free[2]}
	a.Addr = fmt.Sprintf("http://127.0.0.1:%d", a.Ports.HTTP)
}

func (a *Agent) config() string {
	var b strings.Builder
	fmt.Fprintf(&b, "name = %q\ndatacenter = %q\ndata_dir = %q\nbind_addr = \"127.0.0.1\"\nlog_level = \"INFO\"\ndisable_update_check = true\n", a.Name, a.Opts.Datacenter, a.DataDir)
	fmt.Fprintf(&b, "ports {\n  http = %d\n  rpc = %d\n  serf = %d\n}\n", a.Ports.HTTP, a.Ports.RPC, a.Ports.Serf)
	fmt.Fprintf(&b, "advertise {\n  http = \"127.0.0.1\"\n  rpc = \"127.0.0.1\"\n  serf = \"127.0.0.1\"\n}\n")
	if a.Server {
		b.WriteString("server {\n  enabled = true\n  bootstrap_expect = 1\n  heartbeat_grace = \"5s\"\n  min_heartbeat_ttl = \"2s\"\n}\n")
	}
	b.WriteString("client {\n  enabled = true\n")
	if a.servers != "" {
		fmt.Fprintf(&b, "  servers = [%q]\n", a.servers)
	}
	fmt.Fprintf(&b, "  node_pool = %q\n", a.Opts.NodePool)
	if a.Opts.NodeClass != "" {
		fmt.Fprintf(&b, "  node_class = %q\n", a.Opts.NodeClass)
	}
	if a.Opts.CPUMHz > 0 {
		fmt.Fprintf(&b, "  cpu_total_compute = %d\n", a.Opts.CPUMHz)
	}
	if a.Opts.MemoryMiB > 0 {
		fmt.Fprintf(&b, "  memory_total_mb = %d\n", a.Opts.MemoryMiB)
	}
	b.WriteString("  gc_interval = \"5s\"\n")
	b.WriteString("  options = {\n    \"fingerprint.denylist\" = \"env_aws,env_gce,env_azure,env_digitalocean\"\n  }\n")
	if len(a.Opts.Meta) > 0 {
		b.WriteString("  meta {\n")
		for k, v := range a.Opts.Meta {
			fmt.Fprintf(&b, "    %q = %q\n", k, v)
		}
		b.WriteString("  }\n")
	}
	b.WriteString("}\n")
	b.WriteString("plugin \"raw_exec\" {\n  config {\n    enabled = true\n  }\n}\n")
	b.WriteString("telemetry {\n  publish_allocation_metrics = true\n  publish_node_metrics = true\n  collection_interval = \"1s\"\n}\n")
	if a.Opts.ACLs {
		b.WriteString("acl {\n  enabled = true\n}\n")
	}
	b.WriteString(a.Opts.ExtraConfig)
	return b.String()
}

func (a *Agent) start(t testing.TB) {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	cfg := filepath.Join(a.DataDir, "agent.hcl")
	if err := os.MkdirAll(a.DataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, []byte(a.config()), 0o644); err != nil {
		t.Fatal(err)
	}
	a.log = &LockedBuffer{}
	a.cmd = exec.Command(a.bin, "agent", "-config", cfg)
	a.cmd.Stdout, a.cmd.Stderr = a.log, a.log
	// Own process group: a test killed mid-run must not leave agents behind
	// holding ports, and Stop can signal the whole group.
	a.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := a.cmd.Start(); err != nil {
		t.Fatalf("start nomad: %v", err)
	}
	a.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(a.cmd, a.done)
}

// Log is what the agent printed.
func (a *Agent) Log() string {
	if a.log == nil {
		return ""
	}
	return a.log.String()
}

// Client returns an API client for the agent.
func (a *Agent) Client(t testing.TB) *nomad.Client {
	t.Helper()
	c, err := nomad.NewClient(&nomad.Config{Address: a.Addr, SecretID: a.ManagementToken})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// bootstrapACLs bootstraps the ACL system of a server started with ACLs,
// once (a restart on the same data directory keeps the token), retrying
// until the server has elected itself.
func (a *Agent) bootstrapACLs(timeout time.Duration) error {
	if !a.Opts.ACLs || a.ManagementToken != "" {
		return nil
	}
	c, err := nomad.NewClient(&nomad.Config{Address: a.Addr})
	if err != nil {
		return err
	}
	a.mu.Lock()
	exited := a.done
	a.mu.Unlock()
	deadline := time.Now().Add(timeout)
	for {
		tok, _, err := c.ACLTokens().Bootstrap(nil)
		if err == nil {
			a.ManagementToken = tok.SecretID
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("agent %s exited", a.Name)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("acl bootstrap: timeout after %s: %w", timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TokenFor creates an ACL policy of these rules, and a client token of
// that policy alone, on a server started with ACLs.
func (a *Agent) TokenFor(t testing.TB, name, rules string) string {
	t.Helper()
	c := a.Client(t)
	if _, err := c.ACLPolicies().Upsert(&nomad.ACLPolicy{Name: name, Rules: rules}, nil); err != nil {
		t.Fatalf("acl policy %s: %v", name, err)
	}
	tok, _, err := c.ACLTokens().Create(&nomad.ACLToken{Name: name, Type: "client", Policies: []string{name}}, nil)
	if err != nil {
		t.Fatalf("acl token of %s: %v", name, err)
	}
	return tok.SecretID
}

// JobFilePolicy is the ACL policy in a job file's header comment: the
// commented lines from the first that opens a namespace block to the
// first comment line left empty after it, without their "#". Tests use it
// to run with the policy an operator is told to grant.
func JobFilePolicy(t testing.TB, path string) string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	in := false
	for line := range strings.SplitSeq(string(raw), "\n") {
		body, ok := strings.CutPrefix(line, "#")
		if !ok {
			if in {
				break
			}
			continue
		}
		if !in && strings.HasPrefix(strings.TrimSpace(body), "namespace ") {
			in = true
		}
		if in {
			if strings.TrimSpace(body) == "" {
				break
			}
			b.WriteString(body + "\n")
		}
	}
	if b.Len() == 0 {
		t.Fatalf("%s: no ACL policy in its header comment", path)
	}
	return b.String()
}

// Stop interrupts the agent and waits for it (kills after 15 s).
func (a *Agent) Stop() {
	a.mu.Lock()
	cmd, done := a.cmd, a.done
	a.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	select {
	case <-done:
		return
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
	// The agent's logmon plugins stay in its process group and outlive it
	// (orphaned to init); the executors run in sessions of their own and
	// are ReapDir's.
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
}

// Kill stops the agent without a graceful shutdown.
func (a *Agent) Kill() {
	a.mu.Lock()
	cmd, done := a.cmd, a.done
	a.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-done
}

// Restart stops the agent and starts it again on the same data dir and ports.
func (a *Agent) Restart(t testing.TB) {
	t.Helper()
	a.Stop()
	a.start(t)
	if a.Server {
		a.WaitReady(t, 90*time.Second)
	}
}

// Start starts a stopped agent again (same data dir and ports).
func (a *Agent) Start(t testing.TB) {
	t.Helper()
	a.start(t)
	if a.Server {
		a.WaitReady(t, 90*time.Second)
	}
}

// WaitReady waits for a leader and for this agent's node to be ready.
func (a *Agent) WaitReady(t testing.TB, timeout time.Duration) {
	t.Helper()
	if err := a.WaitNode(a.Name, timeout); err != nil {
		t.Fatalf("nomad agent %s not ready: %v\n--- agent log ---\n%s", a.Name, err, a.Log())
	}
}

// WaitNode waits until the named node is registered and ready.
func (a *Agent) WaitNode(name string, timeout time.Duration) error {
	return a.WaitNodeWhile(a, name, timeout)
}

// WaitNodeWhile waits, asking a, until the named node is registered and
// ready, and gives up early when the agent that should bring the node
// (proc) exits.
func (a *Agent) WaitNodeWhile(proc *Agent, name string, timeout time.Duration) error {
	proc.mu.Lock()
	exited := proc.done
	proc.mu.Unlock()
	c, err := nomad.NewClient(&nomad.Config{Address: a.Addr, SecretID: a.ManagementToken})
	if err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("agent %s exited", proc.Name)
		default:
		}
		nodes, _, err := c.Nodes().List(nil)
		if err == nil {
			for _, n := range nodes {
				if n.Name == name && n.Status == nomad.NodeStatusReady {
					return nil
				}
			}
			last = fmt.Errorf("node %s not ready yet", name)
		} else {
			last = err
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("timeout after %s: %w", timeout, last)
}

// RawExecJob builds a service job of count n running a raw_exec command.
func RawExecJob(id, group string, n int, command string, args ...string) *nomad.Job {
	job := nomad.NewServiceJob(id, id, "global", 50)
	job.Datacenters = []string{"*"}
	tg := nomad.NewTaskGroup(group, n)
	task := nomad.NewTask("main", "raw_exec")
	task.Config = map[string]any{"command": command, "args": args}
	task.Resources = &nomad.Resources{CPU: intp(100), MemoryMB: intp(64)}
	task.LogConfig = &nomad.LogConfig{MaxFiles: intp(2), MaxFileSizeMB: intp(2)}
	tg.AddTask(task)
	tg.EphemeralDisk = &nomad.EphemeralDisk{SizeMB: intp(20)}
	tg.RestartPolicy = &nomad.RestartPolicy{Attempts: intp(0), Mode: stringp("fail")}
	job.AddTaskGroup(tg)
	return job
}

func intp(i int) *int          { return &i }
func stringp(s string) *string { return &s }
