package nodepool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/cenkalti/backoff/v4"
)

// Errors of the aws provider that callers branch on. Each wraps the AWS
// error it came from, so the original code and message stay in the text.
var (
	// ErrThrottled: AWS kept throttling the call until the provider's
	// timeout ran out.
	ErrThrottled = errors.New("aws throttled the request")
	// ErrInsufficientCapacity: EC2 had no capacity for the instance type
	// (on spot: the spot market had none).
	ErrInsufficientCapacity = errors.New("insufficient instance capacity")
	// ErrGroupFull: the Auto Scaling group is at its MaxSize, so not every
	// requested node was launched.
	ErrGroupFull = errors.New("auto scaling group is at its max size")
	// ErrInstanceNotFound: no EC2 instance matches the node.
	ErrInstanceNotFound = errors.New("no instance matches the node")
	// ErrNotInPool: the node's instance runs outside the pool's groups; the
	// provider never terminates it.
	ErrNotInPool = errors.New("instance is not in one of the pool's auto scaling groups")
)

// errTransient marks server-side failures worth another attempt.
var errTransient = errors.New("transient aws error")

// autoScalingAPI is the part of the Auto Scaling client the provider uses.
type autoScalingAPI interface {
	DescribeAutoScalingGroups(ctx context.Context, in *autoscaling.DescribeAutoScalingGroupsInput, opts ...func(*autoscaling.Options)) (*autoscaling.DescribeAutoScalingGroupsOutput, error)
	DescribeAutoScalingInstances(ctx context.Context, in *autoscaling.DescribeAutoScalingInstancesInput, opts ...func(*autoscaling.Options)) (*autoscaling.DescribeAutoScalingInstancesOutput, error)
	DescribeScalingActivities(ctx context.Context, in *autoscaling.DescribeScalingActivitiesInput, opts ...func(*autoscaling.Options)) (*autoscaling.DescribeScalingActivitiesOutput, error)
	SetDesiredCapacity(ctx context.Context, in *autoscaling.SetDesiredCapacityInput, opts ...func(*autoscaling.Options)) (*autoscaling.SetDesiredCapacityOutput, error)
	TerminateInstanceInAutoScalingGroup(ctx context.Context, in *autoscaling.TerminateInstanceInAutoScalingGroupInput, opts ...func(*autoscaling.Options)) (*autoscaling.TerminateInstanceInAutoScalingGroupOutput, error)
}

// ec2API is the part of the EC2 client the provider uses.
type ec2API interface {
	DescribeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, opts ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
}

var (
	_ autoScalingAPI = (*autoscaling.Client)(nil)
	_ ec2API         = (*ec2.Client)(nil)
	_ Provider       = (*AWSProvider)(nil)
)

// AWSProvider launches and terminates a pool's nodes through EC2 Auto
// Scaling. Each instance type has its own on-demand group and, optionally,
// a spot group (one launch template, one instance type, one purchase option
// each). Separate groups rather than one mixed-instances group because the
// pool's chooser already decides which type and how much spot to buy; a
// mixed-instances group would re-decide with its own allocation strategy
// whenever its desired capacity changes, and the chooser's choice would be
// lost.
//
// ScaleOut raises a group's desired capacity by the requested count.
// Terminate removes a drained node's instance from its group and lowers the
// desired capacity with it, so the group does not replace it. The provider
// must be the only thing changing these groups' desired capacity: give them
// no scaling policies of their own.
type AWSProvider struct {
	pool   string
	groups map[string]AWSGroups
	// own is every group name of the pool, for the termination check.
	own        map[string]bool
	asg        autoScalingAPI
	ec2        ec2API
	timeout    time.Duration
	firstRetry time.Duration
	// shortageWindow is how recent a failed spot launch must be for the
	// spot market to count as short.
	shortageWindow time.Duration
	now            func() time.Time
	logger         *slog.Logger
}

