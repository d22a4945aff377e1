package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/nomadscalerd/nomadscalerd/nodepool"
	"github.com/nomadscalerd/nomadscalerd/nomadtest"
)

// The node-pool end-to-end tests run a real Nomad server that is itself a
// node of the pool "e2e", and let nomadscalerd's command provider start and
// stop further Nomad client agents through shell scripts, as a cloud
// provider would launch and terminate machines.

const (
	e2ePool     = "e2e"
	e2eType     = "small"
	e2eTypeCPU  = 1000
	e2eTypeMem  = 1024
	e2eMaxNodes = 24 // port slots the scripts may use
)

// scaleOutScript starts NOMADSCALER_COUNT client agents in the background,
// each in its own session, and records the session leader's PID under the
// node's name. `timeout` bounds every agent's life so a test binary killed
// without running its cleanups leaves nothing behind for long.
const scaleOutScript = `#!/bin/sh
set -eu
dir=@DIR@
case "$NOMADSCALER_INSTANCE_TYPE" in
@TYPE@) cpu=@CPU@ mem=@MEM@ ;;
*) echo "unknown instance type $NOMADSCALER_INSTANCE_TYPE" >&2; exit 1 ;;
esac
i=0
while [ "$i" -lt "$NOMADSCALER_COUNT" ]; do
	i=$((i + 1))
	n=$(( $(cat "$dir/seq" 2>/dev/null || echo 0) + 1 ))
	echo "$n" > "$dir/seq"
	set -- $(sed -n "${n}p" "$dir/ports")
	if [ "$#" -ne 3 ]; then echo "out of port slots" >&2; exit 1; fi
	name="$NOMADSCALER_POOL-$NOMADSCALER_INSTANCE_TYPE-$n"
	data="$dir/agents/$name"
	mkdir -p "$data"
	cat > "$data/agent.hcl" <<EOF
name = "$name"
datacenter = "dc1"
data_dir = "$data"
bind_addr = "127.0.0.1"
log_level = "INFO"
disable_update_check = true
ports {
  http = $1
  rpc  = $2
  serf = $3
}
advertise {
  http = "127.0.0.1"
  rpc  = "127.0.0.1"
  serf = "127.0.0.1"
}
client {
  enabled           = true
  servers           = ["@SERVER@"]
  node_pool         = "$NOMADSCALER_POOL"
  cpu_total_compute = $cpu
  memory_total_mb   = $mem
  gc_interval       = "5s"
  options = {
    "fingerprint.denylist" = "env_aws,env_gce,env_azure,env_digitalocean"
  }
  meta {
    "nomadscaler_instance_type" = "$NOMADSCALER_INSTANCE_TYPE"
  }
}
plugin "raw_exec" {
  config {
    enabled = true
  }
}
EOF
	setsid timeout -s KILL 600 @NOMAD@ agent -config "$data/agent.hcl" > "$data/agent.log" 2>&1 < /dev/null &
	echo "$!" > "$dir/pids/$name.pid"
	echo "launched $name (pid $!)"
done
`

// terminateScript kills the agent of NOMADSCALER_NODE_NAME with its whole
// session; a node it no longer knows counts as already terminated, as the
// Provider contract asks.
const terminateScript = `#!/bin/sh
set -eu
dir=@DIR@
name="$NOMADSCALER_NODE_NAME"
pidf="$dir/pids/$name.pid"
if [ ! -f "$pidf" ]; then
	echo "$name: no such machine, already terminated"
	exit 0
fi
pid=$(cat "$pidf")
kill -9 -"$pid" 2>/dev/null || true
mv "$pidf" "$dir/pids/$name.gone"
echo "$name $NOMADSCALER_NODE_ID" >> "$dir/terminated"
echo "terminated $name (pid $pid)"
`

// poolCluster is a Nomad server that is a node of the pool, plus the
// scripts of a command provider that add and remove client agents.
type poolCluster struct {
	srv       *nomadtest.Agent
	api       *nomadapi.Client
	serverID  string
	dir       string
	scaleOut  string
	terminate string
}

