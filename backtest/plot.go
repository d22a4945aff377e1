package backtest

import (
	"fmt"
	"image/color"
	"os"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// maxPlotPoints bounds the points of each line; longer replays are shown
// as bucket means, enough for a picture and cheap to render.
const maxPlotPoints = 3000

// palette tells the strategies apart in a plot.
var palette = []color.Color{
	color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
	color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff},
	color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
}

// WritePlot draws, one panel a strategy on a shared scale, the demand and
// the strategy's serving capacity (serving replicas times capacity) over
// time, into a PNG at path. Long replays are drawn as bucket means.
func WritePlot(path, title string, demand []float64, results []Result, capacity float64) error {
	if len(results) == 0 || len(demand) == 0 {
		return fmt.Errorf("plot: nothing to draw")
	}
	hours := len(demand) > 4*3600
	bucket := max(1, (len(demand)+maxPlotPoints-1)/maxPlotPoints)
	series := func(value func(t int) float64) plotter.XYs {
		var xys plotter.XYs
		for lo := 0; lo < len(demand); lo += bucket {
			hi := min(lo+bucket, len(demand))
			sum := 0.0
			for t := lo; t < hi; t++ {
				sum += value(t)
			}
			x := float64(lo+hi-1) / 2
			if hours {
				x /= 3600
			}
			xys = append(xys, plotter.XY{X: x, Y: sum / float64(hi-lo)})
		}
		return xys
	}
	demandXY := series(func(t int) float64 { return demand[t] })
	top := 0.0
	for _, p := range demandXY {
		top = max(top, p.Y)
	}
	lines := make([]plotter.XYs, len(results))
	for i, res := range results {
		serving := res.Serving
		lines[i] = series(func(t int) float64 { return float64(serving[t]) * capacity })
		for _, p := range lines[i] {
			top = max(top, p.Y)
		}
	}

	panels := make([][]*plot.Plot, len(results))
	for i, res := range results {
		p := plot.New()
		p.Title.Text = fmt.Sprintf("%s: cost %.0f, unmet %.0f requests, %d replica-seconds", res.Strategy, res.Cost, res.UnmetRequests, res.ReplicaSeconds)
		if i == 0 {
			p.Title.Text = title + "\n" + p.Title.Text
		}
		p.Y.Label.Text = "requests/s"
		p.Y.Min, p.Y.Max = 0, top*1.05
		if i == len(results)-1 {
			p.X.Label.Text = "seconds"
			if hours {
				p.X.Label.Text = "hours"
			}
		}
		p.Add(plotter.NewGrid())
		d, err := plotter.NewLine(demandXY)
		if err != nil {
			return fmt.Errorf("plot demand: %w", err)
		}
		d.Color = color.Gray{Y: 0x90}
		d.FillColor = color.Gray{Y: 0xdd}
		l, err := plotter.NewLine(lines[i])
		if err != nil {
			return fmt.Errorf("plot %s: %w", res.Strategy, err)
		}
		l.Color = palette[i%len(palette)]
		l.Width = vg.Points(0.8)
		p.Add(d, l)
		p.Legend.Top = true
		p.Legend.Add("demand", d)
		p.Legend.Add("serving capacity", l)
		panels[i] = []*plot.Plot{p}
	}
	return SavePanels(path, panels, 36*vg.Centimeter, 7*vg.Centimeter)
}

// SavePanels stacks plots (one column) into a PNG, their axes aligned.
func SavePanels(path string, panels [][]*plot.Plot, width, panelHeight vg.Length) error {
	img := vgimg.New(width, panelHeight*vg.Length(len(panels)))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: len(panels), Cols: 1, PadX: vg.Millimeter, PadY: 2 * vg.Millimeter,
		PadTop: vg.Millimeter, PadBottom: vg.Millimeter, PadLeft: vg.Millimeter, PadRight: 2 * vg.Millimeter}
	canvases := plot.Align(panels, tiles, dc)
	for i := range panels {
		panels[i][0].Draw(canvases[i][0])
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("save plot: %w", err)
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("save plot: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("save plot: %w", err)
	}
	return nil
}