// NewAWSProvider builds the provider of pool p (whose Provider.Kind is aws).
// Credentials and region come from the SDK's default chain (environment,
// shared config and credentials files, instance role); the block's region
// and endpoint override it. The SDK's own retries are off: the provider
// retries with backoff itself, within the provider timeout.
func NewAWSProvider(p Pool, logger *slog.Logger) (*AWSProvider, error) {
	if p.Provider.AWS == nil {
		return nil, fmt.Errorf("pool %q: aws provider without its settings", p.Name)
	}
	spec := *p.Provider.AWS
	opts := []func(*config.LoadOptions) error{
		config.WithRetryer(func() aws.Retryer { return aws.NopRetryer{} }),
	}
	if spec.Region != "" {
		opts = append(opts, config.WithRegion(spec.Region))
	}
	// Loading only reads the environment and files; credentials are
	// resolved lazily, with each request's context.
	cfg, err := config.LoadDefaultConfig(context.Background(), opts...)
	if err != nil {
		return nil, fmt.Errorf("pool %q: load aws config: %w", p.Name, err)
	}
	if cfg.Region == "" {
		return nil, fmt.Errorf("pool %q: no aws region: set the provider's region, AWS_REGION or a profile's region", p.Name)
	}
	asg := autoscaling.NewFromConfig(cfg, func(o *autoscaling.Options) {
		if spec.Endpoint != "" {
			o.BaseEndpoint = aws.String(spec.Endpoint)
		}
	})
	ec2c := ec2.NewFromConfig(cfg, func(o *ec2.Options) {
		if spec.Endpoint != "" {
			o.BaseEndpoint = aws.String(spec.Endpoint)
		}
	})
	return newAWSProvider(p, asg, ec2c, logger), nil
}

// newAWSProvider needs p.Provider.AWS set.
func newAWSProvider(p Pool, asg autoScalingAPI, ec2c ec2API, logger *slog.Logger) *AWSProvider {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	timeout := p.Provider.Timeout
	if timeout <= 0 {
		timeout = DefaultProviderTimeout
	}
	window := p.ScaleOutGrace
	if window <= 0 {
		window = DefaultScaleOutGrace
	}
	own := map[string]bool{}
	for _, g := range p.Provider.AWS.Groups {
		own[g.OnDemand] = true
		if g.Spot != "" {
			own[g.Spot] = true
		}
	}
	return &AWSProvider{pool: p.Name, groups: p.Provider.AWS.Groups, own: own, asg: asg, ec2: ec2c,
		timeout: timeout, firstRetry: 500 * time.Millisecond, shortageWindow: window, now: time.Now,
		logger: logger.With("pool", p.Name, "provider", ProviderAWS)}
}

// ScaleOut implements Provider. A spot request goes to the type's spot
// group unless the spot market is short (its latest launch failed for
// capacity within the scale-out grace, or raising it failed for capacity)
// or the spot group is full; what spot cannot take is launched on demand,
// within the on-demand group's MaxSize. The pool's own limits (max, the
// type's max) were applied when the count was chosen and moving nodes from
// spot to on-demand changes neither.
func (a *AWSProvider) ScaleOut(ctx context.Context, r ScaleOutRequest) error {
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	g, ok := a.groups[r.InstanceType]
	if !ok {
		return fmt.Errorf("scale out %s: no auto_scaling_group for instance type %q", a.pool, r.InstanceType)
	}
	left, spot := r.Count, 0
	if r.Spot && g.Spot != "" {
		n, err := a.scaleOutSpot(ctx, g.Spot, left)
		spot, left = n, left-n
		if left == 0 {
			return nil
		}
		if !errors.Is(err, ErrInsufficientCapacity) && !errors.Is(err, ErrGroupFull) {
			return partialScaleOut(spot, 0, err)
		}
		a.logger.Warn("spot capacity short; launching on demand instead",
			"instance_type", r.InstanceType, "spot_launched", n, "on_demand", left, "why", err)
	} else if r.Spot {
		return fmt.Errorf("scale out %s: instance type %q has no spot group", a.pool, r.InstanceType)
	}
	n, err := a.raise(ctx, g.OnDemand, left, true)
	if err != nil {
		return partialScaleOut(spot, n, fmt.Errorf("launch %d of %d×%s (on-demand group %s launched %d): %w",
			spot+n, r.Count, r.InstanceType, g.OnDemand, n, err))
	}
	return nil
}

// partialScaleOut is err, saying what launched before it when anything
// did: those nodes are on their way, and the controller must not launch
// them again.
func partialScaleOut(spot, onDemand int, err error) error {
	if spot+onDemand == 0 {
		return err
	}
	return &PartialScaleOutError{Spot: spot, OnDemand: onDemand, Err: err}
}

func (a *AWSProvider) scaleOutSpot(ctx context.Context, group string, count int) (int, error) {
	short, why, err := a.spotShort(ctx, group)
	if err != nil {
		return 0, err
	}
	if short {
		return 0, fmt.Errorf("spot group %s: latest launch failed: %s: %w", group, why, ErrInsufficientCapacity)
	}
	// A capacity error from the spot group is not retried: the spot
	// market rarely recovers within seconds, and on-demand is at hand.
	return a.raise(ctx, group, count, false)
}

