package nomad

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/nomadscalerd/nomadscalerd/nomadtest"
	"github.com/nomadscalerd/nomadscalerd/reconciler"
)

// A stub HTTP server answers as Nomad does for each failure; the real API
// client reads the answer, so Classify sees the errors it will see in
// production.
func TestClassifyMarksNomadsFailuresWithTypedErrors(t *testing.T) {
	cases := []struct {
		name   string
		status int
		body   string
		want   error
	}{
		{"a deployment blocks the scale", 400, "job scaling blocked due to active deployment", reconciler.ErrActiveDeployment},
		{"another bad request is no typed error", 400, "invalid count", nil},
		{"the job is gone", 404, "job not found", reconciler.ErrNotFound},
		{"too many connections", 429, "Your IP is issuing too many concurrent connections", reconciler.ErrRateLimited},
		{"the server failed", 500, "rpc error: No cluster leader", reconciler.ErrUnavailable},
		{"a proxy in front is down", 503, "", reconciler.ErrUnavailable},
	}
	typed := []error{reconciler.ErrActiveDeployment, reconciler.ErrNotFound, reconciler.ErrRateLimited, reconciler.ErrUnavailable}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(c.status)
				_, _ = w.Write([]byte(c.body))
			}))
			defer srv.Close()
			api, err := nomadapi.NewClient(&nomadapi.Config{Address: srv.URL})
			if err != nil {
				t.Fatal(err)
			}
			_, _, err = api.Jobs().Info("web", nil)
			if err == nil {
				t.Fatal("the stub's failure did not reach the client")
			}
			got := Classify(err)
			for _, k := range typed {
				if errors.Is(got, k) != (k == c.want) {
					t.Fatalf("errors.Is(%v, %v) = %v, want %v", got, k, errors.Is(got, k), k == c.want)
				}
			}
			var resp nomadapi.UnexpectedResponseError
			if !errors.As(got, &resp) || resp.StatusCode() != c.status || !strings.Contains(got.Error(), err.Error()) {
				t.Fatalf("classified error %q lost the original %q", got, err)
			}
		})
	}
}

func TestClassifyMarksARefusedConnectionUnavailable(t *testing.T) {
	port := nomadtest.FreePort(t) // nothing listens there
	api, err := nomadapi.NewClient(&nomadapi.Config{Address: fmt.Sprintf("http://127.0.0.1:%d", port)})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = api.Jobs().Info("web", nil)
	if err == nil {
		t.Fatal("a request to a closed port succeeded")
	}
	if got := Classify(err); !errors.Is(got, reconciler.ErrUnavailable) {
		t.Fatalf("Classify(%v) is not ErrUnavailable", got)
	}
	if Classify(nil) != nil {
		t.Fatal("Classify(nil) is not nil")
	}
}
