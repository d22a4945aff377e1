package nomad

import (
	"fmt"
	"testing"
)

func TestAPolicyKeysShardIsStableAndTheKeysSpreadOverTheShards(t *testing.T) {
	counts := make([]int, 4)
	for i := range 4000 {
		key := fmt.Sprintf("default/job-%d/web", i)
		s := ShardOf(key, 4)
		if s != ShardOf(key, 4) {
			t.Fatalf("%s: shard changed between two calls", key)
		}
		counts[s]++
	}
	for i, n := range counts {
		if n < 800 || n > 1200 {
			t.Errorf("shard %d holds %d of 4000 keys, want about 1000: %v", i, n, counts)
		}
	}
	if ShardOf("default/a/b", 1) != 0 {
		t.Error("with one shard every key is in shard 0")
	}
}