// spotShort reports whether the group's most recent scaling activity, within
// the shortage window, failed for want of capacity. An Auto Scaling group
// accepts any desired capacity and fails to launch later, so this is where
// a spot shortage shows.
func (a *AWSProvider) spotShort(ctx context.Context, group string) (bool, string, error) {
	var out *autoscaling.DescribeScalingActivitiesOutput
	err := a.retry(ctx, "DescribeScalingActivities "+group, true, func(ctx context.Context) error {
		var err error
		out, err = a.asg.DescribeScalingActivities(ctx, &autoscaling.DescribeScalingActivitiesInput{
			AutoScalingGroupName: aws.String(group), MaxRecords: aws.Int32(1)})
		return err
	})
	if err != nil {
		return false, "", err
	}
	if len(out.Activities) == 0 {
		return false, "", nil
	}
	act := out.Activities[0]
	failed := act.StatusCode == astypes.ScalingActivityStatusCodeFailed || act.StatusCode == astypes.ScalingActivityStatusCodeCancelled
	recent := act.StartTime != nil && a.now().Sub(*act.StartTime) < a.shortageWindow
	msg := aws.ToString(act.StatusMessage)
	return failed && recent && capacityMessage(msg), msg, nil
}

// capacityMessage reports whether a failed activity's message names a
// capacity shortage (as opposed to, say, a broken launch template).
func capacityMessage(msg string) bool {
	for _, code := range capacityCodes {
		if strings.Contains(msg, code) {
			return true
		}
	}
	return strings.Contains(strings.ToLower(msg), "capacity")
}

// raise adds up to count to the group's desired capacity, no further than
// its MaxSize, and returns how many it added; a shortfall is ErrGroupFull.
func (a *AWSProvider) raise(ctx context.Context, group string, count int, retryCapacity bool) (int, error) {
	if count <= 0 {
		return 0, nil
	}
	g, err := a.group(ctx, group)
	if err != nil {
		return 0, err
	}
	desired, maxSize := aws.ToInt32(g.DesiredCapacity), aws.ToInt32(g.MaxSize)
	n := min(int32(count), max(maxSize-desired, 0))
	if n > 0 {
		err := a.retry(ctx, "SetDesiredCapacity "+group, retryCapacity, func(ctx context.Context) error {
			_, err := a.asg.SetDesiredCapacity(ctx, &autoscaling.SetDesiredCapacityInput{
				AutoScalingGroupName: aws.String(group), DesiredCapacity: aws.Int32(desired + n),
				// The pool decided now; a cooldown would silently drop it.
				HonorCooldown: aws.Bool(false)})
			return err
		})
		if err != nil {
			return 0, err
		}
		a.logger.Info("raised auto scaling group", "group", group, "from", desired, "to", desired+n)
	}
	if int(n) < count {
		return int(n), fmt.Errorf("group %s has desired %d of max %d, %d of %d not launched: %w",
			group, desired+n, maxSize, count-int(n), count, ErrGroupFull)
	}
	return int(n), nil
}

func (a *AWSProvider) group(ctx context.Context, name string) (astypes.AutoScalingGroup, error) {
	var out *autoscaling.DescribeAutoScalingGroupsOutput
	err := a.retry(ctx, "DescribeAutoScalingGroups "+name, true, func(ctx context.Context) error {
		var err error
		out, err = a.asg.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{name}})
		return err
	})
	if err != nil {
		return astypes.AutoScalingGroup{}, err
	}
	if len(out.AutoScalingGroups) == 0 {
		return astypes.AutoScalingGroup{}, fmt.Errorf("auto scaling group %s does not exist", name)
	}
	return out.AutoScalingGroups[0], nil
}

