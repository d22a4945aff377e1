// Command testsummary reads `go test -json` output on stdin and prints the
// output of failed tests and a count of tests that passed, failed and
// skipped, per package and in total.
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
