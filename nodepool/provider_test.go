package nodepool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/smithy-go"
)

func writeScript(t *testing.T, dir, name, body string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCommandProviderPassesTheRequestInEnvironmentVariables(t *testing.T) {
	dir := t.TempDir()
	record := filepath.Join(dir, "calls")
	spec := ProviderSpec{Kind: ProviderCommand, Timeout: 10 * time.Second,
		ScaleOut:  writeScript(t, dir, "out", `echo "out $NOMADSCALER_POOL $NOMADSCALER_INSTANCE_TYPE $NOMADSCALER_COUNT $NOMADSCALER_SPOT" >> `+record+`; echo launched`),
		Terminate: writeScript(t, dir, "term", `echo "term $NOMADSCALER_POOL $NOMADSCALER_NODE_ID $NOMADSCALER_NODE_NAME $NOMADSCALER_INSTANCE_TYPE" >> `+record),
	}
	var logs bytes.Buffer
	p := NewCommandProvider(spec, slog.New(slog.NewTextHandler(&logs, nil)))
	ctx := context.Background()
	if err := p.ScaleOut(ctx, ScaleOutRequest{Pool: "web", InstanceType: "m5.large", Count: 3, Spot: true}); err != nil {
		t.Fatal(err)
	}
	if err := p.Terminate(ctx, TerminateRequest{Pool: "web", NodeID: "abc-123", NodeName: "node-7", InstanceType: "m5.large"}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(record)
	if err != nil {
		t.Fatal(err)
	}
	want := "out web m5.large 3 true\nterm web abc-123 node-7 m5.large\n"
	if string(got) != want {
		t.Fatalf("scripts saw %q, want %q", got, want)
	}
	if !strings.Contains(logs.String(), "output=launched") {
		t.Fatalf("command output not logged: %s", logs.String())
	}
}

func TestCommandProviderReportsAFailingScriptWithItsOutput(t *testing.T) {
	dir := t.TempDir()
	spec := ProviderSpec{Kind: ProviderCommand, Timeout: 10 * time.Second,
		ScaleOut: writeScript(t, dir, "out", `echo "quota exceeded" >&2; exit 3`), Terminate: "/bin/true"}
	err := NewCommandProvider(spec, nil).ScaleOut(context.Background(), ScaleOutRequest{Pool: "p", InstanceType: "t", Count: 1})
	if err == nil || !strings.Contains(err.Error(), "exit status 3") || !strings.Contains(err.Error(), "quota exceeded") {
		t.Fatalf("err = %v, want exit status 3 and the script's message", err)
	}
}

func TestCommandProviderKillsAScriptThatOutlivesItsTimeout(t *testing.T) {
	dir := t.TempDir()
	spec := ProviderSpec{Kind: ProviderCommand, Timeout: 200 * time.Millisecond,
		ScaleOut: "/bin/true", Terminate: writeScript(t, dir, "term", `sleep 30; echo done`)}
	start := time.Now()
	err := NewCommandProvider(spec, nil).Terminate(context.Background(), TerminateRequest{NodeID: "n"})
	if err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("err = %v, want a timeout", err)
	}
	// Not a speed target: only proof the sleeping child did not hold us for 30s.
	if time.Since(start) > 10*time.Second {
		t.Fatalf("terminate returned after %s; the script was not killed", time.Since(start))
	}
}

func TestCommandProviderFailsForAMissingExecutable(t *testing.T) {
	spec := ProviderSpec{Kind: ProviderCommand, Timeout: time.Second, ScaleOut: filepath.Join(t.TempDir(), "absent"), Terminate: "/bin/true"}
	if err := NewCommandProvider(spec, nil).ScaleOut(context.Background(), ScaleOutRequest{}); err == nil {
		t.Fatal("scale out with a missing executable succeeded")
	}
}

func TestNoopProviderOnlyLogsItsDecisions(t *testing.T) {
	var logs bytes.Buffer
	p, err := NewProvider(Pool{Name: "p", Provider: ProviderSpec{Kind: ProviderNoop}}, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.ScaleOut(context.Background(), ScaleOutRequest{Pool: "p", InstanceType: "t", Count: 2}); err != nil {
		t.Fatal(err)
	}
	if err := p.Terminate(context.Background(), TerminateRequest{Pool: "p", NodeID: "n1"}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "would scale out") || !strings.Contains(logs.String(), "node_id=n1") {
		t.Fatalf("logs = %s", logs.String())
	}
}

func TestNewProvidersBuildsOneProviderPerPool(t *testing.T) {
	pools, err := ParsePools([]byte(fullPool), "pools.hcl")
	if err != nil {
		t.Fatal(err)
	}
	prs, err := NewProviders(pools, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := prs["web"].(*CommandProvider); !ok {
		t.Errorf("web provider is %T, want *CommandProvider", prs["web"])
	}
	if _, ok := prs["batch"].(NoopProvider); !ok {
		t.Errorf("batch provider is %T, want NoopProvider", prs["batch"])
	}
	if _, err := NewProviders([]Pool{{Name: "x", Provider: ProviderSpec{Kind: "ssh"}}}, nil); err == nil {
		t.Error("unknown provider kind accepted")
	}
}

func TestNewProviderBuildsAnAWSProviderAndNeedsARegion(t *testing.T) {
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "credentials"))
	pool := Pool{Name: "p", Provider: ProviderSpec{Kind: ProviderAWS, AWS: &AWSSpec{Groups: map[string]AWSGroups{"t": {OnDemand: "g"}}}}}
	if _, err := NewProvider(pool, nil); err == nil || !strings.Contains(err.Error(), "no aws region") {
		t.Fatalf("err = %v, want a missing region named", err)
	}
	pool.Provider.AWS.Region = "eu-west-1"
	p, err := NewProvider(pool, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a, ok := p.(*AWSProvider); !ok || !a.own["g"] || a.timeout != DefaultProviderTimeout {
		t.Fatalf("provider = %#v, want an AWSProvider owning group g with the default timeout", p)
	}
}

func TestAWSErrorsAreClassifiedByTheirCode(t *testing.T) {
	cases := []struct {
		code string
		want error
	}{
		{"Throttling", ErrThrottled},
		{"RequestLimitExceeded", ErrThrottled},
		{"InsufficientInstanceCapacity", ErrInsufficientCapacity},
		{"ScalingActivityInProgress", errTransient},
		{"ValidationError", nil},
	}
	for _, c := range cases {
		err := classify(fmt.Errorf("call: %w", &smithy.GenericAPIError{Code: c.code, Message: "m"}))
		for _, sentinel := range []error{ErrThrottled, ErrInsufficientCapacity, errTransient} {
			if errors.Is(err, sentinel) != (sentinel == c.want) {
				t.Errorf("%s: errors.Is(%v, %v) = %v", c.code, err, sentinel, !(sentinel == c.want))
			}
		}
		var apiErr smithy.APIError
		if !errors.As(err, &apiErr) || apiErr.ErrorCode() != c.code {
			t.Errorf("%s: the AWS error is no longer reachable in %v", c.code, err)
		}
	}
}