// Terminate implements Provider. The instance is the node's
// unique.platform.aws.instance-id, or else the instance with the node's
// private IP. An instance already terminated (a repeated request after a
// crash) is success; one outside the pool's groups is ErrNotInPool and one
// that does not exist is ErrInstanceNotFound.
func (a *AWSProvider) Terminate(ctx context.Context, r TerminateRequest) error {
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	id := r.InstanceID
	if id == "" {
		var already bool
		var err error
		id, already, err = a.instanceByIP(ctx, r.Address, r.DrainedSince)
		if err != nil {
			return fmt.Errorf("terminate node %s: %w", r.NodeID, err)
		}
		if already {
			a.logger.Info("instance already terminated", "node_id", r.NodeID, "address", r.Address)
			return nil
		}
	}
	var out *autoscaling.DescribeAutoScalingInstancesOutput
	err := a.retry(ctx, "DescribeAutoScalingInstances "+id, true, func(ctx context.Context) error {
		var err error
		out, err = a.asg.DescribeAutoScalingInstances(ctx, &autoscaling.DescribeAutoScalingInstancesInput{InstanceIds: []string{id}})
		return err
	})
	if err != nil {
		return fmt.Errorf("terminate node %s: %w", r.NodeID, err)
	}
	if len(out.AutoScalingInstances) == 0 {
		// Not in any group: already terminated and detached, or never ours.
		state, err := a.instanceState(ctx, id)
		if err != nil {
			return fmt.Errorf("terminate node %s: %w", r.NodeID, err)
		}
		if leaving(state) {
			a.logger.Info("instance already terminated", "node_id", r.NodeID, "instance_id", id, "state", stateName(state))
			return nil
		}
		return fmt.Errorf("terminate node %s: instance %s (%s) is in no auto scaling group: %w", r.NodeID, id, stateName(state), ErrNotInPool)
	}
	in := out.AutoScalingInstances[0]
	group := aws.ToString(in.AutoScalingGroupName)
	if !a.own[group] {
		return fmt.Errorf("terminate node %s: instance %s is in group %s: %w", r.NodeID, id, group, ErrNotInPool)
	}
	if strings.HasPrefix(aws.ToString(in.LifecycleState), "Terminat") {
		return nil
	}
	err = a.retry(ctx, "TerminateInstanceInAutoScalingGroup "+id, true, func(ctx context.Context) error {
		_, err := a.asg.TerminateInstanceInAutoScalingGroup(ctx, &autoscaling.TerminateInstanceInAutoScalingGroupInput{
			InstanceId: aws.String(id), ShouldDecrementDesiredCapacity: aws.Bool(true)})
		return err
	})
	if err != nil {
		return fmt.Errorf("terminate node %s (instance %s in %s): %w", r.NodeID, id, group, err)
	}
	a.logger.Info("terminated instance", "node_id", r.NodeID, "instance_id", id, "group", group)
	return nil
}

// instanceByIP finds the live instance with the private IP; alreadyGone reports
// that only terminated ones have it, or live ones launched after since (when
// set): the drained node's instance is gone and its IP was given to a new
// one, which must not be terminated in its place.
func (a *AWSProvider) instanceByIP(ctx context.Context, ip string, since time.Time) (id string, alreadyGone bool, err error) {
	if ip == "" {
		return "", false, fmt.Errorf("node has neither the %s attribute nor an address: %w", AWSInstanceIDAttribute, ErrInstanceNotFound)
	}
	insts, err := a.describe(ctx, &ec2.DescribeInstancesInput{
		Filters: []ec2types.Filter{{Name: aws.String("private-ip-address"), Values: []string{ip}}}})
	if err != nil {
		return "", false, err
	}
	var live []string
	for _, in := range insts {
		if leaving(in.State) {
			continue
		}
		if !since.IsZero() && in.LaunchTime != nil && in.LaunchTime.After(since) {
			a.logger.Info("instance with the drained node's address launched after the drain: not the node", "address", ip,
				"instance_id", aws.ToString(in.InstanceId), "launched", *in.LaunchTime, "drain_started", since)
			continue
		}
		live = append(live, aws.ToString(in.InstanceId))
	}
	switch {
	case len(live) == 1:
		return live[0], false, nil
	case len(live) > 1:
		return "", false, fmt.Errorf("%d live instances have private IP %s (%v); terminating none", len(live), ip, live)
	case len(insts) > 0:
		return "", true, nil
	}
	return "", false, fmt.Errorf("private IP %s: %w", ip, ErrInstanceNotFound)
}

