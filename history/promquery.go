package history

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	jsoniter "github.com/json-iterator/go"
)

// The instant queries of every tick are sent and decoded here rather than
// through client_golang's v1 API: that decodes the envelope with
// json-iterator, then each sample again with encoding/json through
// model.Sample's own UnmarshalJSON, and it was 7% of the daemon's CPU at
// 1,000 policies. Here one streaming pass of json-iterator's Iterator
// reads only what the source uses: the result type, each sample's value
// and its batch label.

// instantAnswer is an instant query's result as the source reads it.
type instantAnswer struct {
	// resultType is Prometheus' name for the result: "vector", "scalar",
	// or a type the source does not plan with ("matrix", "string").
	resultType string
	// scalar is the value of a scalar result.
	scalar float64
	// samples are a vector's series, in Prometheus' order.
	samples []instantSample
}

// instantSample is one series of a vector: its value and the batchLabel
// a joined query tagged it with ("" when not joined).
type instantSample struct {
	part string
	v    float64
}

// decodeInstant reads an instant query's answer: the body and HTTP status
// Prometheus sent. Errors read as client_golang's do ("bad_data: ...").
func decodeInstant(status int, body []byte) (instantAnswer, []string, error) {
	if status/100 != 2 && status != http.StatusBadRequest && status != http.StatusUnprocessableEntity {
		// Prometheus answers its own errors with 400 or 422 and a body;
		// anything else is a proxy or a server in trouble.
		kind := "bad response code"
		switch status / 100 {
		case 4:
			kind = "client error:"
		case 5:
			kind = "server error:"
		}
		err := fmt.Errorf("%s %d", kind, status)
		if status/100 == 5 {
			err = unavailableError{err}
		}
		return instantAnswer{}, nil, err
	}
	it := jsoniter.ParseBytes(jsoniter.ConfigDefault, body)
	var (
		ans                        instantAnswer
		state, errorType, errorMsg string
		warnings                   []string
		result                     []byte // only when it came before its type
	)
	for f := it.ReadObject(); f != ""; f = it.ReadObject() {
		switch f {
		case "status":
			state = it.ReadString()
		case "errorType":
			errorType = it.ReadString()
		case "error":
			errorMsg = it.ReadString()
		case "warnings":
			for it.ReadArray() {
				warnings = append(warnings, it.ReadString())
			}
		case "data":
			for g := it.ReadObject(); g != ""; g = it.ReadObject() {
				switch {
				case g == "resultType":
					ans.resultType = it.ReadString()
				case g == "result" && ans.resultType != "":
					if err := readResult(it, &ans); err != nil {
						// The iterator stopped inside the result.
						return instantAnswer{}, warnings, fmt.Errorf("bad_response: %s: %w", ans.resultType, err)
					}
				case g == "result":
					result = it.SkipAndReturnBytes()
				default:
					it.Skip()
				}
			}
		default:
			it.Skip()
		}
	}
	if it.Error != nil && !errors.Is(it.Error, io.EOF) {
		return instantAnswer{}, warnings, fmt.Errorf("bad_response: %w", it.Error)
	}
	switch {
	case state == "error" && errorType == "unavailable":
		return instantAnswer{}, warnings, unavailableError{fmt.Errorf("%s: %s", errorType, errorMsg)}
	case state == "error":
		return instantAnswer{}, warnings, fmt.Errorf("%s: %s", errorType, errorMsg)
	case state != "success" || status/100 != 2:
		return instantAnswer{}, warnings, fmt.Errorf("bad_response: status %q with response code %d", state, status)
	}
	if result != nil {
		rit := jsoniter.ParseBytes(jsoniter.ConfigDefault, result)
		err := readResult(rit, &ans)
		if err == nil && rit.Error != nil && !errors.Is(rit.Error, io.EOF) {
			err = rit.Error
		}
		if err != nil {
			return instantAnswer{}, warnings, fmt.Errorf("bad_response: %s: %w", ans.resultType, err)
		}
	}
	return ans, warnings, nil
}

