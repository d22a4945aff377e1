package main

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/nomadscalerd/nomadscalerd/logging"
)

// parseLevel reads a log level as slog names them and as the seed writes
// them (Python's names: LOG_LEVEL=INFO, api_loglevel=warning), in any case.
func parseLevel(flag, level string) (slog.Level, error) {
	name := strings.ToLower(strings.TrimSpace(level))
	switch name {
	case "warning":
		name = "warn"
	case "critical", "fatal":
		name = "error"
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(name)); err != nil {
		return lv, fmt.Errorf("%s: %q is not debug, info, warn (warning), error or critical", flag, level)
	}
	return lv, nil
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	lv, err := parseLevel("--log-level", level)
	if err != nil {
		return nil, err
	}
	return newLoggerAt(w, lv, format)
}

func newLoggerAt(w io.Writer, lv slog.Level, format string) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: lv}
	var h slog.Handler
	switch format {
	case "text", "":
		h = slog.NewTextHandler(w, opts)
	case "json":
		h = slog.NewJSONHandler(w, opts)
	default:
		return nil, fmt.Errorf("--log-format: %q is not text or json", format)
	}
	// A thousand policies failing the same way write one line each a
	// minute, with a count, not one a reconcile.
	return slog.New(logging.NewDedupe(h, time.Minute, nil)), nil
}

func loggerFrom(c *cli.Context) (*slog.Logger, error) {
	return newLogger(c.App.ErrWriter, c.String("log-level"), c.String("log-format"))
}

// apiLoggerFrom is the HTTP API's logger: --api-log-level (the seed's
// api_loglevel), else the daemon's level.
func apiLoggerFrom(c *cli.Context) (*slog.Logger, error) {
	level := c.String("api-log-level")
	if level == "" {
		return loggerFrom(c)
	}
	lv, err := parseLevel("--api-log-level", level)
	if err != nil {
		return nil, err
	}
	l, err := newLoggerAt(c.App.ErrWriter, lv, c.String("log-format"))
	if err != nil {
		return nil, err
	}
	return l.With("component", "api"), nil
}
