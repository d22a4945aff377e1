package main

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/nomadscalerd/nomadscalerd/model"
)

// modelCommand groups the forecasting-model subcommands.
func modelCommand() *cli.Command {
	return &cli.Command{
		Name:        "model",
		Usage:       "fit and inspect SARIMAX forecasting models",
		Subcommands: []*cli.Command{modelFitCommand(), modelLsCommand(), modelShowCommand(), modelPlotCommand()},
	}
}

func modelFitCommand() *cli.Command {
	return &cli.Command{
		Name:  "fit",
		Usage: "fit candidate SARIMAX orders to a CSV history, pick one by AIC and forecast",
		Description: "HISTORY.csv has a header; column y is the series, every other column an exog\n" +
			"regressor. FUTURE.csv holds the same exog columns for the forecast steps; without\n" +
			"it the last history row is held. --json prints the schema of\n" +
			"sarimax_reference.py so the two can be compared field by field.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "input", Aliases: []string{"i"}, Required: true, Usage: "history CSV (column y plus exog columns)"},
			&cli.StringFlag{Name: "future", Usage: "future exog CSV (same exog columns)"},
			&cli.IntFlag{Name: "horizon", Usage: "forecast steps (default: rows of --future, else 10)"},
			&cli.StringFlag{Name: "orders", Value: "1,1,1;1,0,1;2,1,1;1,1,0", Usage: `candidate orders "p,d,q[,P,D,Q,s];..."`},
			&cli.BoolFlag{Name: "json", Usage: "print JSON in the reference script's schema"},
		},
		Action: func(c *cli.Context) error {
			return runModelFit(c)
		},
	}
}

type fitCandidateJSON struct {
	Order         []int     `json:"order"`
	ParamNames    []string  `json:"param_names,omitempty"`
	StartParams   []float64 `json:"start_params,omitempty"`
	Params        []float64 `json:"params,omitempty"`
	LLF           float64   `json:"llf,omitempty"`
	AIC           float64   `json:"aic,omitempty"`
	NObsEffective int       `json:"nobs_effective,omitempty"`
	Converged     bool      `json:"converged"`
	Error         string    `json:"error,omitempty"`
}

type fitJSON struct {
	Versions   map[string]string  `json:"versions"`
	NObs       int                `json:"nobs"`
	Exog       []string           `json:"exog"`
	Candidates []fitCandidateJSON `json:"candidates"`
	BestOrder  []int              `json:"best_order"`
	Forecast   *model.Forecast    `json:"forecast"`
}

