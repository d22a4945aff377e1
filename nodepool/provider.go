package nodepool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ScaleOutRequest asks a provider for Count new nodes of one instance type.
type ScaleOutRequest struct {
	Pool         string
	InstanceType string
	Count        int
	Spot         bool
}

// PartialScaleOutError is a scale-out that failed after launching some of
// the nodes it asked for (on AWS: the spot group took part of a request and
// raising the on-demand group for the rest failed). The controller keeps
// the launched nodes in the journal as on their way, so the next decision
// neither launches them again nor counts past the pool's max. A provider
// that cannot tell what launched returns a plain error, and the whole
// request counts as failed.
type PartialScaleOutError struct {
	// Spot and OnDemand are how many nodes of each kind were launched.
	Spot, OnDemand int
	Err            error
}

// Launched is how many nodes were launched before the failure.
func (e *PartialScaleOutError) Launched() int { return e.Spot + e.OnDemand }

func (e *PartialScaleOutError) Error() string {
	return fmt.Sprintf("launched %d (%d spot, %d on demand) before failing: %v", e.Launched(), e.Spot, e.OnDemand, e.Err)
}

func (e *PartialScaleOutError) Unwrap() error { return e.Err }

// TerminateRequest asks a provider to remove one drained node. InstanceID
// and Address identify the machine when known (see Node).
type TerminateRequest struct {
	Pool         string
	NodeID       string
	NodeName     string
	InstanceType string
	InstanceID   string
	Address      string
	// DrainedSince, when set, is when the node's drain began: a provider
	// finding the node by Address skips instances launched after it.
	DrainedSince time.Time
}

// Provider launches and removes the machines behind a pool. A ScaleOut
// that fails after launching part of the request returns a
// *PartialScaleOutError (possibly wrapped) saying what launched. Terminate
// must tolerate being asked again for a node it already removed: after a
// crash the controller repeats an unfinished termination.
type Provider interface {
	ScaleOut(ctx context.Context, r ScaleOutRequest) error
	Terminate(ctx context.Context, r TerminateRequest) error
}

// NewProvider builds the provider a pool configures.
func NewProvider(p Pool, logger *slog.Logger) (Provider, error) {
	switch p.Provider.Kind {
	case ProviderCommand:
		return NewCommandProvider(p.Provider, logger), nil
	case ProviderAWS:
		return NewAWSProvider(p, logger)
	case ProviderNoop:
		return NewNoopProvider(logger), nil
	}
	return nil, fmt.Errorf("pool %q: unknown provider kind %q", p.Name, p.Provider.Kind)
}

// NewProviders builds every pool's provider, keyed by pool name, for
// Deps.Providers.
func NewProviders(pools []Pool, logger *slog.Logger) (map[string]Provider, error) {
	out := make(map[string]Provider, len(pools))
	for _, p := range pools {
		pr, err := NewProvider(p, logger)
		if err != nil {
			return nil, err
		}
		out[p.Name] = pr
	}
	return out, nil
}

// CommandProvider runs the configured executables, passing the request in
// environment variables, and logs their combined output. scale_out gets
// NOMADSCALER_POOL, NOMADSCALER_INSTANCE_TYPE, NOMADSCALER_COUNT and
// NOMADSCALER_SPOT (true/false); terminate gets NOMADSCALER_POOL,
// NOMADSCALER_NODE_ID, NOMADSCALER_NODE_NAME and NOMADSCALER_INSTANCE_TYPE.
// A non-zero exit is a failure; a script still running at the timeout is
// killed with its whole process group. Launched machines should register
// with the node meta nomadscaler_instance_type set to the instance type.
type CommandProvider struct {
	spec   ProviderSpec
	logger *slog.Logger
}

// NewCommandProvider returns a provider running spec's executables.
func NewCommandProvider(spec ProviderSpec, logger *slog.Logger) *CommandProvider {
	if spec.Timeout <= 0 {
		spec.Timeout = DefaultProviderTimeout
	}
	return &CommandProvider{spec: spec, logger: logger}
}

// ScaleOut implements Provider.
func (c *CommandProvider) ScaleOut(ctx context.Context, r ScaleOutRequest) error {
	return c.run(ctx, "scale_out", c.spec.ScaleOut, []string{
		"NOMADSCALER_POOL=" + r.Pool,
		"NOMADSCALER_INSTANCE_TYPE=" + r.InstanceType,
		"NOMADSCALER_COUNT=" + strconv.Itoa(r.Count),
		"NOMADSCALER_SPOT=" + strconv.FormatBool(r.Spot),
	})
}

// Terminate implements Provider.
func (c *CommandProvider) Terminate(ctx context.Context, r TerminateRequest) error {
	return c.run(ctx, "terminate", c.spec.Terminate, []string{
		"NOMADSCALER_POOL=" + r.Pool,
		"NOMADSCALER_NODE_ID=" + r.NodeID,
		"NOMADSCALER_NODE_NAME=" + r.NodeName,
		"NOMADSCALER_INSTANCE_TYPE=" + r.InstanceType,
	})
}

func (c *CommandProvider) run(ctx context.Context, action, path string, env []string) error {
	ctx, cancel := context.WithTimeout(ctx, c.spec.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// Kill the whole process group on timeout: a script's children would
	// otherwise keep the output pipe open and outlive the deadline.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	start := time.Now()
	err := cmd.Run()
	output := strings.TrimSpace(out.String())
	attrs := []any{"action", action, "command", path, "env", env, "duration", time.Since(start), "output", output}
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("timed out after %s: %w", c.spec.Timeout, ctx.Err())
		}
		c.log().Error("provider command failed", append(attrs, "err", err)...)
		return fmt.Errorf("run %s command %s: %w: %s", action, path, err, lastLine(output))
	}
	c.log().Info("provider command succeeded", attrs...)
	return nil
}

func (c *CommandProvider) log() *slog.Logger {
	if c.logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.logger
}

func lastLine(s string) string {
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// NoopProvider only logs what it would do: a dry run.
type NoopProvider struct{ logger *slog.Logger }

// NewNoopProvider returns a dry-run provider.
func NewNoopProvider(logger *slog.Logger) NoopProvider { return NoopProvider{logger: logger} }

// ScaleOut implements Provider.
func (n NoopProvider) ScaleOut(_ context.Context, r ScaleOutRequest) error {
	if n.logger != nil {
		n.logger.Info("dry run: would scale out", "pool", r.Pool, "instance_type", r.InstanceType, "count", r.Count, "spot", r.Spot)
	}
	return nil
}

// Terminate implements Provider.
func (n NoopProvider) Terminate(_ context.Context, r TerminateRequest) error {
	if n.logger != nil {
		n.logger.Info("dry run: would terminate", "pool", r.Pool, "node_id", r.NodeID, "node_name", r.NodeName)
	}
	return nil
}
