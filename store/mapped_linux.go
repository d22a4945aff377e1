//go:build linux

package store

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// releaseMapped drops the page-table entries of [addr, addr+size) with
// MADV_DONTNEED. On a shared file mapping that discards nothing: a later
// access maps the same page-cache page again.
func releaseMapped(addr uintptr, size int64) error {
	if addr == 0 || size <= 0 {
		return nil
	}
	if _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, addr, uintptr(size), syscall.MADV_DONTNEED); errno != 0 {
		return errno
	}
	return nil
}

// MappedBytes is the resident size, in bytes, of process pid's mappings of
// the file at path (the Rss of its /proc/PID/smaps entries): the pages of
// a database file the process has mapped, which its VmRSS counts as
// RssFile along with the binary's. What ReleaseMapped lowers.
func MappedBytes(pid int, path string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var kib int64
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		// A mapping's header is "start-end perms offset dev inode [path]";
		// its fields' lines end in a colon.
		if len(fields) >= 5 && strings.Contains(fields[0], "-") && !strings.HasSuffix(fields[0], ":") {
			in = len(fields) == 6 && fields[5] == path
			continue
		}
		if v, ok := strings.CutPrefix(line, "Rss:"); in && ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("smaps line %q: %w", line, err)
			}
			kib += n
		}
	}
	return kib << 10, sc.Err()
}
