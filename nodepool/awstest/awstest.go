// Package awstest runs moto, an AWS API emulator, as a server for tests of
// code that talks to AWS, and puts a fault-injecting proxy in front of it
// for the failures moto cannot produce (throttling, capacity shortages).
//
// moto is installed by scripts/install-moto.sh (part of make deps). Start
// skips under -short and fails, never skips, when moto is missing: a test
// run that silently left out the AWS tests would look green for nothing.
package awstest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/nomadscalerd/nomadscalerd/nomadtest"
)

// Region is the region the emulator is used in.
const Region = "us-east-1"

// Python is the interpreter Debian's python3-moto is installed for. Not the
// python3 on PATH: a pyenv or virtualenv one may hold another moto, or none.
const Python = "/usr/bin/python3"

// Moto is a running moto server.
type Moto struct {
	// URL is the server's endpoint, e.g. http://127.0.0.1:12345.
	URL string
}

// Start runs `python3 -m moto.server` on a free loopback port until the
// test ends, and points the AWS SDK's default chain at fake credentials
// and Region through the environment (so the test must not be parallel).
func Start(t *testing.T) *Moto {
	t.Helper()
	if testing.Short() {
		t.Skip("moto: AWS emulator tests do not run under -short")
	}
	if out, err := exec.Command(Python, "-c", "import moto.server").CombinedOutput(); err != nil {
		t.Fatalf("moto is not installed (%s -c 'import moto.server': %v: %s); install it with `make deps` or `bash scripts/install-moto.sh .cache/moto`", Python, err, bytes.TrimSpace(out))
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "testing")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "testing")
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_REGION", Region)
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_DEFAULT_PROFILE", "")
	// Keep a developer's own AWS files and instance metadata out of it.
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/config")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/credentials")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	var errs []error
	// Another process may bind the port between FreePort and moto; then
	// start again on a new one.
	for range 3 {
		m, err := start(t, nomadtest.FreePort(t))
		if err == nil {
			return m
		}
		errs = append(errs, err)
	}
	t.Fatalf("moto did not start: %v", errors.Join(errs...))
	return nil
}

func start(t *testing.T, port int) (*Moto, error) {
	t.Helper()
	var out syncBuffer
	cmd := exec.Command(Python, "-m", "moto.server", "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	// moto needs none of the test's AWS settings, and botocore inside it
	// rejects some (an empty AWS_PROFILE names a profile that is not there).
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Stdout, cmd.Stderr = &out, &out
	// Its own process group, so the server's children die with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start moto: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	}
	m := &Moto{URL: fmt.Sprintf("http://127.0.0.1:%d", port)}
	// Importing moto takes seconds on a loaded machine.
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-exited:
			exited <- err
			return nil, fmt.Errorf("moto on port %d exited: %v: %s", port, err, out.String())
		default:
		}
		resp, err := http.Get(m.URL + "/moto-api/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("moto on port %d not answering after 60s: %s", port, out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			// moto logs a line per request; the end is what explains a failure.
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			t.Logf("moto output (last %d lines):\n%s", min(len(lines), 40), strings.Join(lines[max(len(lines)-40, 0):], "\n"))
		}
	})
	return m, nil
}

// Reset empties the emulator, so tests sharing one server start clean.
func (m *Moto) Reset(t *testing.T) {
	t.Helper()
	resp, err := http.Post(m.URL+"/moto-api/reset", "application/json", nil)
	if err != nil {
		t.Fatalf("reset moto: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("reset moto: HTTP %d", resp.StatusCode)
	}
}

// Clients returns Auto Scaling and EC2 clients talking to the emulator
// directly, for setting up and checking what it holds.
func (m *Moto) Clients(t *testing.T) (*autoscaling.Client, *ec2.Client) {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithRegion(Region))
	if err != nil {
		t.Fatalf("aws config for moto: %v", err)
	}
	return autoscaling.NewFromConfig(cfg, func(o *autoscaling.Options) { o.BaseEndpoint = aws.String(m.URL) }),
		ec2.NewFromConfig(cfg, func(o *ec2.Options) { o.BaseEndpoint = aws.String(m.URL) })
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
