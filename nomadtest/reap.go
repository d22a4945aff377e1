package nomadtest

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ReapDir kills every process session whose leader names dir on its command
// line (Nomad's raw_exec executors and their tasks run in sessions of their
// own and outlive a stopped agent) and unmounts what agents mounted under
// dir (the secrets tmpfs), so nothing of a test outlives it. The caller's
// own session is never touched.
func ReapDir(dir string) {
	dir = strings.TrimRight(dir, "/") + "/"
	procs := listProcs()
	own := 0
	for _, p := range procs {
		if p.pid == os.Getpid() {
			own = p.sid
		}
	}
	sessions := map[int]bool{}
	for _, p := range procs {
		if p.pid == p.sid && p.sid != own && strings.Contains(p.cmdline, dir) {
			sessions[p.sid] = true
		}
	}
	var victims []int
	for _, p := range procs {
		if sessions[p.sid] {
			victims = append(victims, p.pid)
			_ = syscall.Kill(p.pid, syscall.SIGKILL)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, pid := range victims {
		for processAlive(pid) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if mounts, err := os.ReadFile("/proc/self/mounts"); err == nil {
		for _, line := range strings.Split(string(mounts), "\n") {
			if fs := strings.Fields(line); len(fs) > 1 && strings.HasPrefix(fs[1], dir) {
				_ = syscall.Unmount(fs[1], syscall.MNT_DETACH)
			}
		}
	}
}

type proc struct {
	pid, sid int
	cmdline  string
}

// listProcs reads every process's session and command line from /proc.
func listProcs() []proc {
	ents, _ := os.ReadDir("/proc")
	var out []proc
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// Fields after the parenthesised command: state ppid pgrp session.
		s := string(stat)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		fs := strings.Fields(s[i+1:])
		if len(fs) < 4 {
			continue
		}
		sid, _ := strconv.Atoi(fs[3])
		cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		out = append(out, proc{pid: pid, sid: sid, cmdline: strings.ReplaceAll(string(cmd), "\x00", " ")})
	}
	return out
}

// processAlive reports whether pid runs; a zombie nobody reaps counts as gone.
func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}
