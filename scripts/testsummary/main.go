// Command testsummary reads `go test -json` output on stdin and prints the
// output of failed tests, then their assertion lines again (a failed
// end-to-end test's output is mostly its agents' logs, and a CI report
// that keeps only the tail must still say why it failed), the slowest
// tests, and a count of tests that passed, failed and skipped, per package
// and in total.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
)

type event struct {
	Action  string
	Package string
	Test    string
	Output  string
	Elapsed float64
}

func main() {
	type counts struct{ pass, fail, skip int }
	per := map[string]*counts{}
	output := map[string]*strings.Builder{}
	var failed []string
	var skipped []string
	type timing struct {
		name    string
		elapsed float64
	}
	var timings []timing
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			fmt.Println(sc.Text())
			continue
		}
		key := e.Package + "." + e.Test
		if e.Action == "output" {
			if output[key] == nil {
				output[key] = &strings.Builder{}
			}
			output[key].WriteString(e.Output)
			continue
		}
		if e.Test == "" || strings.Contains(e.Test, "/") {
			if e.Test == "" && e.Action == "fail" {
				failed = append(failed, e.Package+" (package)")
			}
			continue
		}
		c := per[e.Package]
		if c == nil {
			c = &counts{}
			per[e.Package] = c
		}
		if e.Action == "pass" || e.Action == "fail" {
			timings = append(timings, timing{key, e.Elapsed})
		}
		switch e.Action {
		case "pass":
			c.pass++
		case "fail":
			c.fail++
			failed = append(failed, key)
		case "skip":
			c.skip++
			skipped = append(skipped, key)
		}
	}
	for _, f := range failed {
		fmt.Printf("--- FAIL %s\n", f)
		if b := output[strings.TrimSuffix(f, " (package)")+"."]; b != nil {
			fmt.Print(b.String())
		}
		if b := output[f]; b != nil {
			fmt.Print(b.String())
		}
	}
	if len(failed) > 0 {
		fmt.Println("\nwhy they failed (their assertion lines):")
		for _, f := range failed {
			for _, line := range assertions(output[f]) {
				fmt.Printf("  %s: %s\n", f, line)
			}
		}
	}
	sort.SliceStable(timings, func(i, j int) bool { return timings[i].elapsed > timings[j].elapsed })
	fmt.Println("\nslowest tests:")
	for _, t := range timings[:min(len(timings), 10)] {
		fmt.Printf("  %7.1fs  %s\n", t.elapsed, t.name)
	}
	pkgs := make([]string, 0, len(per))
	for p := range per {
		pkgs = append(pkgs, p)
	}
	sort.Strings(pkgs)
	var total counts
	fmt.Println("\ntests by package (passed / failed / skipped):")
	for _, p := range pkgs {
		c := per[p]
		fmt.Printf("  %-60s %4d %4d %4d\n", p, c.pass, c.fail, c.skip)
		total.pass += c.pass
		total.fail += c.fail
		total.skip += c.skip
	}
	fmt.Printf("TOTAL: %d tests ran: %d passed, %d failed, %d skipped\n", total.pass+total.fail, total.pass, total.fail, total.skip)
	for _, s := range skipped {
		fmt.Printf("  skipped: %s\n", s)
	}
	if total.fail > 0 || len(failed) > 0 {
		os.Exit(1)
	}
}

// assertions are the lines of a test's output that the testing package
// wrote for t.Error, t.Fatal and t.Log calls in a _test.go file, without
// the agents' logs around them.
func assertions(b *strings.Builder) []string {
	if b == nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(b.String(), "\n") {
		t := strings.TrimSpace(line)
		if i := strings.Index(t, "_test.go:"); i > 0 && !strings.ContainsAny(t[:i], " \t") {
			out = append(out, t)
		}
	}
	return out
}
