package nodepool

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/nomadscalerd/nomadscalerd/nodepool/awstest"
)

// awsFixture is a pool whose groups exist in a freshly reset moto: small
// (on-demand, max 10; spot, max 2) and large (on-demand only, max 4), with
// the provider talking to moto through a fault-injecting proxy.
type awsFixture struct {
	moto     *awstest.Moto
	faults   *awstest.FaultInjectingProxy
	asg      *autoscaling.Client
	ec2      *ec2.Client
	pool     Pool
	provider *AWSProvider
}

const (
	groupSmall     = "nomad-web-small"
	groupSmallSpot = "nomad-web-small-spot"
	groupLarge     = "nomad-web-large"
)

func newAWSFixture(t *testing.T, m *awstest.Moto) *awsFixture {
	t.Helper()
	m.Reset(t)
	f := &awsFixture{moto: m, faults: awstest.NewFaultInjectingProxy(t, m.URL)}
	f.asg, f.ec2 = m.Clients(t)
	f.createGroup(t, groupSmall, "m5.large", 10)
	f.createGroup(t, groupSmallSpot, "m5.large", 2)
	f.createGroup(t, groupLarge, "m5.4xlarge", 4)
	p := testPool()
	p.InstanceTypes[0].SpotPrice = 0.4
	p.SpotMaxShare = 1
	p.Provider = ProviderSpec{Kind: ProviderAWS, Timeout: 20 * time.Second, AWS: &AWSSpec{
		Region: awstest.Region, Endpoint: f.faults.URL,
		Groups: map[string]AWSGroups{"small": {OnDemand: groupSmall, Spot: groupSmallSpot}, "large": {OnDemand: groupLarge}},
	}}
	f.pool = p
	f.provider = f.newProvider(t, p)
	return f
}

func (f *awsFixture) newProvider(t *testing.T, p Pool) *AWSProvider {
	t.Helper()
	pr, err := NewProvider(p, slog.New(slog.NewTextHandler(testWriter{t}, nil)))
	if err != nil {
		t.Fatal(err)
	}
	a := pr.(*AWSProvider)
	a.firstRetry = 20 * time.Millisecond // keep retrying tests fast
	return a
}

// testWriter sends the provider's log to the test's log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func (f *awsFixture) createGroup(t *testing.T, name, instanceType string, maxSize int32) {
	t.Helper()
	ctx := context.Background()
	_, err := f.ec2.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{
		LaunchTemplateName: aws.String(name),
		LaunchTemplateData: &ec2types.RequestLaunchTemplateData{ImageId: aws.String("ami-12c6146b"), InstanceType: ec2types.InstanceType(instanceType)},
	})
	if err != nil {
		t.Fatalf("create launch template %s: %v", name, err)
	}
	_, err = f.asg.CreateAutoScalingGroup(ctx, &autoscaling.CreateAutoScalingGroupInput{
		AutoScalingGroupName: aws.String(name),
		LaunchTemplate:       &astypes.LaunchTemplateSpecification{LaunchTemplateName: aws.String(name), Version: aws.String("$Latest")},
		MinSize:              aws.Int32(0), MaxSize: aws.Int32(maxSize), DesiredCapacity: aws.Int32(0),
		AvailabilityZones: []string{awstest.Region + "a"},
	})
	if err != nil {
		t.Fatalf("create auto scaling group %s: %v", name, err)
	}
}

// group returns what moto holds for a group: desired capacity and the IDs
// of its instances.
func (f *awsFixture) group(t *testing.T, name string) (int32, []string) {
	t.Helper()
	out, err := f.asg.DescribeAutoScalingGroups(context.Background(), &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{name}})
	if err != nil || len(out.AutoScalingGroups) != 1 {
		t.Fatalf("describe group %s: %v (%d groups)", name, err, len(out.AutoScalingGroups))
	}
	g := out.AutoScalingGroups[0]
	var ids []string
	for _, in := range g.Instances {
		ids = append(ids, aws.ToString(in.InstanceId))
	}
	slices.Sort(ids)
	return aws.ToInt32(g.DesiredCapacity), ids
}

