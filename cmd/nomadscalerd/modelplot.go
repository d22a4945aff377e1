package main

import (
	"errors"
	"fmt"
	"image/color"
	"time"

	"github.com/urfave/cli/v2"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/nomadscalerd/nomadscalerd/backtest"
	"github.com/nomadscalerd/nomadscalerd/history"
	"github.com/nomadscalerd/nomadscalerd/model"
	"github.com/nomadscalerd/nomadscalerd/optimize"
	"github.com/nomadscalerd/nomadscalerd/store"
)

// modelPlotCommand is "model plot": a picture of a fit, for people. It is a
// subcommand of the model command.
func modelPlotCommand() *cli.Command {
	return &cli.Command{
		Name:      "plot",
		Usage:     "fit a history, forecast it and plan replicas, and draw all three into a PNG",
		ArgsUsage: " ",
		Description: "Reads HISTORY.csv (column y and any exogenous columns, one row a second), fits the\n" +
			"candidate orders and keeps the lowest AIC, forecasts the rows of FUTURE.csv (or --steps\n" +
			"rows), plans replicas for the forecast mean with the optimizer, and draws the history,\n" +
			"the forecast with its 95% band, and below it on its own axis the planned replicas.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "input", Usage: "history CSV with a y column"},
			&cli.StringFlag{Name: "policy", Usage: "instead of --input: a policy (namespace/job/group) whose recorded history --db holds"},
			&cli.StringFlag{Name: "metric", Value: "requests", Usage: "with --policy: the check to plot"},
			&cli.DurationFlag{Name: "since", Value: time.Hour, Usage: "with --policy: how much history to read"},
			&cli.StringFlag{Name: "future", Usage: "future exogenous rows CSV (its rows set the forecast length)"},
			&cli.StringFlag{Name: "out", Required: true, Usage: "PNG to write"},
			&cli.IntFlag{Name: "steps", Value: 300, Usage: "rows to forecast when there is no --future"},
			&cli.StringFlag{Name: "orders", Usage: "candidate orders p,d,q[,P,D,Q,s] separated by ; (default: the model's)"},
			&cli.Float64Flag{Name: "capacity-per-replica", Value: optimize.DefaultCapacityPerReplica, Usage: "load one replica serves"},
			&cli.IntFlag{Name: "startup-delay", Value: 0, Usage: "seconds from requesting a replica to its serving"},
			&cli.IntFlag{Name: "min", Value: 1, Usage: "fewest replicas"},
			&cli.IntFlag{Name: "max", Value: 100, Usage: "most replicas"},
		},
		Action: runModelPlot,
	}
}

func runModelPlot(c *cli.Context) error {
	hist, err := plotHistory(c)
	if err != nil {
		return err
	}
	exog := hist.ExogRows()
	steps := c.Int("steps")
	var future [][]float64
	if path := c.String("future"); path != "" {
		ft, err := model.ReadCSVFile(path, false)
		if err != nil {
			return err
		}
		// By name, as `model fit` reads them: not in the file's order.
		if future, err = alignColumns(path, hist.Names, ft); err != nil {
			return err
		}
		if !c.IsSet("steps") {
			steps = len(ft.Exog)
		}
	}
	if steps < 1 {
		return fmt.Errorf("--steps %d: must be positive", steps)
	}
	var orders []model.Order
	if s := c.String("orders"); s != "" {
		if orders, err = model.ParseOrders(s); err != nil {
			return fmt.Errorf("--orders: %w", err)
		}
	}
	sel, err := model.Select(c.Context, hist.Y, exog, orders, nil)
	if err != nil {
		return fmt.Errorf("fit: %w", err)
	}
	fc, err := sel.Best.Forecast(hist.Y, exog, future, steps)
	if err != nil {
		return fmt.Errorf("forecast: %w", err)
	}

	// The daemon's planner, handed the forecast just made.
	p := optimize.DefaultProblem()
	p.CapacityPerReplica = c.Float64("capacity-per-replica")
	p.StartupDelay = c.Int("startup-delay")
	p.MinReplicas, p.MaxReplicas = c.Int("min"), c.Int("max")
	p.CurrentReplicas = min(max(p.MinReplicas, ceilDiv(hist.Y[len(hist.Y)-1], p.CapacityPerReplica)), p.MaxReplicas)
	planner := optimize.NewPlanner(optimize.FixedForecaster(fc.Mean), optimize.DPSolver{}, nil, nil)
	plan, err := planner.Plan(c.Context, optimize.PlanRequest{
		History: optimize.History{Requests: hist.Y}, Problem: p, Horizon: steps, Start: time.Now(),
	})
	if err != nil {
		return err
	}

	title := fmt.Sprintf("%s: SARIMAX(%s), AIC %.1f", c.String("input"), sel.Best.Order, sel.Best.AIC)
	if err := drawModelPlot(c.String("out"), title, hist.Y, fc, plan); err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "order %s aic %.2f; forecast %d steps; plan %d replicas at the first step, peak %d; wrote %s\n",
		sel.Best.Order, sel.Best.AIC, steps, plan.Desired[0], maxInt(plan.Desired), c.String("out"))
	return nil
}

