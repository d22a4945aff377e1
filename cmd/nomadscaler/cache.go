package main

import (
	"errors"
	"time"
)

// usesPerFetch is how many times one answer of the optimizer is used before
// a fresh one is asked for (the seed's "after 2 cache uses").
const usesPerFetch = 2

// ErrNoCache means the optimizer has not answered yet and there is nothing
// to serve: the plugin holds the count.
var ErrNoCache = errors.New("no cached counts yet")

// ErrCacheExpired means the optimizer has been failing for longer than the
// cache may be served: the plugin holds the count.
var ErrCacheExpired = errors.New("cached counts expired")

// cache is one group's second-level cache: the optimizer's counts for the
// cache_size seconds after they were fetched.
type cache struct {
	desired []int
	fetched time.Time
	uses    int
}

// due reports whether the optimizer should be asked again.
func (c *cache) due() bool { return c == nil || c.uses >= usesPerFetch }

// value is the count for now: the entry at seconds_elapsed % cache_size,
// as the seed's plugin serves it. A cache older than maxAge is not served
// (a plan that old says nothing about now); maxAge 0 serves it forever.
func (c *cache) value(now time.Time, maxAge time.Duration) (int, error) {
	if c == nil || len(c.desired) == 0 {
		return 0, ErrNoCache
	}
	age := now.Sub(c.fetched)
	if maxAge > 0 && age > maxAge {
		return 0, ErrCacheExpired
	}
	elapsed := max(int(age/time.Second), 0)
	c.uses++
	return c.desired[elapsed%len(c.desired)], nil
}
