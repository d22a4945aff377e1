package main

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/nomadscalerd/nomadscalerd/history"
	"github.com/nomadscalerd/nomadscalerd/store"
)

func historyCommand() *cli.Command {
	return &cli.Command{
		Name:  "history",
		Usage: "inspect and export recorded metric history (opens the database read-only)",
		Subcommands: []*cli.Command{
			{
				Name:   "ls",
				Usage:  "list recorded series with their first and last point and count",
				Flags:  []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print JSON"}},
				Action: historyLs,
			},
			{
				Name:  "show",
				Usage: "print one metric of one policy",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "policy", Required: true, Usage: "policy key <namespace>/<job>/<group>"},
					&cli.StringFlag{Name: "metric", Required: true, Usage: "metric (check) name"},
					&cli.DurationFlag{Name: "since", Value: time.Hour, Usage: "how far back"},
					&cli.BoolFlag{Name: "rollups", Usage: "print 1-minute rollups instead of raw samples"},
					&cli.BoolFlag{Name: "json", Usage: "print JSON"},
				},
				Action: historyShow,
			},
			{
				Name:  "export",
				Usage: "write a policy's metrics aligned per second as CSV for `model fit --input`",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "policy", Required: true, Usage: "policy key <namespace>/<job>/<group>"},
					&cli.StringFlag{Name: "format", Value: "csv", Usage: "output format (csv)"},
					&cli.StringFlag{Name: "y", Usage: "metric to forecast, written as column y (default: requests if recorded, else the first metric)"},
					&cli.DurationFlag{Name: "since", Value: 24 * time.Hour, Usage: "how far back"},
					&cli.DurationFlag{Name: "step", Value: time.Second, Usage: "row spacing"},
					&cli.StringFlag{Name: "out", Usage: "output file (default: standard output)"},
				},
				Action: historyExport,
			},
		},
	}
}

func openReadOnly(c *cli.Context) (*store.DB, func(), error) {
	return openForInspection(c.String("db"), c.App.ErrWriter)
}

type seriesListing struct {
	Raw     []store.SeriesInfo `json:"raw"`
	Rollups []store.SeriesInfo `json:"rollups"`
}

func historyLs(c *cli.Context) error {
	db, done, err := openReadOnly(c)
	if err != nil {
		return err
	}
	defer done()
	var l seriesListing
	if l.Raw, err = db.ListSeries(); err != nil {
		return fmt.Errorf("list series: %w", err)
	}
	if l.Rollups, err = db.ListRollups(); err != nil {
		return fmt.Errorf("list rollups: %w", err)
	}
	if c.Bool("json") {
		if l.Raw == nil {
			l.Raw = []store.SeriesInfo{}
		}
		if l.Rollups == nil {
			l.Rollups = []store.SeriesInfo{}
		}
		return writeJSON(c.App.Writer, l)
	}
	w := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "SERIES\tKIND\tFIRST\tLAST\tCOUNT")
	for _, kind := range []struct {
		name string
		list []store.SeriesInfo
	}{{"raw", l.Raw}, {"rollup", l.Rollups}} {
		for _, s := range kind.list {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\n", s.Name, kind.name,
				s.First.Format(time.RFC3339), s.Last.Format(time.RFC3339), s.Count)
		}
	}
	return w.Flush()
}