func ceilDiv(v, d float64) int {
	n := int(v / d)
	if float64(n)*d < v {
		n++
	}
	return n
}

func maxInt(v []int) int {
	m := 0
	for _, x := range v {
		m = max(m, x)
	}
	return m
}

// drawModelPlot stacks the history and forecast (top) over the planned
// replicas (bottom), on a shared time axis. History older than four
// forecast lengths is left out so the forecast stays readable.
func drawModelPlot(path, title string, y []float64, fc *model.Forecast, plan optimize.Plan) error {
	n, steps := len(y), len(fc.Mean)
	from := max(0, n-4*steps)

	top := plot.New()
	top.Title.Text = title
	top.Y.Label.Text = "requests/s"
	top.Add(plotter.NewGrid())
	hist := make(plotter.XYs, 0, n-from)
	for t := from; t < n; t++ {
		hist = append(hist, plotter.XY{X: float64(t - n), Y: y[t]})
	}
	mean := make(plotter.XYs, steps)
	band := make(plotter.XYs, 0, 2*steps)
	for h := 0; h < steps; h++ {
		mean[h] = plotter.XY{X: float64(h), Y: fc.Mean[h]}
		band = append(band, plotter.XY{X: float64(h), Y: fc.Upper95[h]})
	}
	for h := steps - 1; h >= 0; h-- {
		band = append(band, plotter.XY{X: float64(h), Y: fc.Lower95[h]})
	}
	poly, err := plotter.NewPolygon(band)
	if err != nil {
		return fmt.Errorf("plot band: %w", err)
	}
	poly.Color = color.NRGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0x40}
	poly.LineStyle.Width = 0
	hl, err := plotter.NewLine(hist)
	if err != nil {
		return fmt.Errorf("plot history: %w", err)
	}
	hl.Color = color.Gray{Y: 0x30}
	ml, err := plotter.NewLine(mean)
	if err != nil {
		return fmt.Errorf("plot forecast: %w", err)
	}
	ml.Color = color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}
	ml.Width = vg.Points(1.5)
	top.Add(poly, hl, ml)
	top.Legend.Top = true
	top.Legend.Left = true
	top.Legend.Add("history", hl)
	top.Legend.Add("forecast", ml)
	top.Legend.Add("95% band", poly)

	bottom := plot.New()
	bottom.Y.Label.Text = "replicas"
	bottom.X.Label.Text = "seconds from now"
	bottom.Add(plotter.NewGrid())
	desired := make(plotter.XYs, len(plan.Desired))
	for t, v := range plan.Desired {
		desired[t] = plotter.XY{X: float64(t), Y: float64(v)}
	}
	dl, err := plotter.NewLine(desired)
	if err != nil {
		return fmt.Errorf("plot plan: %w", err)
	}
	dl.StepStyle = plotter.PreStep
	dl.Color = color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}
	dl.Width = vg.Points(1.5)
	bottom.Add(dl)
	bottom.Legend.Top = true
	bottom.Legend.Left = true
	bottom.Legend.Add("planned replicas", dl)
	bottom.Y.Min = 0
	// Share the time axis.
	bottom.X.Min, bottom.X.Max = float64(from-n), float64(steps)
	top.X.Min, top.X.Max = bottom.X.Min, bottom.X.Max

	return backtest.SavePanels(path, [][]*plot.Plot{{top}, {bottom}}, 30*vg.Centimeter, 9*vg.Centimeter)
}

// plotHistory reads the history to plot: a CSV, or a policy's recorded
// series from the database, one value a second.
func plotHistory(c *cli.Context) (*model.Table, error) {
	switch {
	case c.String("policy") != "" && c.String("input") != "":
		return nil, fmt.Errorf("give --input or --policy, not both")
	case c.String("input") != "":
		return model.ReadCSVFile(c.String("input"), true)
	case c.String("policy") == "":
		return nil, fmt.Errorf("give --input HISTORY.csv or --policy NS/JOB/GROUP")
	}
	db, done, err := openForInspection(c.String("db"), c.App.ErrWriter)
	if err != nil {
		return nil, err
	}
	defer done()
	series := store.SeriesName(c.String("policy"), c.String("metric"))
	data, err := history.Load(db, []string{series}, time.Now().Add(-c.Duration("since")), time.Time{})
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("no history recorded for %s (see `nomadscalerd history ls`)", series)
	}
	if err != nil {
		return nil, err
	}
	_, cols := history.Align(data, time.Second)
	if len(cols[series]) == 0 {
		return nil, fmt.Errorf("no history recorded for %s in the last %s", series, c.Duration("since"))
	}
	return &model.Table{Y: cols[series]}, nil
}
