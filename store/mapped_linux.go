//go:build linux

package store

import "syscall"

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
