//go:build !linux

package store

import "errors"

// releaseMapped is a no-op where the resident set is not measured (the
// daemon's platform is Linux).
func releaseMapped(addr uintptr, size int64) error { return nil }

// MappedBytes is Linux's /proc/PID/smaps reading; elsewhere it is not
// supported.
func MappedBytes(pid int, path string) (int64, error) { return 0, errors.ErrUnsupported }
