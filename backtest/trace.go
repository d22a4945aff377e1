package backtest

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"
)

// ErrTraceFormat is returned for a trace that is neither one count a line
// nor timed rows (TIME,COUNT), or that mixes the two.
var ErrTraceFormat = errors.New("not a request-count trace")

// ReadTraceFile reads a request-rate trace from path; see ReadTrace.
func ReadTraceFile(path string) ([]float64, error) {
	out, _, err := ReadTraceFileInfo(path)
	return out, err
}

// ReadTraceFileInfo is ReadTraceFile that also says how timed rows were
// laid onto seconds (nil for a trace of one count a line).
func ReadTraceFileInfo(path string) ([]float64, *RowsInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("open trace: %w", err)
	}
	defer f.Close()
	return ReadTraceInfo(f)
}

// ReadTrace reads a trace in either of two forms, told apart by its first
// line that is not a header:
//   - one non-negative number a line: the requests in that second;
//   - timed rows, TIME,COUNT (comma, semicolon, tab or space separated;
//     see ParseRowTime for the times): each row counts the requests of
//     the step to the next row's time, and is laid onto seconds (see
//     timedRows.PerSecond).
//
// One header line is skipped. The input may be gzip-compressed: it is
// detected by its magic bytes, not by a file name, so a renamed file still
// reads. Blank lines are skipped; any other line that does not read is an
// error naming it.
func ReadTrace(r io.Reader) ([]float64, error) {
	out, _, err := ReadTraceInfo(r)
	return out, err
}

// ReadTraceInfo is ReadTrace that also says how timed rows were laid onto
// seconds (nil for a trace of one count a line).
func ReadTraceInfo(r io.Reader) ([]float64, *RowsInfo, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	magic, err := br.Peek(2)
	if err != nil && err != io.EOF {
		return nil, nil, fmt.Errorf("read trace: %w", err)
	}
	var src io.Reader = br
	if len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, fmt.Errorf("open gzip trace: %w", err)
		}
		defer zr.Close()
		src = zr
	}
	sc := bufio.NewScanner(src)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	var (
		out  []float64
		rows *timedRows
		line int
		// header: the first line may be one; decided: the form is known.
		header, decided = true, false
	)
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if s == "" {
			continue
		}
		if !decided {
			if header && isHeader(s) {
				header = false
				continue
			}
			decided = true
			if _, _, ok := splitRow(s); ok {
				rows = &timedRows{}
			}
		}
		if rows != nil {
			if err := rows.Add(s); err != nil {
				return nil, nil, fmt.Errorf("trace line %d: %w (a trace of timed rows is TIME,COUNT throughout): %w", line, err, ErrTraceFormat)
			}
			continue
		}
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			if _, _, ok := splitRow(s); ok {
				return nil, nil, fmt.Errorf("trace line %d: %q: the lines before held one count each, this one several fields: %w", line, s, ErrTraceFormat)
			}
			return nil, nil, fmt.Errorf("trace line %d: %w", line, err)
		}
		if v < 0 || v != v || math.IsInf(v, 0) {
			return nil, nil, fmt.Errorf("trace line %d: %q is not a non-negative number", line, s)
		}
		out = append(out, v)
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("read trace: %w", err)
	}
	if rows == nil {
		return out, nil, nil
	}
	perSecond, info, err := rows.PerSecond()
	if err != nil {
		return nil, nil, fmt.Errorf("trace: %w", err)
	}
	return perSecond, &info, nil
}

// Demand turns a raw trace into the demand the simulator replays: seconds
// [start, start+duration) of the trace, each the scale times the mean of the
// trace over the window seconds centred on it. Smoothing reads trace seconds
// outside the replayed range when they exist, so a window does not shrink at
// the edges of the replay, only at the edges of the trace. duration <= 0
// means to the end of the trace.
func Demand(trace []float64, start, duration int, scale float64, window int) ([]float64, error) {
	if start < 0 || start >= len(trace) {
		return nil, fmt.Errorf("start %d outside the trace of %d seconds", start, len(trace))
	}
	if window < 1 {
		return nil, fmt.Errorf("rate window %d: must be at least 1 second", window)
	}
	end := len(trace)
	if duration > 0 && start+duration < end {
		end = start + duration
	}
	// Prefix sums make every window O(1).
	prefix := make([]float64, len(trace)+1)
	for i, v := range trace {
		prefix[i+1] = prefix[i] + v
	}
	out := make([]float64, end-start)
	half := window / 2
	for t := start; t < end; t++ {
		lo := max(t-half, 0)
		hi := min(t-half+window, len(trace))
		out[t-start] = scale * (prefix[hi] - prefix[lo]) / float64(hi-lo)
	}
	return out, nil
}

// ParseSeconds reads a length of time as whole seconds: a plain number of
// seconds ("86400"), a Go duration ("36h", "90m"), or days with a "d"
// suffix, optionally followed by a Go duration ("7d", "1d12h").
func ParseSeconds(s string) (int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("empty duration")
	}
	if n, err := strconv.Atoi(s); err == nil {
		if n < 0 {
			return 0, fmt.Errorf("duration %q is negative", s)
		}
		return n, nil
	}
	var total time.Duration
	rest := s
	if i := strings.IndexByte(rest, 'd'); i > 0 {
		days, err := strconv.ParseFloat(rest[:i], 64)
		if err != nil {
			return 0, fmt.Errorf("duration %q: %w", s, err)
		}
		total = time.Duration(days * float64(24*time.Hour))
		rest = rest[i+1:]
	}
	if rest != "" {
		d, err := time.ParseDuration(rest)
		if err != nil {
			return 0, fmt.Errorf("duration %q: %w", s, err)
		}
		total += d
	}
	if total < 0 {
		return 0, fmt.Errorf("duration %q is negative", s)
	}
	return int(total / time.Second), nil
}
