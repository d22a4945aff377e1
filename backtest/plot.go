package backtest

import (
	"fmt"
	"image/color"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// maxPlotPoints bounds the points of each line; longer replays are shown
// as bucket means, enough for a picture and cheap to render.
const maxPlotPoints = 4000

// palette tells the strategies apart in a plot.
var palette = []color.Color{
	color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
	color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff},
	color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
}

// WritePlot draws demand and each result's serving capacity (serving
// replicas times capacity) over time into a PNG at path.
func WritePlot(path, title string, demand []float64, results []Result, capacity float64) error {
	p := plot.New()
	p.Title.Text = title
	p.Y.Label.Text = "requests/s"
	hours := len(demand) > 4*3600
	if hours {
		p.X.Label.Text = "hours"
	} else {
		p.X.Label.Text = "seconds"
	}
	p.Legend.Top = true
	p.Add(plotter.NewGrid())

	bucket := max(1, (len(demand)+maxPlotPoints-1)/maxPlotPoints)
	line := func(value func(t int) float64) plotter.XYs {
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

	d, err := plotter.NewLine(line(func(t int) float64 { return demand[t] }))
	if err != nil {
		return fmt.Errorf("plot demand: %w", err)
	}
	d.Color = color.Gray{Y: 0x40}
	d.FillColor = color.Gray{Y: 0xd8}
	p.Add(d)
	p.Legend.Add("demand", d)
	for i, res := range results {
		serving := res.Serving
		l, err := plotter.NewLine(line(func(t int) float64 { return float64(serving[t]) * capacity }))
		if err != nil {
			return fmt.Errorf("plot %s: %w", res.Strategy, err)
		}
		l.Color = palette[i%len(palette)]
		l.Width = vg.Points(1)
		p.Add(l)
		p.Legend.Add(res.Strategy+" capacity", l)
	}
	if err := p.Save(40*vg.Centimeter, 15*vg.Centimeter, path); err != nil {
		return fmt.Errorf("save plot: %w", err)
	}
	return nil
}
