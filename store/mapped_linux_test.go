//go:build linux

package store

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nomadscalerd/nomadscalerd/migrations"
)

// mappedKiB is the resident size of this process's mappings of path, from
// /proc/self/smaps: the pages of the file the process has mapped, which
// VmRSS counts as RssFile.
func mappedKiB(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	kib, in := 0, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		// A mapping's header is "start-end perms offset dev inode [path]".
		if len(fields) >= 5 && strings.Contains(fields[0], "-") && !strings.HasSuffix(fields[0], ":") {
			in = len(fields) == 6 && fields[5] == path
			continue
		}
		if v, ok := strings.CutPrefix(line, "Rss:"); in && ok {
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err != nil {
				t.Fatalf("smaps line %q: %v", line, err)
			}
			kib += n
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return kib
}

func TestReleaseMappedUnmapsTheTouchedPagesAndTheDataReadsBackTheSame(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	d, err := Open(path, Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	// 8 MiB of plans, in values of 16 KiB: bbolt keeps each on its own
	// overflow pages, so reading them all touches the whole file.
	const n, size = 512, 16 << 10
	values := make(map[string]any, n)
	for i := range n {
		values[fmt.Sprintf("p%04d", i)] = strings.Repeat(strconv.Itoa(i%10), size)
	}
	if err := d.PutJSONs(migrations.BucketPlans, values); err != nil {
		t.Fatal(err)
	}
	readAll := func() {
		t.Helper()
		for i := range n {
			var got string
			if err := d.GetJSON(migrations.BucketPlans, fmt.Sprintf("p%04d", i), &got); err != nil {
				t.Fatal(err)
			}
			if got != values[fmt.Sprintf("p%04d", i)] {
				t.Fatalf("plan %d read back different", i)
			}
		}
	}
	readAll()
	before := mappedKiB(t, path)
	if before < 4<<10 {
		t.Fatalf("reading 8 MiB mapped only %d KiB of the file: the test does not exercise the mapping", before)
	}
	if err := d.ReleaseMapped(); err != nil {
		t.Fatal(err)
	}
	// The meta pages and whatever the release's own transaction touched.
	if after := mappedKiB(t, path); after > 256 {
		t.Fatalf("mapped %d KiB after the release, want the %d KiB from before dropped", after, before)
	}
	readAll()
	// Writing after a release works as before (the file grows and bbolt
	// remaps it), and a release after that covers the new mapping.
	if err := d.WritePoints([]Point{{Series: "s", T: time.Unix(1, 0), V: 1}}); err != nil {
		t.Fatal(err)
	}
	if err := d.ReleaseMapped(); err != nil {
		t.Fatal(err)
	}
}
