package main

import (
	"errors"
	"testing"
	"time"
)

func TestTheCacheServesTheEntryAtSecondsElapsedModuloItsSize(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	c := &cache{desired: []int{3, 4, 5, 6}, fetched: t0}
	for _, tc := range []struct {
		after time.Duration
		want  int
	}{{0, 3}, {1500 * time.Millisecond, 4}, {3 * time.Second, 6}, {4 * time.Second, 3}, {9 * time.Second, 4}} {
		c.uses = 0
		got, err := c.value(t0.Add(tc.after), 0)
		if err != nil || got != tc.want {
			t.Errorf("after %s: %d, %v; want %d", tc.after, got, err, tc.want)
		}
	}
}

func TestTheOptimizerIsAskedAgainAfterTwoUses(t *testing.T) {
	var c *cache
	if !c.due() {
		t.Fatal("no cache: want a fetch")
	}
	c = &cache{desired: []int{2}, fetched: time.Now()}
	for i := 0; i < usesPerFetch; i++ {
		if c.due() {
			t.Fatalf("due after %d uses, want after %d", i, usesPerFetch)
		}
		if _, err := c.value(time.Now(), 0); err != nil {
			t.Fatal(err)
		}
	}
	if !c.due() {
		t.Fatalf("not due after %d uses", usesPerFetch)
	}
}

func TestAnEmptyOrExpiredCacheIsNotServed(t *testing.T) {
	var c *cache
	if _, err := c.value(time.Now(), 0); !errors.Is(err, ErrNoCache) {
		t.Errorf("nil cache: err = %v, want ErrNoCache", err)
	}
	old := &cache{desired: []int{2}, fetched: time.Now().Add(-10 * time.Minute)}
	if _, err := old.value(time.Now(), 5*time.Minute); !errors.Is(err, ErrCacheExpired) {
		t.Errorf("old cache: err = %v, want ErrCacheExpired", err)
	}
}