func runModelFit(c *cli.Context) error {
	in := c.String("input")
	hist, err := model.ReadCSVFile(in, true)
	if err != nil {
		return err
	}
	orders, err := model.ParseOrders(c.String("orders"))
	if err != nil {
		return fmt.Errorf("--orders: %w", err)
	}
	kx := len(hist.Names)
	minNeed := orders[0].MinObs(kx)
	for _, o := range orders[1:] {
		minNeed = min(minNeed, o.MinObs(kx))
	}
	if len(hist.Y) < minNeed {
		// The header is line 1, so the last data row is on line len+1.
		return fmt.Errorf("%s:%d: only %d data rows, the orders need at least %d", in, len(hist.Y)+1, len(hist.Y), minNeed)
	}
	var future [][]float64
	horizon := c.Int("horizon")
	if fp := c.String("future"); fp != "" {
		ft, err := model.ReadCSVFile(fp, false)
		if err != nil {
			return err
		}
		future, err = alignColumns(fp, hist.Names, ft)
		if err != nil {
			return err
		}
		if horizon == 0 {
			horizon = len(future)
		}
	}
	if horizon == 0 {
		horizon = 10
	}
	if horizon < 0 {
		return fmt.Errorf("--horizon must be positive, got %d", horizon)
	}
	if len(future) > horizon {
		future = future[:horizon]
	}
	exog := hist.ExogRows()
	sel, err := model.Select(c.Context, hist.Y, exog, orders, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	fc, err := sel.Best.Forecast(hist.Y, exog, future, horizon)
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	if c.Bool("json") {
		return writeFitJSON(c.App.Writer, hist, sel, fc)
	}
	return writeFitTable(c.App.Writer, hist, sel, fc, len(future) < horizon && kx > 0)
}

// alignColumns returns the future rows with columns in the history's order.
func alignColumns(path string, names []string, ft *model.Table) ([][]float64, error) {
	idx := make([]int, len(names))
	for i, n := range names {
		j := slices.Index(ft.Names, n)
		if j < 0 {
			return nil, fmt.Errorf("%s:1: missing exog column %q", path, n)
		}
		idx[i] = j
	}
	if len(ft.Names) != len(names) {
		return nil, fmt.Errorf("%s:1: columns %s, history has %s", path, strings.Join(ft.Names, ","), strings.Join(names, ","))
	}
	rows := make([][]float64, len(ft.Exog))
	for t, r := range ft.Exog {
		row := make([]float64, len(idx))
		for i, j := range idx {
			row[i] = r[j]
		}
		rows[t] = row
	}
	return rows, nil
}

func writeFitJSON(w io.Writer, hist *model.Table, sel *model.Selection, fc *model.Forecast) error {
	out := fitJSON{
		Versions:  map[string]string{"nomadscalerd": version, "go": runtime.Version()},
		NObs:      len(hist.Y),
		Exog:      append([]string{}, hist.Names...),
		BestOrder: sel.Best.Order.Ints(),
		Forecast:  fc,
	}
	for _, cand := range sel.Candidates {
		if cand.Err != nil {
			out.Candidates = append(out.Candidates, fitCandidateJSON{Order: cand.Order.Ints(), Error: cand.Err.Error()})
			continue
		}
		r := cand.Result
		out.Candidates = append(out.Candidates, fitCandidateJSON{
			Order: r.Order.Ints(), ParamNames: r.ParamNames, StartParams: r.StartParams, Params: r.Params,
			LLF: r.LLF, AIC: r.AIC, NObsEffective: r.NObsEffective, Converged: r.Converged,
		})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	return enc.Encode(out)
}

func writeFitTable(w io.Writer, hist *model.Table, sel *model.Selection, fc *model.Forecast, held bool) error {
	exog := "none"
	if len(hist.Names) > 0 {
		exog = strings.Join(hist.Names, ", ")
	}
	fmt.Fprintf(w, "observations: %d   exog: %s\n\n", len(hist.Y), exog)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "order\t\tllf\taic\tconverged\tfit time\tparams")
	for _, cand := range sel.Candidates {
		if cand.Err != nil {
			fmt.Fprintf(tw, "%s\t\t-\t-\t-\t-\tfailed: %v\n", cand.Order, cand.Err)
			continue
		}
		r := cand.Result
		mark := ""
		if r == sel.Best {
			mark = "*"
		}
		ps := make([]string, len(r.Params))
		for i, p := range r.Params {
			name := r.ParamNames[i]
			if i < len(hist.Names) {
				name = hist.Names[i]
			}
			ps[i] = fmt.Sprintf("%s=%.6g", name, p)
		}
		fmt.Fprintf(tw, "%s\t%s\t%.4f\t%.4f\t%v\t%s\t%s\n", r.Order, mark, r.LLF, r.AIC, r.Converged, r.FitDuration.Round(100_000), strings.Join(ps, " "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	note := ""
	if held {
		note = " (exog beyond the future file holds the last known row)"
	}
	fmt.Fprintf(w, "\nforecast with %s%s\n", sel.Best.Order, note)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "step\tmean\tvariance\tlower95\tupper95\t")
	for h := range fc.Mean {
		fmt.Fprintf(tw, "%d\t%.4f\t%.4f\t%.4f\t%.4f\t\n", h+1, fc.Mean[h], fc.Variance[h], fc.Lower95[h], fc.Upper95[h])
	}
	return tw.Flush()
}
