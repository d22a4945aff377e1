package nomad

import (
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"
	"time"

	"github.com/nomadscalerd/nomadscalerd/clock"
)

// ShardLockPrefix prefixes the Nomad variables whose locks assign shards.
const ShardLockPrefix = "nomadscalerd/shard/"

// ShardOf is the shard of a policy key among n: a stable hash, so every
// replica agrees without talking to the others.
func ShardOf(key string, n int) int {
	if n <= 1 {
		return 0
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return int(h.Sum32() % uint32(n))
}

// Shards splits policies between replicas: shard i is held by whichever
// replica holds the lock of the Nomad variable nomadscalerd/shard/i, and a
// replica reconciles and records only the policies of the shards it
// holds. A replica that stops releases its locks; one that dies loses them
// after the lock TTL; either way another takes them over.
type Shards struct {
	n       int
	leaders []*Leader
}

// NewShards builds n shard electors waiting on clk; onChange runs (on its
// own goroutine) whenever this replica gains or loses a shard.
func NewShards(c *Client, n int, ttl time.Duration, clk clock.Clock, onChange func(), log *slog.Logger) *Shards {
	s := &Shards{n: n}
	for i := range n {
		s.leaders = append(s.leaders, NewLeaderAt(c, fmt.Sprintf("%s%d", ShardLockPrefix, i), ttl, clk, func(bool) {
			if onChange != nil {
				go onChange()
			}
		}, log))
	}
	return s
}

// Run competes for every shard's lock until ctx ends.
func (s *Shards) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, l := range s.leaders {
		wg.Go(func() { _ = l.Run(ctx) })
	}
	wg.Wait()
	return nil
}

// Owns reports whether this replica holds the shard of key now.
func (s *Shards) Owns(key string) bool {
	return s.leaders[ShardOf(key, s.n)].IsLeader()
}

// Held lists the shards this replica holds.
func (s *Shards) Held() []int {
	var out []int
	for i, l := range s.leaders {
		if l.IsLeader() {
			out = append(out, i)
		}
	}
	return out
}
