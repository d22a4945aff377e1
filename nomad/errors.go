package nomad

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/nomadscalerd/nomadscalerd/reconciler"
)

// Classify marks a Nomad API error with the reconciler's typed error it
// is (ErrActiveDeployment, ErrNotFound, ErrRateLimited, ErrUnavailable),
// keeping the original text; other errors come back unchanged. This is the
// one place Nomad's responses are interpreted.
func Classify(err error) error {
	if err == nil {
		return nil
	}
	var kind error
	var resp nomadapi.UnexpectedResponseError
	switch {
	case errors.As(err, &resp):
		switch code := resp.StatusCode(); {
		case code == 400 && isActiveDeployment(err):
			kind = reconciler.ErrActiveDeployment
		case code == 404:
			kind = reconciler.ErrNotFound
		case code == 429:
			kind = reconciler.ErrRateLimited
		case code >= 500:
			kind = reconciler.ErrUnavailable
		}
	case isConnectionError(err):
		kind = reconciler.ErrUnavailable
	}
	if kind == nil {
		return err
	}
	return fmt.Errorf("%w: %w", kind, err)
}

// isConnectionError reports a request that never got an answer: refused,
// reset, or a network error (Nomad's client wraps them as it pleases, so
// the chain is searched for the cause).
func isConnectionError(err error) bool {
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) {
		return true
	}
	var op *net.OpError
	return errors.As(err, &op)
}

// isActiveDeployment recognises Nomad's refusal to scale a group while a
// deployment of its job runs: a 400 whose body says so (the API has no
// code of its own for it).
func isActiveDeployment(err error) bool {
	var e nomadapi.UnexpectedResponseError
	if !errors.As(err, &e) || e.StatusCode() != 400 {
		return false
	}
	return strings.Contains(e.Body(), "active deployment") || strings.Contains(e.Error(), "active deployment")
}
