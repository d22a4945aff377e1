// Command gen-golden writes the seeded synthetic series under
// model/testdata/golden/ and the statsmodels reference fits for them.
//
//	go run ./scripts/gen-golden [-out model/testdata/golden] [-ref /work/shared/tools/sarimax_reference.py]
//
// Each case NAME gets NAME.csv (column y plus exog columns), NAME_future.csv
// (future exog rows, when there is exog), NAME.json, the output of the
// reference script run with /usr/bin/python3, and NAME.polished.json,
// statsmodels' own fit restarted to a tight optimum by polish.py (its
// default fit often stops early). Series are ARIMA errors around
// a regression on exog, with trend, level shifts, bursts, near-unit-root and
// count-like variants, 60 to 3600 points long.
package main

import (
	"flag"
	"fmt"
	"log"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

type gcase struct {
	name    string
	n       int
	horizon int
	nexog   int
	p, d, q int
	phi     float64
	theta   float64
	sigma   float64
	trend   float64 // added to y per step (outside the exog)
	shift   bool    // level shift at 60% of the series
	bursts  bool    // occasional bursts of large shocks
	counts  bool    // y rounded to non-negative counts
	scale   float64 // level of the series
}

var exogNames = []string{"avg_response_time", "authentication_awaiting_users", "queue_waiting", "avg_processing_time"}

func cases() []gcase {
	return []gcase{
		{name: "arma11_n60", n: 60, horizon: 10, nexog: 1, p: 1, q: 1, phi: 0.6, theta: 0.3, sigma: 1, scale: 10},
		{name: "arima111_n80", n: 80, horizon: 12, nexog: 2, p: 1, d: 1, q: 1, phi: 0.4, theta: -0.3, sigma: 1, scale: 50},
		{name: "ar1_noexog_n100", n: 100, horizon: 10, p: 1, phi: 0.7, sigma: 2, scale: 0},
		{name: "arima011_noexog_n150", n: 150, horizon: 15, d: 1, q: 1, theta: 0.5, sigma: 1, scale: 100},
		{name: "arima211_n200", n: 200, horizon: 20, nexog: 1, p: 2, d: 1, q: 1, phi: 0.5, theta: 0.2, sigma: 0.5, scale: 20},
		{name: "trend_n240", n: 240, horizon: 24, nexog: 2, p: 1, d: 1, phi: 0.3, sigma: 1, trend: 0.2, scale: 30},
		{name: "levelshift_n300", n: 300, horizon: 30, nexog: 2, p: 1, q: 1, phi: 0.5, theta: 0.4, sigma: 1, shift: true, scale: 40},
		{name: "bursts_n360", n: 360, horizon: 30, nexog: 4, p: 1, d: 1, q: 1, phi: 0.3, theta: -0.2, sigma: 1, bursts: true, scale: 60},
		{name: "nearunit_n400", n: 400, horizon: 20, nexog: 1, p: 1, q: 1, phi: 0.985, theta: 0.2, sigma: 1, scale: 25},
		{name: "counts_n420", n: 420, horizon: 30, nexog: 2, p: 1, q: 1, phi: 0.6, theta: 0.1, sigma: 2, counts: true, scale: 15},
		{name: "arma11_noexog_n480", n: 480, horizon: 24, p: 1, q: 1, phi: -0.4, theta: 0.5, sigma: 3, scale: 0},
		{name: "arima111_n540", n: 540, horizon: 36, nexog: 3, p: 1, d: 1, q: 1, phi: 0.7, theta: -0.5, sigma: 0.2, scale: 5},
		{name: "trend_bursts_n600", n: 600, horizon: 60, nexog: 4, p: 2, d: 1, q: 1, phi: 0.4, theta: 0.3, sigma: 1, trend: 0.05, bursts: true, scale: 100},
		{name: "smallscale_n720", n: 720, horizon: 30, nexog: 2, p: 1, q: 1, phi: 0.8, theta: 0.2, sigma: 0.01, scale: 0.5},
		{name: "bigscale_n900", n: 900, horizon: 30, nexog: 2, p: 1, d: 1, q: 1, phi: 0.2, theta: 0.4, sigma: 500, scale: 1e5},
		{name: "counts_shift_n1000", n: 1000, horizon: 60, nexog: 4, p: 1, d: 1, q: 1, phi: 0.5, theta: -0.6, sigma: 1.5, counts: true, shift: true, scale: 20},
		{name: "nearunit_noexog_n1200", n: 1200, horizon: 30, p: 1, q: 1, phi: 0.995, theta: -0.3, sigma: 1, scale: 10},
		{name: "ar1_n1500", n: 1500, horizon: 60, nexog: 3, p: 1, phi: 0.5, sigma: 1, scale: 30},
		{name: "arima110_n1800", n: 1800, horizon: 60, nexog: 2, p: 1, d: 1, phi: 0.6, sigma: 1, scale: 40},
		{name: "levelshift_bursts_n2400", n: 2400, horizon: 60, nexog: 4, p: 1, q: 1, phi: 0.9, theta: 0.3, sigma: 1, shift: true, bursts: true, scale: 50},
		{name: "trend_n3000", n: 3000, horizon: 60, nexog: 1, p: 2, d: 1, q: 1, phi: 0.3, theta: 0.5, sigma: 1, trend: 0.01, scale: 10},
		{name: "bench_n3600", n: 3600, horizon: 60, nexog: 4, p: 1, d: 1, q: 1, phi: 0.5, theta: -0.3, sigma: 1, scale: 100},
	}
}

func main() {
	out := flag.String("out", "model/testdata/golden", "output directory")
	ref := flag.String("ref", "/work/shared/tools/sarimax_reference.py", "statsmodels reference script")
	polish := flag.String("polish", "scripts/gen-golden/polish.py", "script refining statsmodels' fit to a tight optimum")
	only := flag.String("only", "", "generate only this case")
	noRef := flag.Bool("no-ref", false, "write the CSV files only")
	flag.Parse()
	if err := os.MkdirAll(*out, 0o755); err != nil {
		log.Fatal(err)
	}
	for i, c := range cases() {
		if *only != "" && c.name != *only {
			continue
		}
		rng := rand.New(rand.NewPCG(20261123, uint64(i)))
		hist, future := generate(rng, c)
		histPath := filepath.Join(*out, c.name+".csv")
		if err := os.WriteFile(histPath, []byte(hist), 0o644); err != nil {
			log.Fatal(err)
		}
		args := []string{*ref, histPath}
		if c.nexog > 0 {
			fp := filepath.Join(*out, c.name+"_future.csv")
			if err := os.WriteFile(fp, []byte(future), 0o644); err != nil {
				log.Fatal(err)
			}
			args = append(args, fp)
		}
		args = append(args, "--horizon", strconv.Itoa(c.horizon))
		if *noRef {
			continue
		}
		cmd := exec.Command("/usr/bin/python3", args...)
		cmd.Stderr = os.Stderr
		js, err := cmd.Output()
		if err != nil {
			log.Fatalf("%s: reference: %v", c.name, err)
		}
		if err := os.WriteFile(filepath.Join(*out, c.name+".json"), js, 0o644); err != nil {
			log.Fatal(err)
		}
		pargs := append([]string{*polish, filepath.Join(*out, c.name+".json")}, args[1:]...)
		cmd = exec.Command("/usr/bin/python3", pargs...)
		js, err = cmd.Output()
		if err != nil {
			log.Fatalf("%s: polish: %v", c.name, err)
		}
		if err := os.WriteFile(filepath.Join(*out, c.name+".polished.json"), js, 0o644); err != nil {
			log.Fatal(err)
		}
		fmt.Println("wrote", c.name)
	}
}

// generate returns the history CSV and the future exog CSV.
func generate(rng *rand.Rand, c gcase) (string, string) {
	total := c.n + c.horizon
	names := exogNames[:c.nexog]
	x := make([][]float64, total)
	state := make([]float64, c.nexog)
	for t := range x {
		row := make([]float64, c.nexog)
		for j := range row {
			// Each regressor is a positive, persistent series with its own
			// daily-ish cycle, at a different scale.
			state[j] = 0.8*state[j] + rng.NormFloat64()
			cyc := math.Sin(2 * math.Pi * float64(t) / float64(24+7*j))
			switch j {
			case 0:
				row[j] = round(0.2+0.02*cyc+0.01*state[j], 6)
			case 1:
				row[j] = math.Max(0, math.Round(20+8*cyc+3*state[j]))
			case 2:
				row[j] = math.Max(0, math.Round(5+3*cyc+2*state[j]))
			case 3:
				row[j] = round(1.5+0.3*cyc+0.1*state[j], 6)
			}
		}
		x[t] = row
	}
	beta := []float64{40, 0.3, 0.8, -2}
	// ARMA(p,q) shocks, integrated d times.
	u := make([]float64, total)
	e := make([]float64, total)
	var prev1, prev2 float64
	phi2 := 0.0
	if c.p == 2 {
		phi2 = -0.2
	}
	for t := range u {
		s := c.sigma
		if c.bursts && rng.Float64() < 0.02 {
			s *= 6
		}
		e[t] = s * rng.NormFloat64()
		w := c.phi*prev1 + phi2*prev2 + e[t]
		if t > 0 {
			w += c.theta * e[t-1]
		}
		if c.p == 0 {
			w = e[t]
			if t > 0 {
				w += c.theta * e[t-1]
			}
		}
		prev2, prev1 = prev1, w
		u[t] = w
	}
	for k := 0; k < c.d; k++ {
		for t := 1; t < total; t++ {
			u[t] += u[t-1]
		}
	}
	var hist, fut strings.Builder
	header := append([]string{"y"}, names...)
	hist.WriteString(strings.Join(header, ",") + "\n")
	if c.nexog > 0 {
		fut.WriteString(strings.Join(names, ",") + "\n")
	}
	for t := 0; t < total; t++ {
		if t >= c.n {
			if c.nexog > 0 {
				fut.WriteString(joinRow(x[t]) + "\n")
			}
			continue
		}
		y := c.scale + u[t] + c.trend*float64(t)
		for j := 0; j < c.nexog; j++ {
			y += beta[j] * x[t][j]
		}
		if c.shift && t >= c.n*6/10 {
			y += 8 * c.sigma
		}
		if c.counts {
			y = math.Max(0, math.Round(y))
		} else {
			y = round(y, 6)
		}
		hist.WriteString(strconv.FormatFloat(y, 'g', -1, 64))
		if c.nexog > 0 {
			hist.WriteString("," + joinRow(x[t]))
		}
		hist.WriteString("\n")
	}
	return hist.String(), fut.String()
}

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

func joinRow(r []float64) string {
	s := make([]string, len(r))
	for i, v := range r {
		s[i] = strconv.FormatFloat(v, 'g', -1, 64)
	}
	return strings.Join(s, ",")
}