func (a *AWSProvider) instanceState(ctx context.Context, id string) (*ec2types.InstanceState, error) {
	insts, err := a.describe(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && strings.HasPrefix(apiErr.ErrorCode(), "InvalidInstanceID") {
		return nil, fmt.Errorf("instance %s: %w: %w", id, ErrInstanceNotFound, err)
	}
	if err != nil {
		return nil, err
	}
	if len(insts) == 0 {
		return nil, fmt.Errorf("instance %s: %w", id, ErrInstanceNotFound)
	}
	return insts[0].State, nil
}

func (a *AWSProvider) describe(ctx context.Context, in *ec2.DescribeInstancesInput) ([]ec2types.Instance, error) {
	var insts []ec2types.Instance
	p := ec2.NewDescribeInstancesPaginator(a.ec2, in)
	for p.HasMorePages() {
		var out *ec2.DescribeInstancesOutput
		err := a.retry(ctx, "DescribeInstances", true, func(ctx context.Context) error {
			var err error
			out, err = p.NextPage(ctx)
			return err
		})
		if err != nil {
			return nil, err
		}
		for _, res := range out.Reservations {
			insts = append(insts, res.Instances...)
		}
	}
	return insts, nil
}

func stateName(s *ec2types.InstanceState) string {
	if s == nil {
		return "unknown state"
	}
	return string(s.Name)
}

// leaving reports whether an instance is shutting down or terminated.
func leaving(s *ec2types.InstanceState) bool {
	return s != nil && (s.Name == ec2types.InstanceStateNameShuttingDown || s.Name == ec2types.InstanceStateNameTerminated)
}

// retry calls f until it succeeds, fails permanently, or ctx ends (ScaleOut
// and Terminate bound it by the provider's timeout), with exponential
// backoff between attempts. Throttling
// and server errors are retried; capacity errors only when retryCapacity.
// Every retry is logged, so a slow scale-out shows why.
func (a *AWSProvider) retry(ctx context.Context, op string, retryCapacity bool, f func(ctx context.Context) error) error {
	b := backoff.NewExponentialBackOff(backoff.WithInitialInterval(a.firstRetry), backoff.WithMaxElapsedTime(0))
	attempts := 0
	var last error
	err := backoff.RetryNotify(func() error {
		attempts++
		err := classify(f(ctx))
		last = err
		switch {
		case err == nil:
			return nil
		case errors.Is(err, ErrThrottled), errors.Is(err, errTransient), retryCapacity && errors.Is(err, ErrInsufficientCapacity):
			return err
		}
		return backoff.Permanent(err)
	}, backoff.WithContext(b, ctx), func(err error, wait time.Duration) {
		a.logger.Warn("aws call failed; retrying", "op", op, "attempt", attempts, "retry_in", wait, "err", err)
	})
	if err == nil {
		return nil
	}
	// backoff returns only the context's error when the context ends.
	if last != nil && !errors.Is(err, last) {
		err = fmt.Errorf("%w (last error: %w)", err, last)
	}
	if attempts > 1 {
		a.logger.Error("aws call failed after retries", "op", op, "attempts", attempts, "err", err)
		return fmt.Errorf("%s: %d attempts: %w", op, attempts, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

var (
	throttleCodes = []string{"Throttling", "ThrottlingException", "ThrottledException", "RequestLimitExceeded",
		"RequestThrottled", "RequestThrottledException", "TooManyRequestsException", "SlowDown", "EC2ThrottledException"}
	capacityCodes = []string{"InsufficientInstanceCapacity", "InsufficientCapacity", "InsufficientHostCapacity",
		"InsufficientReservedInstanceCapacity", "InsufficientCapacityOnHost", "SpotMaxPriceTooLow",
		"MaxSpotInstanceCountExceeded", "UnfulfillableCapacity"}
	transientCodes = []string{"ScalingActivityInProgress", "ResourceContention", "InternalFailure",
		"InternalError", "ServiceUnavailable", "Unavailable"}
)

// classify wraps err with the provider error it stands for, if any.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		code := apiErr.ErrorCode()
		switch {
		case slices.Contains(throttleCodes, code):
			return fmt.Errorf("%w: %w", ErrThrottled, err)
		case slices.Contains(capacityCodes, code):
			return fmt.Errorf("%w: %w", ErrInsufficientCapacity, err)
		case slices.Contains(transientCodes, code):
			return fmt.Errorf("%w: %w", errTransient, err)
		}
	}
	var respErr *smithyhttp.ResponseError
	if errors.As(err, &respErr) && respErr.HTTPStatusCode() == 429 {
		return fmt.Errorf("%w: %w", ErrThrottled, err)
	}
	if errors.As(err, &respErr) && respErr.HTTPStatusCode() >= 500 {
		return fmt.Errorf("%w: %w", errTransient, err)
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return fmt.Errorf("%w: %w", errTransient, err)
	}
	return err
}
