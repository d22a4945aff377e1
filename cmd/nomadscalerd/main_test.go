package main

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
	"testing"
)

// runMainEnv makes the test binary act as the nomadscalerd CLI, so end-to-end
// tests can run `nomadscalerd demo load` as a raw_exec task without a build.
const runMainEnv = "NOMADSCALERD_RUN_MAIN"

// profileEnv names a directory: a test binary acting as the CLI (a
// BenchmarkScale replica) then writes cpu-<pid>.pprof over its whole run
// and heap-<pid>.pprof and mem-<pid>.txt (the Go runtime's memory
// figures and the kernel's RSS split, to tell the heap from the rest of
// RSS) when it is told to stop, while its state is still live. make
// bench-scale passes BENCH_SCALE_PPROF on to its replicas.
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
	name := func(file string) string { return filepath.Join(dir, fmt.Sprintf(file, os.Getpid())) }
	cpu, err := os.Create(name("cpu-%d.pprof"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "profile:", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(cpu); err != nil {
		fmt.Fprintln(os.Stderr, "profile:", err)
		return func() {}
	}
	// The heap is written on SIGTERM, as of the last garbage collection
	// before it: forcing one here raced the daemon's shutdown, which gets
	// the same signal on its own channel and frees what it held.
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM, syscall.SIGINT)
	heapDone := make(chan struct{})
	go func() {
		defer close(heapDone)
		if _, ok := <-term; !ok {
			return
		}
		if err := writeHeap(name("heap-%d.pprof")); err != nil {
			fmt.Fprintln(os.Stderr, "profile:", err)
		}
		if err := writeMem(name("mem-%d.txt")); err != nil {
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

// writeMem writes what makes up the process' memory: the Go runtime's
// MemStats and /proc/self/status's RSS lines.
func writeMem(path string) error {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	const mib = 1 << 20
	out := fmt.Sprintf("HeapAlloc %.1f MiB\nHeapInuse %.1f MiB\nHeapIdle %.1f MiB\nHeapReleased %.1f MiB\nNextGC %.1f MiB\nStackInuse %.1f MiB\nGCSys %.1f MiB\nOtherSys %.1f MiB\nSys %.1f MiB\nNumGC %d\nGoroutines %d\n",
		float64(m.HeapAlloc)/mib, float64(m.HeapInuse)/mib, float64(m.HeapIdle)/mib, float64(m.HeapReleased)/mib, float64(m.NextGC)/mib,
		float64(m.StackInuse)/mib, float64(m.GCSys)/mib, float64(m.OtherSys)/mib, float64(m.Sys)/mib, m.NumGC, runtime.NumGoroutine())
	if status, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(status), "\n") {
			if strings.HasPrefix(line, "VmRSS") || strings.HasPrefix(line, "VmHWM") || strings.HasPrefix(line, "Rss") {
				out += line + "\n"
			}
		}
	}
	if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
		return fmt.Errorf("write memory figures: %w", err)
	}
	return nil
}
