package main

import (
	"os"
	"testing"
)

// runMainEnv makes the test binary act as the nomadscalerd CLI, so end-to-end
// tests can run `nomadscalerd demo load` as a raw_exec task without a build.
const runMainEnv = "NOMADSCALERD_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		os.Args = append([]string{"nomadscalerd"}, os.Args[1:]...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}
