package main

import "github.com/urfave/cli/v2"

func globalFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "db", EnvVars: []string{"NOMADSCALERD_DB"}, Value: "./nomadscalerd.db", Usage: "bbolt database file"},
		&cli.StringFlag{Name: "log-level", EnvVars: []string{"LOG_LEVEL"}, Value: "info", Usage: "debug, info, warn (warning) or error, in any case"},
		&cli.StringFlag{Name: "log-format", Value: "text", Usage: "text or json"},
	}
}
