package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/nomadscalerd/nomadscalerd/migrations"
	"github.com/nomadscalerd/nomadscalerd/model"
	"github.com/nomadscalerd/nomadscalerd/reconciler"
	"github.com/nomadscalerd/nomadscalerd/store"
)

// storedFits reads every model record in the fits bucket, by policy key.
func storedFits(path string, stderr io.Writer) (map[string]model.Record, []string, error) {
	db, done, err := openForInspection(path, stderr)
	if err != nil {
		return nil, nil, err
	}
	defer done()
	return readFits(db)
}

func readFits(db *store.DB) (map[string]model.Record, []string, error) {
	keys, err := db.Keys(migrations.BucketFits)
	if err != nil {
		return nil, nil, err
	}
	out := make(map[string]model.Record, len(keys))
	for _, k := range keys {
		var r model.Record
		if err := db.GetJSON(migrations.BucketFits, k, &r); err != nil {
			return nil, nil, err
		}
		out[k] = r
	}
	return out, keys, nil
}

// readTuning reads a policy's self-tuning result, if it has one.
func readTuning(db *store.DB, key string) (reconciler.Tuning, bool, error) {
	var t reconciler.Tuning
	err := db.GetJSON(migrations.BucketState, reconciler.TuningKey(key), &t)
	if errors.Is(err, store.ErrNotFound) {
		return t, false, nil
	}
	return t, err == nil, err
}

func modelLsCommand() *cli.Command {
	return &cli.Command{
		Name:  "ls",
		Usage: "list the model fits stored per policy",
		Flags: []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print JSON"}},
		Action: func(c *cli.Context) error {
			fits, keys, err := storedFits(c.String("db"), c.App.ErrWriter)
			if err != nil {
				return err
			}
			if c.Bool("json") {
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				return enc.Encode(fits)
			}
			tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "POLICY\tORDER\tAIC\tLLF\tNOBS\tWINDOW\tTRAINED\tFIT TIME")
			for _, k := range keys {
				r := fits[k]
				// The window as its length: a fit reads up to days of
				// history, and its ends as times of day read as a window
				// running backwards ("13:20:00..12:00:00" for 10,000
				// one-minute steps). It ends when the fit was trained.
				fmt.Fprintf(tw, "%s\t%s\t%.3f\t%.3f\t%d\t%s\t%s\t%s\n", k, r.Order, r.AIC, r.LLF, r.NObs,
					r.Window.To.Sub(r.Window.From), r.TrainedAt.Format(time.RFC3339), r.FitDuration.Round(time.Microsecond))
			}
			return tw.Flush()
		},
	}
}

func modelShowCommand() *cli.Command {
	return &cli.Command{
		Name:      "show",
		Usage:     "show one policy's stored model fit",
		ArgsUsage: "POLICY",
		Flags:     []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print JSON"}},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return fmt.Errorf("model show: want one POLICY (namespace/job/group), see `model ls`")
			}
			db, done, err := openForInspection(c.String("db"), c.App.ErrWriter)
			if err != nil {
				return err
			}
			defer done()
			fits, _, err := readFits(db)
			if err != nil {
				return err
			}
			r, ok := fits[c.Args().First()]
			if !ok {
				return fmt.Errorf("model show: no fit stored for %q", c.Args().First())
			}
			tuning, tuned, err := readTuning(db, c.Args().First())
			if err != nil {
				return err
			}
			if c.Bool("json") {
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				out := struct {
					model.Record
					Tuning *reconciler.Tuning `json:"tuning,omitempty"`
				}{Record: r}
				if tuned {
					out.Tuning = &tuning
				}
				return enc.Encode(out)
			}
			w := c.App.Writer
			fmt.Fprintf(w, "policy    %s\norder     %s\naic       %.6f\nllf       %.6f\nnobs      %d (effective %d)\nconverged %v\nwindow    %s .. %s\ntrained   %s in %s\n",
				c.Args().First(), r.Order, r.AIC, r.LLF, r.NObs, r.NObsEffective, r.Converged,
				r.Window.From.Format(time.RFC3339), r.Window.To.Format(time.RFC3339), r.TrainedAt.Format(time.RFC3339), r.FitDuration)
			if tuned {
				fmt.Fprintf(w, "tuned     forecast_margin %g, model_step %s: cost %.0f against the policy's own %.0f, unmet requests %.0f against %.0f, over %s of its history (%d candidates, %s)\n",
					tuning.ForecastMargin, tuning.ModelStep, tuning.Cost, tuning.PolicyCost, tuning.Unmet, tuning.PolicyUnmet, time.Duration(tuning.Seconds)*time.Second, tuning.Candidates, tuning.At.Format(time.RFC3339))
			}
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "PARAM\tVALUE")
			for i, n := range r.ParamNames {
				if i < len(r.Params) {
					fmt.Fprintf(tw, "%s\t%.8g\n", n, r.Params[i])
				}
			}
			return tw.Flush()
		},
	}
}