func (f *awsFixture) wantGroup(t *testing.T, name string, desired int) []string {
	t.Helper()
	d, ids := f.group(t, name)
	if int(d) != desired || len(ids) != desired {
		t.Fatalf("group %s has desired capacity %d and %d instances, want %d of each", name, d, len(ids), desired)
	}
	return ids
}

func (f *awsFixture) instance(t *testing.T, id string) ec2types.Instance {
	t.Helper()
	out, err := f.ec2.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil || len(out.Reservations) != 1 || len(out.Reservations[0].Instances) != 1 {
		t.Fatalf("describe instance %s: %v", id, err)
	}
	return out.Reservations[0].Instances[0]
}

func (f *awsFixture) wantState(t *testing.T, id string, states ...ec2types.InstanceStateName) {
	t.Helper()
	in := f.instance(t, id)
	if in.State == nil || !slices.Contains(states, in.State.Name) {
		t.Fatalf("instance %s is in state %+v, want one of %v", id, in.State, states)
	}
}

var terminatedStates = []ec2types.InstanceStateName{ec2types.InstanceStateNameShuttingDown, ec2types.InstanceStateNameTerminated}

// The emulator's tests share one moto server (it takes seconds to start)
// and reset it before each.
func TestAWSProviderAgainstMoto(t *testing.T) {
	m := awstest.Start(t)
	ctx := context.Background()

	t.Run("raises the instance type's on-demand group by the planned count", func(t *testing.T) {
		f := newAWSFixture(t, m)
		if err := f.provider.ScaleOut(ctx, ScaleOutRequest{Pool: "web", InstanceType: "small", Count: 3}); err != nil {
			t.Fatal(err)
		}
		for _, id := range f.wantGroup(t, groupSmall, 3) {
			f.wantState(t, id, ec2types.InstanceStateNameRunning, ec2types.InstanceStateNamePending)
		}
		f.wantGroup(t, groupSmallSpot, 0)
		f.wantGroup(t, groupLarge, 0)
		if err := f.provider.ScaleOut(ctx, ScaleOutRequest{Pool: "web", InstanceType: "small", Count: 2}); err != nil {
			t.Fatal(err)
		}
		f.wantGroup(t, groupSmall, 5)
	})

	t.Run("launches spot requests into the spot group", func(t *testing.T) {
		f := newAWSFixture(t, m)
		if err := f.provider.ScaleOut(ctx, ScaleOutRequest{Pool: "web", InstanceType: "small", Count: 2, Spot: true}); err != nil {
			t.Fatal(err)
		}
		f.wantGroup(t, groupSmallSpot, 2)
		f.wantGroup(t, groupSmall, 0)
	})

	t.Run("launches on demand what a full spot group cannot take", func(t *testing.T) {
		f := newAWSFixture(t, m)
		if err := f.provider.ScaleOut(ctx, ScaleOutRequest{Pool: "web", InstanceType: "small", Count: 5, Spot: true}); err != nil {
			t.Fatal(err)
		}
		f.wantGroup(t, groupSmallSpot, 2)
		f.wantGroup(t, groupSmall, 3)
	})

	t.Run("launches on demand when the spot group's latest launch failed for want of capacity", func(t *testing.T) {
		f := newAWSFixture(t, m)
		f.faults.Inject(awstest.Fault{Action: "DescribeScalingActivities", Params: map[string]string{"AutoScalingGroupName": groupSmallSpot},
			Status: 200, Body: awstest.FailedScalingActivity(groupSmallSpot, time.Now().Add(-time.Minute).UTC().Format(time.RFC3339),
				"Could not launch Spot Instances. InsufficientInstanceCapacity - There is no Spot capacity available that matches your request.")})
		if err := f.provider.ScaleOut(ctx, ScaleOutRequest{Pool: "web", InstanceType: "small", Count: 2, Spot: true}); err != nil {
			t.Fatal(err)
		}
		f.wantGroup(t, groupSmallSpot, 0)
		f.wantGroup(t, groupSmall, 2)
	})

	t.Run("still buys spot when the last spot shortage is older than the scale-out grace", func(t *testing.T) {
		f := newAWSFixture(t, m)
		f.faults.Inject(awstest.Fault{Action: "DescribeScalingActivities", Params: map[string]string{"AutoScalingGroupName": groupSmallSpot},
			Status: 200, Body: awstest.FailedScalingActivity(groupSmallSpot, time.Now().Add(-time.Hour).UTC().Format(time.RFC3339),
				"InsufficientInstanceCapacity - There is no Spot capacity available")})
		if err := f.provider.ScaleOut(ctx, ScaleOutRequest{Pool: "web", InstanceType: "small", Count: 2, Spot: true}); err != nil {
			t.Fatal(err)
		}
		f.wantGroup(t, groupSmallSpot, 2)
		f.wantGroup(t, groupSmall, 0)
	})

	t.Run("launches on demand at once when raising the spot group fails for want of capacity", func(t *testing.T) {
		f := newAWSFixture(t, m)
		f.faults.Inject(awstest.Fault{Action: "SetDesiredCapacity", Params: map[string]string{"AutoScalingGroupName": groupSmallSpot},
			Status: 400, Body: awstest.QueryError("InsufficientInstanceCapacity", "no spot capacity in us-east-1a")})
		if err := f.provider.ScaleOut(ctx, ScaleOutRequest{Pool: "web", InstanceType: "small", Count: 2, Spot: true}); err != nil {
			t.Fatal(err)
		}
		f.wantGroup(t, groupSmallSpot, 0)
		f.wantGroup(t, groupSmall, 2)
		if n := f.faults.Injected("SetDesiredCapacity"); n != 1 {
			t.Fatalf("the spot group was asked %d times, want once: a spot shortage is not retried", n)
		}
	})

	t.Run("retries throttled calls with backoff until they pass", func(t *testing.T) {
		f := newAWSFixture(t, m)
		f.faults.Inject(awstest.Fault{Action: "SetDesiredCapacity", Times: 3, Status: 400, Body: awstest.QueryError("Throttling", "Rate exceeded")})
		if err := f.provider.ScaleOut(ctx, ScaleOutRequest{Pool: "web", InstanceType: "large", Count: 2}); err != nil {
			t.Fatal(err)
		}
		f.wantGroup(t, groupLarge, 2)
		if got, seen := f.faults.Injected("SetDesiredCapacity"), f.faults.Seen("SetDesiredCapacity"); got != 3 || seen != 4 {
			t.Fatalf("SetDesiredCapacity throttled %d of %d times, want 3 of 4", got, seen)
		}
	})

	t.Run("reports throttling that outlasts the provider timeout as ErrThrottled", func(t *testing.T) {
		f := newAWSFixture(t, m)
		p := f.pool
		p.Provider.Timeout = 2 * time.Second
		pr := f.newProvider(t, p)
		f.faults.Inject(awstest.Fault{Action: "SetDesiredCapacity", Status: 400, Body: awstest.QueryError("Throttling", "Rate exceeded")})
		start := time.Now()
		err := pr.ScaleOut(ctx, ScaleOutRequest{Pool: "web", InstanceType: "large", Count: 2})
		if !errors.Is(err, ErrThrottled) {
			t.Fatalf("err = %v, want ErrThrottled", err)
		}
		if took := time.Since(start); took > 10*time.Second {
			t.Fatalf("gave up after %s, want about the 2s timeout", took)
		}
		if n := f.faults.Injected("SetDesiredCapacity"); n < 2 {
			t.Fatalf("throttled call tried %d times, want retries", n)
		}
		f.wantGroup(t, groupLarge, 0)
	})

	t.Run("launches what fits and reports ErrGroupFull for the rest", func(t *testing.T) {
		f := newAWSFixture(t, m)
		err := f.provider.ScaleOut(ctx, ScaleOutRequest{Pool: "web", InstanceType: "large", Count: 6})
		if !errors.Is(err, ErrGroupFull) || !strings.Contains(err.Error(), "2 of 6 not launched") {
			t.Fatalf("err = %v, want ErrGroupFull naming the 2 of 6 not launched", err)
		}
		f.wantGroup(t, groupLarge, 4)
	})

	t.Run("terminates the node's instance and lowers the group's desired capacity", func(t *testing.T) {
		f := newAWSFixture(t, m)
		if err := f.provider.ScaleOut(ctx, ScaleOutRequest{Pool: "web", InstanceType: "small", Count: 3}); err != nil {
			t.Fatal(err)
		}
		victim := f.wantGroup(t, groupSmall, 3)[1]
		if err := f.provider.Terminate(ctx, TerminateRequest{Pool: "web", NodeID: "n1", InstanceType: "small", InstanceID: victim}); err != nil {
			t.Fatal(err)
		}
		if ids := f.wantGroup(t, groupSmall, 2); slices.Contains(ids, victim) {
			t.Fatalf("group still holds %s: %v", victim, ids)
		}
		f.wantState(t, victim, terminatedStates...)

		// After a crash the controller asks again; the instance is gone,
		// and the group must not shrink a second time.
		if err := f.provider.Terminate(ctx, TerminateRequest{Pool: "web", NodeID: "n1", InstanceType: "small", InstanceID: victim}); err != nil {
			t.Fatalf("repeated termination: %v", err)
		}
		f.wantGroup(t, groupSmall, 2)
	})

	t.Run("finds the instance by private IP when the node has no instance ID attribute", func(t *testing.T) {
		f := newAWSFixture(t, m)
		if err := f.provider.ScaleOut(ctx, ScaleOutRequest{Pool: "web", InstanceType: "large", Count: 2}); err != nil {
			t.Fatal(err)
		}
		ids := f.wantGroup(t, groupLarge, 2)
		ip := aws.ToString(f.instance(t, ids[0]).PrivateIpAddress)
		if ip == "" {
			t.Fatalf("moto gave instance %s no private IP", ids[0])
		}
		if err := f.provider.Terminate(ctx, TerminateRequest{Pool: "web", NodeID: "n1", InstanceType: "large", Address: ip}); err != nil {
			t.Fatal(err)
		}
		if left := f.wantGroup(t, groupLarge, 1); left[0] != ids[1] {
			t.Fatalf("group kept %v, want %s (the other instance)", left, ids[1])
		}
		f.wantState(t, ids[0], terminatedStates...)
	})

	t.Run("fails to terminate an unknown instance with ErrInstanceNotFound", func(t *testing.T) {
		f := newAWSFixture(t, m)
		if err := f.provider.ScaleOut(ctx, ScaleOutRequest{Pool: "web", InstanceType: "small", Count: 1}); err != nil {
			t.Fatal(err)
		}
		err := f.provider.Terminate(ctx, TerminateRequest{Pool: "web", NodeID: "n1", InstanceID: "i-0123456789abcdef0"})
		if !errors.Is(err, ErrInstanceNotFound) {
			t.Fatalf("err = %v, want ErrInstanceNotFound", err)
		}
		err = f.provider.Terminate(ctx, TerminateRequest{Pool: "web", NodeID: "n2", Address: "10.255.255.254"})
		if !errors.Is(err, ErrInstanceNotFound) {
			t.Fatalf("by address: err = %v, want ErrInstanceNotFound", err)
		}
		f.wantGroup(t, groupSmall, 1)
	})

	t.Run("refuses to terminate an instance of a group outside the pool", func(t *testing.T) {
		f := newAWSFixture(t, m)
		f.createGroup(t, "someone-else", "m5.large", 2)
		if _, err := f.asg.SetDesiredCapacity(ctx, &autoscaling.SetDesiredCapacityInput{AutoScalingGroupName: aws.String("someone-else"), DesiredCapacity: aws.Int32(1)}); err != nil {
			t.Fatal(err)
		}
		other := f.wantGroup(t, "someone-else", 1)[0]
		err := f.provider.Terminate(ctx, TerminateRequest{Pool: "web", NodeID: "n1", InstanceID: other})
		if !errors.Is(err, ErrNotInPool) {
			t.Fatalf("err = %v, want ErrNotInPool", err)
		}
		f.wantGroup(t, "someone-else", 1)
		f.wantState(t, other, ec2types.InstanceStateNameRunning, ec2types.InstanceStateNamePending)
	})

	t.Run("reports a termination AWS keeps failing and leaves the instance running", func(t *testing.T) {
		f := newAWSFixture(t, m)
		p := f.pool
		p.Provider.Timeout = 2 * time.Second
		pr := f.newProvider(t, p)
		if err := pr.ScaleOut(ctx, ScaleOutRequest{Pool: "web", InstanceType: "small", Count: 1}); err != nil {
			t.Fatal(err)
		}
		id := f.wantGroup(t, groupSmall, 1)[0]
		f.faults.Inject(awstest.Fault{Action: "TerminateInstanceInAutoScalingGroup", Status: 500, Body: awstest.QueryError("InternalFailure", "injected")})
		err := pr.Terminate(ctx, TerminateRequest{Pool: "web", NodeID: "n1", InstanceID: id})
		if err == nil || !strings.Contains(err.Error(), "InternalFailure") || errors.Is(err, ErrInstanceNotFound) {
			t.Fatalf("err = %v, want the InternalFailure after retries", err)
		}
		if n := f.faults.Injected("TerminateInstanceInAutoScalingGroup"); n < 2 {
			t.Fatalf("termination tried %d times, want retries of a server error", n)
		}
		f.wantGroup(t, groupSmall, 1)
		f.wantState(t, id, ec2types.InstanceStateNameRunning, ec2types.InstanceStateNamePending)
	})

	t.Run("lets the pool controller launch into the group and terminate the instance of a drained node", func(t *testing.T) {
		f := newAWSFixture(t, m)
		p := f.pool
		p.Min, p.SpotMaxShare = 3, 0
		nomad := newFakeNomad()
		journal, clk := NewMemJournal(), newClock()
		ctl, err := NewController(Deps{Nomad: nomad, Drainer: nomad, Providers: map[string]Provider{"web": f.provider},
			Idle: NewMemIdleStore(), Journal: journal, Now: clk.now})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ctl.Reconcile(ctx, p); err != nil {
			t.Fatal(err)
		}
		ids := f.wantGroup(t, groupSmall, 3)
		// The instances boot and their Nomad clients join, idle.
		for _, id := range ids {
			in := f.instance(t, id)
			nomad.add(Node{ID: "node-" + id, Name: id, NodePool: "web", InstanceType: "small", Status: NodeStatusReady, Eligible: true,
				Total: p.InstanceTypes[0].Resources, InstanceID: id, Address: aws.ToString(in.PrivateIpAddress)})
		}
		p.Min = 2
		var drained string
		for i := 0; i < 5 && drained == ""; i++ {
			clk.advance(time.Minute)
			d, err := ctl.Reconcile(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			if len(d.Drains) > 0 {
				drained = d.Drains[0].NodeID
			}
		}
		if drained == "" {
			t.Fatal("the controller drained no idle node above min")
		}
		nomad.edit(drained, func(n *Node) { n.Draining = false }) // the drain finished
		clk.advance(time.Minute)
		if _, err := ctl.Reconcile(ctx, p); err != nil {
			t.Fatal(err)
		}
		victim := strings.TrimPrefix(drained, "node-")
		if left := f.wantGroup(t, groupSmall, 2); slices.Contains(left, victim) {
			t.Fatalf("group still holds the drained node's instance %s: %v", victim, left)
		}
		f.wantState(t, victim, terminatedStates...)
	})

	t.Run("lets the pool controller make a node eligible again when its instance cannot be found", func(t *testing.T) {
		f := newAWSFixture(t, m)
		nomad := newFakeNomad(Node{ID: "ghost", NodePool: "web", InstanceType: "small", Status: NodeStatusReady,
			Total: f.pool.InstanceTypes[0].Resources, InstanceID: "i-0123456789abcdef0"})
		journal, clk := NewMemJournal(), newClock()
		if err := journal.Append(ctx, Entry{ID: "d1", Pool: "web", Kind: KindDrain, Phase: PhaseDraining, NodeID: "ghost",
			InstanceType: "small", InstanceID: "i-0123456789abcdef0", At: clk.now()}); err != nil {
			t.Fatal(err)
		}
		ctl, err := NewController(Deps{Nomad: nomad, Drainer: nomad, Providers: map[string]Provider{"web": f.provider},
			Idle: NewMemIdleStore(), Journal: journal, Now: clk.now})
		if err != nil {
			t.Fatal(err)
		}
		p := f.pool
		p.Min = 0
		_, err = ctl.Reconcile(ctx, p)
		if !errors.Is(err, ErrInstanceNotFound) {
			t.Fatalf("err = %v, want ErrInstanceNotFound from the termination", err)
		}
		if !nomad.eligible["ghost"] {
			t.Fatal("the node whose termination failed was not made eligible again")
		}
		if e, _ := journal.Latest("d1"); e.Phase != PhaseFailed {
			t.Fatalf("journal entry %+v, want failed", e)
		}
	})
}

// fakeGroups is an Auto Scaling API of groups held in memory; raising a
// group named in failRaise fails. Calls the tests do not expect panic on
// the nil embedded interface.
type fakeGroups struct {
	autoScalingAPI
	desired, max map[string]int32
	failRaise    map[string]error
}

func (f *fakeGroups) DescribeAutoScalingGroups(_ context.Context, in *autoscaling.DescribeAutoScalingGroupsInput, _ ...func(*autoscaling.Options)) (*autoscaling.DescribeAutoScalingGroupsOutput, error) {
	var out autoscaling.DescribeAutoScalingGroupsOutput
	for _, name := range in.AutoScalingGroupNames {
		out.AutoScalingGroups = append(out.AutoScalingGroups, astypes.AutoScalingGroup{AutoScalingGroupName: aws.String(name),
			DesiredCapacity: aws.Int32(f.desired[name]), MaxSize: aws.Int32(f.max[name])})
	}
	return &out, nil
}

func (f *fakeGroups) DescribeScalingActivities(context.Context, *autoscaling.DescribeScalingActivitiesInput, ...func(*autoscaling.Options)) (*autoscaling.DescribeScalingActivitiesOutput, error) {
	return &autoscaling.DescribeScalingActivitiesOutput{}, nil
}

func (f *fakeGroups) SetDesiredCapacity(_ context.Context, in *autoscaling.SetDesiredCapacityInput, _ ...func(*autoscaling.Options)) (*autoscaling.SetDesiredCapacityOutput, error) {
	name := aws.ToString(in.AutoScalingGroupName)
	if err := f.failRaise[name]; err != nil {
		return nil, err
	}
	f.desired[name] = aws.ToInt32(in.DesiredCapacity)
	return &autoscaling.SetDesiredCapacityOutput{}, nil
}

func TestAWSProviderWithFakeGroupsReportsTheSpotNodesItLaunchedWhenTheOnDemandPartFails(t *testing.T) {
	p := testPool()
	p.Provider = ProviderSpec{Kind: ProviderAWS, AWS: &AWSSpec{Groups: map[string]AWSGroups{"small": {OnDemand: groupSmall, Spot: groupSmallSpot}}}}
	groups := &fakeGroups{
		desired:   map[string]int32{groupSmall: 0, groupSmallSpot: 0},
		max:       map[string]int32{groupSmall: 10, groupSmallSpot: 2},
		failRaise: map[string]error{groupSmall: errors.New("AccessDenied: not authorized to raise " + groupSmall)},
	}
	pr := newAWSProvider(p, groups, nil, nil)

	err := pr.ScaleOut(context.Background(), ScaleOutRequest{Pool: "web", InstanceType: "small", Count: 5, Spot: true})
	var partial *PartialScaleOutError
	if !errors.As(err, &partial) {
		t.Fatalf("err = %v, want a *PartialScaleOutError", err)
	}
	if partial.Spot != 2 || partial.OnDemand != 0 || groups.desired[groupSmallSpot] != 2 {
		t.Fatalf("reported %d spot and %d on demand, spot group at %d; want the 2 spot nodes launched", partial.Spot, partial.OnDemand, groups.desired[groupSmallSpot])
	}
	if !strings.Contains(err.Error(), "not authorized") {
		t.Fatalf("err = %v, want the on-demand group's failure in it", err)
	}
}

// fakeInstances is an EC2 API holding instances in memory (filtered by
// private IP only).
type fakeInstances struct{ insts []ec2types.Instance }

func (f *fakeInstances) DescribeInstances(_ context.Context, in *ec2.DescribeInstancesInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
	var out []ec2types.Instance
	for _, i := range f.insts {
		keep := true
		for _, fl := range in.Filters {
			if aws.ToString(fl.Name) == "private-ip-address" && !slices.Contains(fl.Values, aws.ToString(i.PrivateIpAddress)) {
				keep = false
			}
		}
		if keep {
			out = append(out, i)
		}
	}
	return &ec2.DescribeInstancesOutput{Reservations: []ec2types.Reservation{{Instances: out}}}, nil
}

// recordingGroups fails the test's expectations by recording every
// termination; other calls panic on the nil embedded interface.
type recordingGroups struct {
	autoScalingAPI
	terminated []string
}

func (r *recordingGroups) TerminateInstanceInAutoScalingGroup(_ context.Context, in *autoscaling.TerminateInstanceInAutoScalingGroupInput, _ ...func(*autoscaling.Options)) (*autoscaling.TerminateInstanceInAutoScalingGroupOutput, error) {
	r.terminated = append(r.terminated, aws.ToString(in.InstanceId))
	return &autoscaling.TerminateInstanceInAutoScalingGroupOutput{}, nil
}

func TestATerminationRetriedByAddressLeavesAFakeInstanceLaunchedAfterTheDrainAlone(t *testing.T) {
	p := testPool()
	p.Provider = ProviderSpec{Kind: ProviderAWS, AWS: &AWSSpec{Groups: map[string]AWSGroups{"small": {OnDemand: groupSmall}}}}
	drained := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	// The drained node's instance is gone; AWS gave its private IP to an
	// instance launched a minute after the drain began.
	ec2c := &fakeInstances{insts: []ec2types.Instance{
		{InstanceId: aws.String("i-old"), PrivateIpAddress: aws.String("10.0.0.5"), LaunchTime: aws.Time(drained.Add(-24 * time.Hour)),
			State: &ec2types.InstanceState{Name: ec2types.InstanceStateNameTerminated}},
		{InstanceId: aws.String("i-new"), PrivateIpAddress: aws.String("10.0.0.5"), LaunchTime: aws.Time(drained.Add(time.Minute)),
			State: &ec2types.InstanceState{Name: ec2types.InstanceStateNameRunning}},
	}}
	groups := &recordingGroups{}
	pr := newAWSProvider(p, groups, ec2c, nil)
	err := pr.Terminate(context.Background(), TerminateRequest{Pool: "web", NodeID: "n1", Address: "10.0.0.5", DrainedSince: drained})
	if err != nil || len(groups.terminated) != 0 {
		t.Fatalf("err %v, terminated %v; want the node taken as gone and i-new left alone", err, groups.terminated)
	}
}
