package main

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"syscall"
	"testing"
)

// runMainEnv makes the test binary act as the nomadscalerd CLI, so end-to-end
// tests can run `nomadscalerd demo load` as a raw_exec task without a build.
const runMainEnv = "NOMADSCALERD_RUN_MAIN"

// profileEnv names a directory: a test binary acting as the CLI (a
// BenchmarkScale replica) then writes cpu-<pid>.pprof over its whole run
// and heap-<pid>.pprof when it is told to stop, while its state is still
// live. make bench-scale passes BENCH_SCALE_PPROF on to its replicas.
const profileEnv = "BENCH_SCALE_PPROF"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		os.Args = append([]string{"nomadscalerd"}, os.Args[1:]...)
		stop := startProfiles(os.Getenv(profileEnv))
		main()
		stop()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// startProfiles starts the CPU profile in dir ("" profiles nothing) and
// returns what ends it. A profile that cannot be written is reported on
// stderr (the replica's log) and the daemon runs on: profiling is only a
// bench aid.
func startProfiles(dir string) (stop func()) {
	if dir == "" {
		return func() {}
	}
	name := func(kind string) string { return filepath.Join(dir, fmt.Sprintf("%s-%d.pprof", kind, os.Getpid())) }
	cpu, err := os.Create(name("cpu"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "profile:", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(cpu); err != nil {
		fmt.Fprintln(os.Stderr, "profile:", err)
		return func() {}
	}
	// The heap is written on SIGTERM, before the daemon's shutdown frees
	// what it held (the daemon gets the same signal on its own channel).
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM, syscall.SIGINT)
	heapDone := make(chan struct{})
	go func() {
		defer close(heapDone)
		if _, ok := <-term; !ok {
			return
		}
		runtime.GC()
		if err := writeHeap(name("heap")); err != nil {
			fmt.Fprintln(os.Stderr, "profile:", err)
		}
	}()
	return func() {
		pprof.StopCPUProfile()
		if err := cpu.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "profile:", err)
		}
		signal.Stop(term)
		close(term)
		<-heapDone
	}
}

func writeHeap(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create heap profile: %w", err)
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return fmt.Errorf("write heap profile: %w", err)
	}
	return f.Close()
}
