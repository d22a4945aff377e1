package logging

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestARepeatedWarningOfOnePolicyIsWrittenOncePerWindowWithTheCountHeldBack(t *testing.T) {
	var buf bytes.Buffer
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	log := slog.New(NewDedupe(slog.NewTextHandler(&buf, nil), time.Minute, func() time.Time { return now }))
	for i := range 1000 {
		log.Warn("reconcile failed", "policy", "default/web/web", "err", "429")
		log.Warn("reconcile failed", "policy", "default/api/api", "err", "429")
		log.Info("reconciled", "policy", "default/web/web", "i", i)
		now = now.Add(10 * time.Millisecond) // 10 s in all: within one window
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	warns := 0
	for _, l := range lines {
		if strings.Contains(l, "level=WARN") {
			warns++
		}
	}
	if warns != 2 {
		t.Fatalf("%d warnings written for 2000 repeats of 2 policies' warning in one window, want 2", warns)
	}
	if len(lines) != 1002 {
		t.Errorf("%d lines, want every one of 1000 info lines to pass", len(lines))
	}
	buf.Reset()
	now = now.Add(time.Minute)
	log.With("policy", "default/web/web").Warn("reconcile failed", "err", "429")
	if got := buf.String(); !strings.Contains(got, "repeated=999") {
		t.Errorf("first warning after the window: %q, want repeated=999", got)
	}
}
