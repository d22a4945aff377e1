package main

import (
	"context"
	"os"
	"syscall"
	"testing"
	"time"
)

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
