package clock

import (
	"testing"
	"time"
)

func TestAFakeTimerFiresOnlyWhenTheClockPassesItsDeadline(t *testing.T) {
	start := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	f := NewFake(start)
	ch := f.After(10 * time.Second)
	f.Advance(9 * time.Second)
	select {
	case <-ch:
		t.Fatal("fired 1 s early")
	default:
	}
	f.Advance(time.Second)
	select {
	case at := <-ch:
		if !at.Equal(start.Add(10 * time.Second)) {
			t.Fatalf("fired at %v, want start+10s", at)
		}
	default:
		t.Fatal("did not fire at its deadline")
	}
	if f.Waiters() != 0 {
		t.Fatalf("%d timers left after firing", f.Waiters())
	}
}

func TestAFakeTimerOfZeroFiresAtOnceAndBlockUntilSeesSetTimers(t *testing.T) {
	f := NewFake(time.Unix(0, 0))
	select {
	case <-f.After(0):
	default:
		t.Fatal("After(0) did not fire at once")
	}
	go func() { f.After(time.Minute) }()
	if !f.BlockUntil(1, 5*time.Second) {
		t.Fatal("BlockUntil did not see the timer")
	}
	if f.BlockUntil(2, 20*time.Millisecond) {
		t.Fatal("BlockUntil saw a timer that was never set")
	}
}
