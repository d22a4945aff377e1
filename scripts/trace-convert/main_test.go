package main

import (
	"strings"
	"testing"
	"time"

	"github.com/nomadscalerd/nomadscalerd/backtest"
)

func TestRowTimesReadInEveryLayoutAsTheSameSecond(t *testing.T) {
	want := time.Date(1998, 6, 22, 0, 0, 5, 0, time.UTC)
	for _, s := range []string{"1998-06-22 00:00:05", "1998-06-22T00:00:05Z", "1998-06-22T02:00:05+02:00", "898473605"} {
		got, err := parseTime(s)
		if err != nil || !got.Equal(want) {
			t.Errorf("%q: %v, %v; want %v", s, got, err, want)
		}
	}
	if _, err := parseTime("yesterday"); err == nil {
		t.Error("an unreadable time was accepted")
	}
}

func TestPerSecondRowsWithUnixTimesAreCountedAndAHeaderSkipped(t *testing.T) {
	counts, skipped, err := readCounts(strings.NewReader("ts,count\n898473605,3\n898473606,0\n898473605,2\n"), 1)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Unix(898473605, 0).UTC()
	if skipped != 1 || len(counts) != 2 || counts[bucket{at, 1}] != 5 {
		t.Fatalf("counts %v, skipped %d; want 5 at %v (rows summed), the header skipped", counts, skipped, at)
	}
}

func TestCountsWrittenAsWholeFloatsAreReadAndFractionalOnesSkipped(t *testing.T) {
	rows := "2014-04-10 00:04:00,94.0\n2014-04-10 00:09:00,3\n2014-04-10 00:14:00,2.5\n2014-04-10 00:19:00,-1\n"
	counts, skipped, err := readCounts(strings.NewReader(rows), 300)
	if err != nil {
		t.Fatal(err)
	}
	first := time.Date(2014, 4, 10, 0, 4, 0, 0, time.UTC)
	if skipped != 2 || len(counts) != 2 || counts[bucket{first, 300}] != 94 {
		t.Fatalf("counts %v, skipped %d; want 94 and 3 read, 2.5 and -1 skipped", counts, skipped)
	}
}

func TestAConvertedFileAndTheSameRowsGivenToTheBacktestLayTheSameSeconds(t *testing.T) {
	rows := "minute,count\n2014-04-10 00:00:00,94.0\n2014-04-10 00:01:00,7\n2014-04-10 00:03:00,61\n"
	counts, _, err := readCounts(strings.NewReader(rows), 60)
	if err != nil {
		t.Fatal(err)
	}
	lo, hi := span(counts)
	converted := spread(counts, lo, hi)
	direct, err := backtest.ReadTrace(strings.NewReader(rows))
	if err != nil {
		t.Fatal(err)
	}
	if len(direct) != len(converted) {
		t.Fatalf("backtest read %d seconds, the conversion wrote %d", len(direct), len(converted))
	}
	for i := range direct {
		if direct[i] != float64(converted[i]) {
			t.Fatalf("second %d: backtest %v, conversion %d", i, direct[i], converted[i])
		}
	}
}
