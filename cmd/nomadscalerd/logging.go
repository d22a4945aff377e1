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

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(strings.ToLower(level))); err != nil {
		return nil, fmt.Errorf("--log-level: %q is not debug, info, warn or error", level)
	}
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
