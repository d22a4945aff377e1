package model

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// Table is a history or future file: an optional y column and named exog
// columns, one row per time step.
type Table struct {
	Y     []float64   // nil when the file has no y column
	Names []string    // exog column names in file order
	Exog  [][]float64 // rows
}

// ReadCSVFile reads a CSV with a header. When needY is set, column "y" is
// required. Every other column is an exog regressor. Errors name the file
// and line.
func ReadCSVFile(path string, needY bool) (*Table, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	t, err := ReadCSV(f, needY)
	if err != nil {
		return nil, fmt.Errorf("%s:%w", path, err)
	}
	return t, nil
}

// ReadCSV is ReadCSVFile on a reader; errors start with the line number.
func ReadCSV(r io.Reader, needY bool) (*Table, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("1: empty file, want a header")
	}
	if err != nil {
		return nil, fmt.Errorf("1: %w", err)
	}
	yCol := -1
	t := &Table{}
	var exogCols []int
	seen := map[string]bool{}
	for i, h := range header {
		h = strings.TrimSpace(h)
		if seen[h] {
			// Two columns of one name: one of them would be dropped (y) or
			// read in the other's place (a regressor matched by name in
			// the future file).
			return nil, fmt.Errorf("1: column %q appears twice in header %q", h, strings.Join(header, ","))
		}
		seen[h] = true
		if h == "y" {
			yCol = i
			continue
		}
		t.Names = append(t.Names, h)
		exogCols = append(exogCols, i)
	}
	if needY && yCol < 0 {
		return nil, fmt.Errorf("1: no column named y in header %q", strings.Join(header, ","))
	}
	if yCol >= 0 {
		t.Y = []float64{}
	}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		line, _ := cr.FieldPos(0)
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				return nil, fmt.Errorf("%d: %v", pe.Line, pe.Err)
			}
			return nil, fmt.Errorf("%d: %w", line, err)
		}
		if len(rec) != len(header) {
			return nil, fmt.Errorf("%d: %d fields, header has %d", line, len(rec), len(header))
		}
		parse := func(i int) (float64, error) {
			v, err := strconv.ParseFloat(strings.TrimSpace(rec[i]), 64)
			if err != nil || v != v || v > 1.7e308 || v < -1.7e308 {
				return 0, fmt.Errorf("%d: column %s: %q is not a finite number", line, header[i], rec[i])
			}
			return v, nil
		}
		if yCol >= 0 {
			v, err := parse(yCol)
			if err != nil {
				return nil, err
			}
			t.Y = append(t.Y, v)
		}
		row := make([]float64, len(exogCols))
		for j, c := range exogCols {
			v, err := parse(c)
			if err != nil {
				return nil, err
			}
			row[j] = v
		}
		t.Exog = append(t.Exog, row)
	}
	if len(t.Exog) == 0 {
		return nil, fmt.Errorf("%d: no data rows", 2)
	}
	return t, nil
}

// ExogRows returns the exog rows, or nil when there are no exog columns.
func (t *Table) ExogRows() [][]float64 {
	if len(t.Names) == 0 {
		return nil
	}
	return t.Exog
}
