package main

import (
	"context"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/nomadscalerd/nomadscalerd/reconciler"
)

func TestATargetValueCheckIsRecordedAsItsGroupTotalAndOthersAsTheyAre(t *testing.T) {
	p := reconciler.Policy{Key: "default/web/api", Namespace: "default", Job: "web", Group: "api", Checks: []reconciler.Check{
		{Name: "cpu", Source: "nomad-apm", Query: "avg_cpu_percent", TargetValue: 75},
		{Name: "mem", Source: "nomad-apm", Query: "avg_memory_percent"},
	}}
	got := recordTargets([]reconciler.Policy{p})
	if len(got) != 2 {
		t.Fatalf("targets = %+v, want one per check", got)
	}
	if !got[0].Query.TimesCount || got[1].Query.TimesCount {
		t.Errorf("TimesCount = %v, %v; want only the target-value check's set", got[0].Query.TimesCount, got[1].Query.TimesCount)
	}
}

func TestASIGHUPReloadsInsteadOfEndingTheProcess(t *testing.T) {
	reloads := make(chan struct{}, 1)
	loop := onHangup(func() { reloads <- struct{}{} })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- loop(ctx) }()
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	select {
	case <-reloads:
	case <-time.After(5 * time.Second):
		t.Fatal("no reload after SIGHUP")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("loop: %v", err)
	}
}