func historyShow(c *cli.Context) error {
	db, done, err := openReadOnly(c)
	if err != nil {
		return err
	}
	defer done()
	series := store.SeriesName(c.String("policy"), c.String("metric"))
	from := time.Now().Add(-c.Duration("since"))
	if c.Bool("rollups") {
		rs, err := db.RangeRollups(series, from, time.Time{})
		if err != nil {
			return fmt.Errorf("rollups of %s: %w", series, err)
		}
		if c.Bool("json") {
			return writeJSON(c.App.Writer, nonNil(rs))
		}
		w := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "TIME\tMEAN\tMIN\tMAX\tCOUNT")
		for _, r := range rs {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\n", r.T.Format(time.RFC3339), num(r.Mean), num(r.Min), num(r.Max), r.Count)
		}
		return w.Flush()
	}
	ss, err := db.Range(series, from, time.Time{})
	if err != nil {
		return fmt.Errorf("samples of %s: %w", series, err)
	}
	if c.Bool("json") {
		return writeJSON(c.App.Writer, nonNil(ss))
	}
	for _, s := range ss {
		fmt.Fprintf(c.App.Writer, "%s %s\n", s.T.Format("2006-01-02T15:04:05.000Z07:00"), num(s.V))
	}
	return nil
}

func historyExport(c *cli.Context) error {
	if f := c.String("format"); f != "csv" {
		return fmt.Errorf("--format %q: only csv is supported", f)
	}
	if c.Duration("step") <= 0 {
		return fmt.Errorf("--step must be positive")
	}
	db, done, err := openReadOnly(c)
	if err != nil {
		return err
	}
	defer done()
	policy := c.String("policy")
	all, err := db.ListSeries()
	if err != nil {
		return fmt.Errorf("list series: %w", err)
	}
	metrics := policyMetrics(all, policy)
	y, others, err := exportColumns(metrics, c.String("y"))
	if err != nil {
		return fmt.Errorf("policy %s: %w", policy, err)
	}
	names := make([]string, 0, 1+len(others))
	for _, m := range append([]string{y}, others...) {
		names = append(names, store.SeriesName(policy, m))
	}
	data, err := history.Load(db, names, time.Now().Add(-c.Duration("since")), time.Time{})
	if err != nil {
		return err
	}
	times, cols := history.Align(data, c.Duration("step"))
	ordered := make([][]float64, len(names))
	for i, n := range names {
		ordered[i] = cols[n]
	}
	header := append([]string{"y"}, others...)
	path := c.String("out")
	if path == "" {
		return writeCSV(c.App.Writer, header, len(times), ordered)
	}
	// Through a temporary file, so a failed export never leaves a truncated
	// CSV where a model fit would read it.
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	err = writeCSV(f, header, len(times), ordered)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("export: %w", err)
	}
	fmt.Fprintf(c.App.ErrWriter, "wrote %d rows (y=%s, exog: %s) to %s\n", len(times), y, strings.Join(others, ","), path)
	return nil
}

// policyMetrics lists the metrics recorded for policy, sorted: the series
// named <policy>/<metric>.
func policyMetrics(series []store.SeriesInfo, policy string) []string {
	prefix := policy + "/"
	var out []string
	for _, s := range series {
		m, ok := strings.CutPrefix(s.Name, prefix)
		if ok && m != "" && !strings.Contains(m, "/") {
			out = append(out, m)
		}
	}
	sort.Strings(out)
	return out
}

// exportColumns picks the forecast target and the exogenous columns: the
// requested y, else "requests", else the first metric.
func exportColumns(metrics []string, y string) (string, []string, error) {
	if len(metrics) == 0 {
		return "", nil, errors.New("no recorded metrics")
	}
	switch {
	case y != "":
		found := false
		for _, m := range metrics {
			found = found || m == y
		}
		if !found {
			return "", nil, fmt.Errorf("metric %q is not recorded (have %s)", y, strings.Join(metrics, ", "))
		}
	default:
		y = metrics[0]
		for _, m := range metrics {
			if m == "requests" {
				y = m
			}
		}
	}
	var others []string
	for _, m := range metrics {
		if m != y {
			others = append(others, m)
		}
	}
	return y, others, nil
}

func writeCSV(w io.Writer, header []string, rows int, cols [][]float64) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(header); err != nil {
		return err
	}
	rec := make([]string, len(cols))
	for r := 0; r < rows; r++ {
		for i, col := range cols {
			rec[i] = num(col[r])
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

func num(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
