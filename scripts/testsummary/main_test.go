package main

import (
	"strings"
	"testing"
)

func TestAssertionLinesAreKeptAndAgentLogsAroundThemDropped(t *testing.T) {
	var b strings.Builder
	b.WriteString("    2026-12-02T12:33:49.619Z [INFO]  client.alloc_runner: Task event: msg=\"Task received\"\n")
	b.WriteString("    pools_e2e_test.go:399: launched [a b c d], want exactly one node beyond the first two\n")
	b.WriteString("    2026-12-02T12:33:50Z [WARN] path=/tmp/x/pools_e2e_test.go:1: not an assertion\n")
	b.WriteString("        helpers_test.go:12: a continuation from a helper\n")
	got := assertions(&b)
	want := []string{
		"pools_e2e_test.go:399: launched [a b c d], want exactly one node beyond the first two",
		"helpers_test.go:12: a continuation from a helper",
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("assertions = %q, want %q", got, want)
	}
	if assertions(nil) != nil {
		t.Fatal("no output has assertion lines")
	}
}
