package history

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestAnInstantAnswerIsReadAsPrometheusWritesItWithItsBatchLabels(t *testing.T) {
	body := `{"status":"success","data":{"resultType":"vector","result":[` +
		`{"metric":{"nomadscalerd_q":"1","job":"web"},"value":[1700000000.5,"42.25"]},` +
		`{"metric":{"nomadscalerd_q":"0"},"value":[1700000000.5,"-3e2"]},` +
		`{"metric":{},"value":[1700000000,"NaN"]}]},"warnings":["w1"]}`
	ans, warnings, err := decodeInstant(http.StatusOK, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if ans.resultType != "vector" || len(ans.samples) != 3 || len(warnings) != 1 {
		t.Fatalf("answer %+v, warnings %v; want a vector of 3 and one warning", ans, warnings)
	}
	if s := ans.samples; s[0] != (instantSample{part: "1", v: 42.25}) || s[1] != (instantSample{part: "0", v: -300}) || s[2].part != "" || !math.IsNaN(s[2].v) {
		t.Errorf("samples %+v, want 1:42.25, 0:-300 and an unlabelled NaN", s)
	}
	if _, err := vectorValue(ans.samples[2:]); err == nil {
		t.Error("a NaN sample was taken as a value")
	}

	ans, _, err = decodeInstant(http.StatusOK, []byte(`{"status":"success","data":{"resultType":"scalar","result":[1700000000,"+Inf"]}}`))
	if err != nil || ans.resultType != "scalar" || !math.IsInf(ans.scalar, 1) {
		t.Errorf("scalar +Inf: %+v, %v", ans, err)
	}
	ans, _, err = decodeInstant(http.StatusOK, []byte(`{"status":"success","data":{"resultType":"vector","result":[]}}`))
	if _, verr := promValue(ans); err != nil || !errors.Is(verr, ErrNoData) {
		t.Errorf("empty vector: %v, %v; want ErrNoData", err, verr)
	}
	ans, _, err = decodeInstant(http.StatusOK, []byte(`{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"1"]]}]}}`))
	if _, verr := promValue(ans); err != nil || verr == nil || !strings.Contains(verr.Error(), "matrix is not supported") {
		t.Errorf("matrix: %v, %v; want it refused by type", err, verr)
	}
}

func TestAnInstantQueryPrometheusRefusesOrCannotAnswerIsAnErrorNamingWhy(t *testing.T) {
	for _, c := range []struct {
		name   string
		status int
		body   string
		want   string
	}{
		{"a bad query", http.StatusBadRequest, `{"status":"error","errorType":"bad_data","error":"parse error: unexpected end of input"}`, "bad_data: parse error"},
		{"a failed evaluation", http.StatusUnprocessableEntity, `{"status":"error","errorType":"execution","error":"vector cannot contain metrics with the same labelset"}`, "execution: vector cannot"},
		{"a proxy's 502", http.StatusBadGateway, `<html>bad gateway</html>`, "server error: 502"},
		{"a truncated body", http.StatusOK, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{}`, "bad_response"},
		{"a value that is no pair", http.StatusOK, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":"1"}]}}`, "not a [time, value] pair"},
		{"an unquoted value", http.StatusOK, `{"status":"success","data":{"resultType":"scalar","result":[1, 2]}}`, "not a quoted number"},
	} {
		if _, _, err := decodeInstant(c.status, []byte(c.body)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want one containing %q", c.name, err, c.want)
		}
	}
}

// BenchmarkPrometheusInstantQueryOf50JoinedSamples is one joined request of
// a tick (DefaultPromBatchSize queries) against a fake Prometheus that
// answers a fixed body: client_golang's v1 API against the source's own
// decoding.
func BenchmarkPrometheusInstantQueryOf50JoinedSamples(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(`{"status":"success","data":{"resultType":"vector","result":[`)
	for i := range DefaultPromBatchSize {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"metric":{"nomadscalerd_q":"%d"},"value":[1764620000.123,"%d.5"]}`, i, i)
	}
	sb.WriteString(`]}}`)
	body := sb.String()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(body))
	}))
	defer srv.Close()
	p, err := NewPrometheus(srv.URL, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	ctx, at := context.Background(), time.Unix(1764620000, 0)
	b.Run("client_golang", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := p.api.Query(ctx, "q", at); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("instant", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if ans, _, err := p.instant(ctx, "q", at); err != nil || len(ans.samples) != DefaultPromBatchSize {
				b.Fatal(ans, err)
			}
		}
	})
	b.Run("decode_only", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := decodeInstant(http.StatusOK, []byte(body)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestAResultBeforeItsTypeIsReadAllTheSame(t *testing.T) {
	ans, _, err := decodeInstant(http.StatusOK, []byte(`{"data":{"result":[{"value":[1,"7"],"metric":{"nomadscalerd_q":"3"}}],"resultType":"vector"},"status":"success"}`))
	if err != nil || len(ans.samples) != 1 || ans.samples[0] != (instantSample{part: "3", v: 7}) {
		t.Fatalf("answer %+v, %v; want one sample 3:7", ans, err)
	}
}