func startPoolCluster(t *testing.T) *poolCluster {
	t.Helper()
	bin := nomadtest.Require(t)
	srv := nomadtest.StartServer(t, nomadtest.Options{NodePool: e2ePool, CPUMHz: e2eTypeCPU, MemoryMiB: e2eTypeMem,
		Meta: map[string]string{nodepool.DefaultInstanceTypeMeta: e2eType}})
	c := &poolCluster{srv: srv, api: srv.Client(t), dir: t.TempDir()}
	for _, d := range []string{"pids", "agents"} {
		if err := os.MkdirAll(filepath.Join(c.dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var ports strings.Builder
	seen := map[int]bool{}
	for slot := 0; slot < e2eMaxNodes; slot++ {
		var p [3]int
		for i := range p {
			for p[i] == 0 || seen[p[i]] {
				p[i] = nomadtest.FreePort(t)
			}
			seen[p[i]] = true
		}
		fmt.Fprintf(&ports, "%d %d %d\n", p[0], p[1], p[2])
	}
	if err := os.WriteFile(filepath.Join(c.dir, "ports"), []byte(ports.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	r := strings.NewReplacer("@DIR@", c.dir, "@NOMAD@", bin, "@SERVER@", fmt.Sprintf("127.0.0.1:%d", srv.Ports.RPC),
		"@TYPE@", e2eType, "@CPU@", strconv.Itoa(e2eTypeCPU), "@MEM@", strconv.Itoa(e2eTypeMem))
	c.scaleOut, c.terminate = filepath.Join(c.dir, "scale-out.sh"), filepath.Join(c.dir, "terminate.sh")
	for path, src := range map[string]string{c.scaleOut: scaleOutScript, c.terminate: terminateScript} {
		if err := os.WriteFile(path, []byte(r.Replace(src)), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// Registered after t.TempDir, so it runs before the directory goes.
	t.Cleanup(func() { c.killAgents(t) })
	for _, n := range c.nodes(t) {
		if n.Name == srv.Name {
			c.serverID = n.ID
		}
	}
	if c.serverID == "" {
		t.Fatalf("server node %s not in pool %s", srv.Name, e2ePool)
	}
	return c
}

// killAgents kills every agent the scripts started (each leads a session)
// with the task executors of every node (each leads a session of its own
// and names its agent's directory on its command line), and unmounts the secrets directories the
// agents left, so nothing of the test outlives it.
func (c *poolCluster) killAgents(t *testing.T) {
	nomadtest.ReapDir(c.dir)
	nomadtest.ReapDir(c.srv.DataDir)
	if t.Failed() {
		logs, _ := filepath.Glob(filepath.Join(c.dir, "agents", "*", "agent.log"))
		for _, l := range logs {
			b, _ := os.ReadFile(l)
			t.Logf("--- %s ---\n%s", l, tail(string(b), 15))
		}
	}
}

// pools is the daemon's pool configuration: one pool "e2e" of small nodes
// run by the cluster's scripts, with body added to the block.
func (c *poolCluster) pools(t *testing.T, body string) []nodepool.Pool {
	t.Helper()
	src := fmt.Sprintf(`
pool %q {
  node_pool = %q
%s
  instance_type %q {
    cpu_mhz    = %d
    memory_mib = %d
    price      = 0.05
  }
  provider "command" {
    scale_out = %q
    terminate = %q
    timeout   = "30s"
  }
}
`, e2ePool, e2ePool, body, e2eType, e2eTypeCPU, e2eTypeMem, c.scaleOut, c.terminate)
	ps, err := nodepool.ParsePools([]byte(src), "e2e.hcl")
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

// launch runs the scale-out script as the test, for the pool's first nodes,
// and waits until they are ready.
func (c *poolCluster) launch(t *testing.T, n int) {
	t.Helper()
	before := countReady(c.nodes(t))
	cmd := execScript(c.scaleOut, "NOMADSCALER_POOL="+e2ePool, "NOMADSCALER_INSTANCE_TYPE="+e2eType, "NOMADSCALER_COUNT="+strconv.Itoa(n))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("scale-out script: %v\n%s", err, out)
	}
	c.waitNodes(t, 120*time.Second, fmt.Sprintf("%d launched clients ready", n), func(ns []*nomadapi.NodeListStub) bool {
		return countReady(ns) >= before+n
	})
}

// launchedNames lists the agents the scripts started, in launch order.
func (c *poolCluster) launchedNames() []string {
	b, _ := os.ReadFile(filepath.Join(c.dir, "seq"))
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	var out []string
	for i := 1; i <= n; i++ {
		out = append(out, fmt.Sprintf("%s-%s-%d", e2ePool, e2eType, i))
	}
	return out
}

// terminated lists the node names the terminate script removed.
func (c *poolCluster) terminated() []string {
	f, err := os.Open(filepath.Join(c.dir, "terminated"))
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fs := strings.Fields(sc.Text()); len(fs) > 0 {
			out = append(out, fs[0])
		}
	}
	return out
}

// nodes lists the pool's nodes.
func (c *poolCluster) nodes(t *testing.T) []*nomadapi.NodeListStub {
	t.Helper()
	all, _, err := c.api.Nodes().List(nil)
	if err != nil {
		t.Fatalf("list nodes: %v", err)
	}
	var out []*nomadapi.NodeListStub
	for _, n := range all {
		if n.NodePool == e2ePool {
			out = append(out, n)
		}
	}
	return out
}

func (c *poolCluster) waitNodes(t *testing.T, d time.Duration, what string, cond func([]*nomadapi.NodeListStub) bool) {
	t.Helper()
	waitUntil(t, d, what, func() bool { return cond(c.nodes(t)) })
}

func countReady(ns []*nomadapi.NodeListStub) int {
	n := 0
	for _, s := range ns {
		if s.Status == nomadapi.NodeStatusReady {
			n++
		}
	}
	return n
}

// startPoolDaemon runs nomadscalerd against the cluster, reconciling every
// second, and waits until it watches the event stream and has reconciled
// the pool once.
func (c *poolCluster) startPoolDaemon(t *testing.T, db string, pools []nodepool.Pool) *daemon {
	t.Helper()
	d := startDaemon(t, settings{DB: db, NomadAddr: c.srv.Addr, PoolInterval: time.Second, NodeID: c.serverID, Pools: pools})
	waitUntil(t, 60*time.Second, "daemon watching nomad and reconciling the pool", func() bool {
		l := d.logs.String()
		return strings.Contains(l, "watching nomad event stream") && strings.Contains(l, "pool decision")
	})
	return d
}

// metric reads one sample of the daemon's /metrics (0 when absent).
func (d *daemon) metric(t *testing.T, series string) float64 {
	t.Helper()
	res, err := http.Get(d.HTTP + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err != nil {
				t.Fatalf("metric line %q: %v", line, err)
			}
			return v
		}
	}
	return 0
}

// sleepJob is a service job in the pool of count /bin/sleep tasks of the
// given size.
func sleepJob(id string, count, cpuMHz, memMiB int) *nomadapi.Job {
	job := nomadtest.RawExecJob(id, "sleep", count, "/bin/sleep", "3600")
	pool := e2ePool
	job.NodePool = &pool
	job.TaskGroups[0].Tasks[0].Resources = &nomadapi.Resources{CPU: intp(cpuMHz), MemoryMB: intp(memMiB)}
	return job
}

func runningAllocs(t *testing.T, c *nomadapi.Client, job string) int {
	t.Helper()
	allocs, _, err := c.Jobs().Allocations(job, false, nil)
	if err != nil {
		t.Fatalf("allocations of %s: %v", job, err)
	}
	n := 0
	for _, a := range allocs {
		if a.ClientStatus == nomadapi.AllocClientStatusRunning && a.DesiredStatus == nomadapi.AllocDesiredStatusRun {
			n++
		}
	}
	return n
}

func execScript(path string, env ...string) *exec.Cmd {
	cmd := exec.Command(path)
	cmd.Env = append(os.Environ(), env...)
	return cmd
}

func nodeByName(ns []*nomadapi.NodeListStub, name string) *nomadapi.NodeListStub {
	for _, n := range ns {
		if n.Name == name {
			return n
		}
	}
	return nil
}

func TestBlockedEvaluationLaunchesANodeAndTheQueuedAllocationsRun(t *testing.T) {
	c := startPoolCluster(t)
	c.launch(t, 2)
	d := c.startPoolDaemon(t, "", c.pools(t, `
  max = 6
  idle {
    period = "1h"
  }`))

	// Three nodes of 1000 MHz hold two 400 MHz tasks each: eight tasks
	// leave two queued, which one more node holds.
	job := sleepJob("blocked", 8, 400, 128)
	registered := time.Now()
	if _, _, err := c.api.Jobs().Register(job, nil); err != nil {
		t.Fatal(err)
	}
	var providerCalled, nodeReady time.Time
	newNode := fmt.Sprintf("%s-%s-3", e2ePool, e2eType)
	waitUntil(t, 120*time.Second, "a launched node ready", func() bool {
		if providerCalled.IsZero() && len(c.launchedNames()) > 2 {
			providerCalled = time.Now()
		}
		n := nodeByName(c.nodes(t), newNode)
		return n != nil && n.Status == nomadapi.NodeStatusReady
	})
	nodeReady = time.Now()
	waitUntil(t, 120*time.Second, "all 8 allocations running", func() bool { return runningAllocs(t, c.api, "blocked") == 8 })
	allRunning := time.Now()
	t.Logf("scale-out latency: job registered → provider called %s → node %s ready %s → all 8 allocations running %s",
		providerCalled.Sub(registered).Round(time.Millisecond), newNode, nodeReady.Sub(registered).Round(time.Millisecond),
		allRunning.Sub(registered).Round(time.Millisecond))

	if got := d.metric(t, `nomadscaler_pool_scale_out_total{pool="e2e",reason="blocked"}`); got != 1 {
		t.Errorf("blocked scale-outs = %v, want 1", got)
	}
	// Level-triggered reconciles must not launch the node a second time.
	time.Sleep(3 * time.Second)
	if got := c.launchedNames(); len(got) != 3 {
		t.Errorf("launched %v, want exactly one node beyond the first two", got)
	}
}

func TestHeadroomBelowTargetLaunchesANode(t *testing.T) {
	c := startPoolCluster(t)
	c.launch(t, 1)
	// Two nodes of 1000 MHz hold 4 units of 250 MHz each: 8 free of the 6
	// required, until a job takes 4 of them.
	d := c.startPoolDaemon(t, "", c.pools(t, `
  max = 6
  headroom {
    cpu_mhz    = 250
    memory_mib = 128
    units      = 6
  }
  idle {
    period = "1h"
  }`))
	time.Sleep(2 * time.Second)
	if got := c.launchedNames(); len(got) != 1 {
		t.Fatalf("launched %v with 8 of 6 headroom units free, want no scale-out", got)
	}

	if _, _, err := c.api.Jobs().Register(sleepJob("eats-headroom", 2, 500, 256), nil); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 60*time.Second, "both allocations running", func() bool { return runningAllocs(t, c.api, "eats-headroom") == 2 })
	newNode := fmt.Sprintf("%s-%s-2", e2ePool, e2eType)
	waitUntil(t, 120*time.Second, "a node launched for headroom to be ready", func() bool {
		n := nodeByName(c.nodes(t), newNode)
		return n != nil && n.Status == nomadapi.NodeStatusReady
	})
	if got := d.metric(t, `nomadscaler_pool_scale_out_total{pool="e2e",reason="headroom"}`); got != 1 {
		t.Errorf("headroom scale-outs = %v, want 1", got)
	}
	// 4 free units plus the new node's 4 meet the target: nothing more.
	time.Sleep(3 * time.Second)
	if got := c.launchedNames(); len(got) != 2 {
		t.Errorf("launched %v, want exactly one node for headroom", got)
	}
	if got := d.metric(t, `nomadscaler_pool_headroom_units{kind="free",pool="e2e"}`); got != 8 {
		t.Errorf("free headroom units = %v after the scale-out, want 8", got)
	}
}

func TestIdleNodesDrainUnderTheTenPercentCapAndNeverTheDaemonsOwn(t *testing.T) {
	c := startPoolCluster(t)
	c.launch(t, 10)
	c.startPoolDaemon(t, "", c.pools(t, `
  min = 8
  max = 20
  idle {
    period  = "2s"
    periods = 2
  }
  drain {
    deadline = "30s"
  }`))

	// Nodes being removed are the draining ones and the drained ones not
	// yet down: both count against the cap.
	maxRemoving := 0
	waitUntil(t, 180*time.Second, "three idle nodes drained and terminated", func() bool {
		ns := c.nodes(t)
		size, removing := 0, 0
		for _, n := range ns {
			if n.Status == nomadapi.NodeStatusDown {
				continue
			}
			size++
			if n.Drain || n.SchedulingEligibility != nomadapi.NodeSchedulingEligible {
				removing++
				if n.ID == c.serverID {
					t.Fatalf("the daemon's own node %s is being drained", n.Name)
				}
			}
		}
		if limit := nodepool.DrainCap(size, 0.10); removing > limit {
			t.Fatalf("%d of %d nodes draining or drained at once, cap %d", removing, size, limit)
		}
		maxRemoving = max(maxRemoving, removing)
		return countReady(ns) == 8 && len(c.terminated()) == 3
	})
	// The pool is at its minimum: no more drains.
	time.Sleep(4 * time.Second)
	gone := c.terminated()
	if len(gone) != 3 {
		t.Errorf("terminated %v, want 3 nodes (11 down to min 8)", gone)
	}
	for _, name := range gone {
		if name == c.srv.Name {
			t.Errorf("terminated the daemon's own node %s", name)
		}
	}
	if n := countReady(c.nodes(t)); n != 8 {
		t.Errorf("%d ready nodes, want 8", n)
	}
	t.Logf("drained and terminated %v; at most %d node(s) removed at once", gone, maxRemoving)
	if maxRemoving != 1 {
		t.Errorf("at most %d nodes removed at once, want 1 (the cap of a pool of 8 to 11 nodes)", maxRemoving)
	}
}

func TestARestartedDaemonFinishesTheTerminationOfANodeDrainedBeforeItsCrash(t *testing.T) {
	c := startPoolCluster(t)
	c.launch(t, 1)
	client := fmt.Sprintf("%s-%s-1", e2ePool, e2eType)

	// One small task that ignores SIGINT keeps the client draining for
	// its kill timeout: the window in which the daemon is stopped.
	if _, err := c.api.Nodes().ToggleEligibility(c.serverID, false, nil); err != nil {
		t.Fatal(err)
	}
	job := sleepJob("slow-stop", 1, 100, 64)
	task := job.TaskGroups[0].Tasks[0]
	task.Config = map[string]any{"command": "/bin/sh", "args": []string{"-c", "trap '' INT TERM; exec /bin/sleep 3600"}}
	killTimeout := 10 * time.Second
	task.KillTimeout = &killTimeout
	if _, _, err := c.api.Jobs().Register(job, nil); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 60*time.Second, "the slow-stopping task running", func() bool { return runningAllocs(t, c.api, "slow-stop") == 1 })
	if _, err := c.api.Nodes().ToggleEligibility(c.serverID, true, nil); err != nil {
		t.Fatal(err)
	}

	db := filepath.Join(t.TempDir(), "nomadscalerd.db")
	pools := c.pools(t, `
  min = 1
  max = 4
  idle {
    period  = "1s"
    periods = 2
  }
  drain {
    deadline = "2m"
  }`)
	first := c.startPoolDaemon(t, db, pools)
	c.waitNodes(t, 60*time.Second, "the idle client draining", func(ns []*nomadapi.NodeListStub) bool {
		n := nodeByName(ns, client)
		return n != nil && n.Drain
	})
	drainSeen := time.Now()
	first.Stop()
	if n := nodeByName(c.nodes(t), client); n == nil || !n.Drain || len(c.terminated()) > 0 {
		t.Fatalf("the drain ended before the daemon stopped (node %+v, terminated %v): no crash mid-drain to test", n, c.terminated())
	}
	inFlight := poolStatusOf(t, db).InFlight
	if len(inFlight) != 1 || inFlight[0].Kind != nodepool.KindDrain || inFlight[0].NodeName != client || inFlight[0].Phase != nodepool.PhaseDraining {
		t.Fatalf("journal after the crash holds %+v, want the drain of %s", inFlight, client)
	}
	// The drain finishes while no daemon runs.
	c.waitNodes(t, 90*time.Second, "the drain to complete", func(ns []*nomadapi.NodeListStub) bool {
		n := nodeByName(ns, client)
		return n != nil && !n.Drain && n.SchedulingEligibility == nomadapi.NodeSchedulingIneligible
	})
	t.Logf("drain of %s finished %s after the daemon saw it start", client, time.Since(drainSeen).Round(time.Second))
	if got := c.terminated(); len(got) != 0 {
		t.Fatalf("terminated %v with no daemon running", got)
	}

	second := c.startPoolDaemon(t, db, pools)
	c.waitNodes(t, 60*time.Second, "the drained client terminated and down", func(ns []*nomadapi.NodeListStub) bool {
		n := nodeByName(ns, client)
		return n != nil && n.Status == nomadapi.NodeStatusDown && len(c.terminated()) == 1
	})
	if got := c.terminated(); len(got) != 1 || got[0] != client {
		t.Errorf("terminated %v, want only %s", got, client)
	}
	waitUntil(t, 30*time.Second, "the drain closed in the journal", func() bool {
		return strings.Contains(second.logs.String(), "terminated node is down")
	})
	second.Stop()
	if st := poolStatusOf(t, db); len(st.InFlight) != 0 || st.LastDecision == nil {
		t.Errorf("after the termination nodes status shows %+v, want nothing in flight and a last decision", st)
	}
	if n := nodeByName(c.nodes(t), c.srv.Name); n == nil || n.SchedulingEligibility != nomadapi.NodeSchedulingEligible || n.Drain {
		t.Errorf("the daemon's own node was touched: %+v", n)
	}
}

// poolStatusOf runs `nodes status --json` on a stopped daemon's database.
func poolStatusOf(t *testing.T, db string) poolStatus {
	t.Helper()
	var st []poolStatus
	if err := json.Unmarshal([]byte(runCLI(t, "--db", db, "nodes", "status", "--json", "--pool", e2ePool)), &st); err != nil || len(st) != 1 {
		t.Fatalf("nodes status: %v (%d pools)", err, len(st))
	}
	return st[0]
}
