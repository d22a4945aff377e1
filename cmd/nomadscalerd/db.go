package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/nomadscalerd/nomadscalerd/migrations"
	"github.com/nomadscalerd/nomadscalerd/store"
)

func dbCommand() *cli.Command {
	return &cli.Command{
		Name:  "db",
		Usage: "maintain the bbolt database",
		Subcommands: []*cli.Command{
			{
				Name:  "migrate",
				Usage: "apply pending schema migrations",
				Action: func(c *cli.Context) error {
					// Migrating a path that holds no database would create
					// one: a mistyped --db must not pass as a migration.
					if _, err := os.Stat(c.String("db")); err != nil {
						return fmt.Errorf("no database to migrate at %s: %w", c.String("db"), err)
					}
					d, err := store.Open(c.String("db"), store.Options{})
					if err == nil {
						v, _ := d.SchemaVersion()
						d.Close()
						fmt.Fprintf(c.App.Writer, "%s: schema %d, up to date\n", c.String("db"), v)
						return nil
					}
					d, err = store.Open(c.String("db"), store.Options{Migrate: true})
					if err != nil {
						return err
					}
					defer d.Close()
					v, _ := d.SchemaVersion()
					fmt.Fprintf(c.App.Writer, "%s: migrated to schema %d\n", c.String("db"), v)
					return nil
				},
			},
			{
				Name:  "check",
				Usage: "verify that every bucket decodes",
				Flags: []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print the report as JSON"}},
				Action: func(c *cli.Context) error {
					d, done, err := openForInspection(c.String("db"), c.App.ErrWriter)
					var dmg *store.DamagedError
					if errors.As(err, &dmg) {
						// The check itself: say what is wrong, not to run it.
						fmt.Fprintf(c.App.Writer, "  PROBLEM %s cannot be read as a database: %s\n", dmg.Path, dmg.Cause)
						return cli.Exit(fmt.Sprintf("1 problem found: restore %s from a `db backup` copy or move it away to start empty", dmg.Path), 1)
					}
					if err != nil {
						return err
					}
					defer done()
					rep, err := d.Check()
					if err != nil {
						return fmt.Errorf("check: %w", err)
					}
					if c.Bool("json") {
						enc := json.NewEncoder(c.App.Writer)
						enc.SetIndent("", "  ")
						_ = enc.Encode(rep)
					} else {
						fmt.Fprintf(c.App.Writer, "schema %d (binary knows %d)\n", rep.SchemaVersion, migrations.Latest())
						for _, b := range []string{"meta", "series", "rollups", "fits", "plans", "journal", "state"} {
							fmt.Fprintf(c.App.Writer, "  %-8s %d keys\n", b, rep.Keys[b])
						}
						for _, p := range rep.Problems {
							fmt.Fprintf(c.App.Writer, "  PROBLEM %s\n", p)
						}
					}
					if len(rep.Problems) > 0 {
						return cli.Exit(fmt.Sprintf("%d problems found", len(rep.Problems)), 1)
					}
					return nil
				},
			},
			{
				Name:  "backup",
				Usage: "write a consistent copy of the database",
				Flags: []cli.Flag{&cli.StringFlag{Name: "out", Required: true, Usage: "destination file"}},
				Action: func(c *cli.Context) error {
					d, done, err := openForInspection(c.String("db"), c.App.ErrWriter)
					if err != nil {
						return err
					}
					defer done()
					tmp := c.String("out") + ".tmp"
					f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
					if err != nil {
						return fmt.Errorf("backup: %w", err)
					}
					n, err := d.Backup(f)
					if err == nil {
						err = f.Sync()
					}
					if cerr := f.Close(); err == nil {
						err = cerr
					}
					if err != nil {
						os.Remove(tmp)
						return fmt.Errorf("backup: %w", err)
					}
					if err := os.Rename(tmp, c.String("out")); err != nil {
						return fmt.Errorf("backup: %w", err)
					}
					fmt.Fprintf(c.App.Writer, "wrote %d bytes to %s\n", n, c.String("out"))
					return nil
				},
			},
		},
	}
}
