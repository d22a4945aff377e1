package main

import (
	"errors"
	"strings"
	"testing"
)

func TestTwoReplicasWithTheSameHostPidAndAddressAreNamedApartByTheirAllocations(t *testing.T) {
	host := func() (string, error) { return "client-1", nil }
	a := replicaNameOf(host, 1, "0.0.0.0:8080", "0b1c2d3e-aaaa-bbbb-cccc-000000000001")
	b := replicaNameOf(host, 1, "0.0.0.0:8080", "0b1c2d3e-aaaa-bbbb-cccc-000000000002")
	if a == b {
		t.Fatalf("both replicas named %q", a)
	}
	if !strings.HasPrefix(a, "0b1c2d3e-aaaa-bbbb-cccc-000000000001/") {
		t.Errorf("name %q does not start with its allocation ID (a path cut to length would lose it)", a)
	}
}

func TestOutsideNomadAReplicaIsNamedByHostPidAndAddress(t *testing.T) {
	got := replicaNameOf(func() (string, error) { return "laptop", nil }, 4242, "127.0.0.1:8080", "")
	if want := "laptop/4242/127.0.0.1:8080"; got != want {
		t.Errorf("name %q, want %q", got, want)
	}
	got = replicaNameOf(func() (string, error) { return "", errors.New("no hostname") }, 7, ":8080", "")
	if want := "unknown/7/:8080"; got != want {
		t.Errorf("name without a hostname %q, want %q", got, want)
	}
}