// readResult reads the result of ans.resultType at the iterator; a type
// the source does not read is skipped.
func readResult(it *jsoniter.Iterator, ans *instantAnswer) error {
	switch ans.resultType {
	case "vector":
		ans.samples = []instantSample{}
		for it.ReadArray() {
			var s instantSample
			for f := it.ReadObject(); f != ""; f = it.ReadObject() {
				switch f {
				case "metric":
					for l := it.ReadObject(); l != ""; l = it.ReadObject() {
						if l == batchLabel {
							s.part = it.ReadString()
						} else {
							it.Skip()
						}
					}
				case "value":
					v, err := readPoint(it)
					if err != nil {
						return err
					}
					s.v = v
				default:
					it.Skip()
				}
			}
			ans.samples = append(ans.samples, s)
		}
	case "scalar":
		v, err := readPoint(it)
		if err != nil {
			return err
		}
		ans.scalar = v
	default:
		it.Skip()
	}
	return it.Error
}

// readPoint reads the value of a [<unix seconds>, "<value>"] pair.
// Prometheus writes NaN and ±Inf as "NaN", "+Inf", "-Inf", which
// ParseFloat reads (finite refuses them later, as before).
func readPoint(it *jsoniter.Iterator) (float64, error) {
	if it.WhatIsNext() != jsoniter.ArrayValue || !it.ReadArray() {
		it.Skip()
		return 0, errors.New("sample is not a [time, value] pair")
	}
	it.Skip() // the time: an instant query's is the query's
	if !it.ReadArray() {
		return 0, errors.New("sample is not a [time, value] pair")
	}
	if it.WhatIsNext() != jsoniter.StringValue {
		return 0, errors.New("sample value is not a quoted number")
	}
	f, err := strconv.ParseFloat(string(it.ReadStringAsSlice()), 64)
	if err != nil {
		return 0, fmt.Errorf("sample value: %w", err)
	}
	if it.ReadArray() {
		return 0, errors.New("sample has more than a time and a value")
	}
	return f, it.Error
}

// instant sends one instant query at at (POST, or GET where POST is not
// allowed, as client_golang does) and decodes the answer.
func (p *Prometheus) instant(ctx context.Context, q string, at time.Time) (instantAnswer, []string, error) {
	// The time as client_golang writes it.
	ts := strconv.FormatFloat(float64(at.Unix())+float64(at.Nanosecond())/1e9, 'f', -1, 64)
	args := url.Values{"query": {q}, "time": {ts}}
	u := p.client.URL("/api/v1/query", nil)
	req, err := http.NewRequest(http.MethodPost, u.String(), strings.NewReader(args.Encode()))
	if err != nil {
		return instantAnswer{}, nil, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	// A POST of a query is idempotent: let the transport retry it on a
	// dropped keep-alive connection (the header is not sent).
	req.Header["Idempotency-Key"] = nil
	resp, body, err := p.client.Do(ctx, req)
	if err != nil {
		return instantAnswer{}, nil, unavailableError{err}
	}
	if resp.StatusCode == http.StatusMethodNotAllowed || resp.StatusCode == http.StatusNotImplemented {
		u.RawQuery = args.Encode()
		if req, err = http.NewRequest(http.MethodGet, u.String(), nil); err != nil {
			return instantAnswer{}, nil, fmt.Errorf("build request: %w", err)
		}
		if resp, body, err = p.client.Do(ctx, req); err != nil {
			return instantAnswer{}, nil, unavailableError{err}
		}
	}
	return decodeInstant(resp.StatusCode, body)
}

// errUnavailable is what unavailableError matches: an answer that says
// nothing about the query sent (no connection, a server error, a
// Prometheus that says it is unavailable).
var errUnavailable = errors.New("prometheus unavailable")

// unavailableError keeps the error's own message; errors.Is matches it to
// errUnavailable.
type unavailableError struct{ err error }

func (e unavailableError) Error() string      { return e.err.Error() }
func (e unavailableError) Unwrap() error      { return e.err }
func (unavailableError) Is(target error) bool { return target == errUnavailable }
