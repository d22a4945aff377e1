package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/nomadscalerd/nomadscalerd/optimize"
)

// Optimizer answers the seed's optimize request.
type Optimizer interface {
	Optimize(ctx context.Context, r optimize.Request) (optimize.Response, error)
}

// StatusProvider reports the daemon's state for GET /v1/status.
type StatusProvider interface {
	Status(ctx context.Context) any
}

// MaxConcurrentPlans is how many POST /optimize requests are planned at once.
const MaxConcurrentPlans = 4

// HandleOptimize serves POST /optimize, compatible with the seed's
// optimizer service: the token may come in the body or as a bearer header.
// At most MaxConcurrentPlans are planned at once; more are refused with
// 429, as each holds a forecast and a plan in memory.
func (s *Server) HandleOptimize(o Optimizer) {
	slots := make(chan struct{}, MaxConcurrentPlans)
	s.mux.HandleFunc("POST /optimize", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				Error(w, http.StatusBadRequest, "body is over 1 MiB")
				return
			}
			Error(w, http.StatusBadRequest, "read body: "+err.Error())
			return
		}
		if !s.TokenOK(BearerToken(r)) {
			// The seed's clients send the token in the body; read only it, so
			// nothing else of an unauthenticated request is interpreted.
			var t struct {
				Token string `json:"token"`
			}
			if json.Unmarshal(body, &t) != nil || t.Token == "" || !s.TokenOK(t.Token) {
				Error(w, http.StatusUnauthorized, "missing or wrong token")
				return
			}
		}
		req, err := optimize.DecodeRequest(bytes.NewReader(body))
		if err != nil {
			Error(w, http.StatusBadRequest, err.Error())
			return
		}
		if err := req.Validate(); err != nil {
			Error(w, http.StatusBadRequest, err.Error())
			return
		}
		select {
		case slots <- struct{}{}:
			defer func() { <-slots }()
		default:
			w.Header().Set("Retry-After", "1")
			Error(w, http.StatusTooManyRequests, fmt.Sprintf("more than %d optimize requests at once; retry", MaxConcurrentPlans))
			return
		}
		res, err := o.Optimize(r.Context(), req)
		switch {
		case errors.Is(err, optimize.ErrInvalidRequest):
			Error(w, http.StatusBadRequest, err.Error())
		case errors.Is(err, optimize.ErrNoHistory):
			Error(w, http.StatusNotFound, err.Error())
		case errors.Is(err, optimize.ErrShortHistory):
			// Every new policy starts so: not a failure of the service, and
			// a client (the nomadscaler plugin) asks again.
			w.Header().Set("Retry-After", "10")
			Error(w, http.StatusServiceUnavailable, err.Error())
		case err != nil:
			s.deps.Logger.Error("optimize request failed", "err", err)
			Error(w, http.StatusInternalServerError, err.Error())
		default:
			JSON(w, http.StatusOK, res)
		}
	})
}

// HandleStatus serves the authenticated GET /v1/status.
func (s *Server) HandleStatus(p StatusProvider) {
	s.Handle("GET /v1/status", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		JSON(w, http.StatusOK, p.Status(r.Context()))
	}))
}

// StatusFunc adapts a function to StatusProvider.
type StatusFunc func(ctx context.Context) any

// Status calls f.
func (f StatusFunc) Status(ctx context.Context) any { return f(ctx) }

// Snapshotter writes a consistent copy of the database.
type Snapshotter interface {
	Backup(w io.Writer) (int64, error)
}

// HandleSnapshot serves the authenticated GET /v1/db/snapshot: the bbolt
// file from one read transaction, so inspection commands can read a
// database a running daemon holds locked.
func (s *Server) HandleSnapshot(db Snapshotter) {
	s.Handle("GET /v1/db/snapshot", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		if _, err := db.Backup(w); err != nil {
			s.deps.Logger.Error("database snapshot failed", "err", err)
		}
	}))
}
