package optimize

import (
	"errors"

	"github.com/nomadscalerd/nomadscalerd/forecast"
)

// ErrNoHistory means there is nothing recorded to forecast from: the API
// answers it with 404.
var ErrNoHistory = errors.New("no history")

// ErrInvalidRequest means a request the planner cannot answer as asked
// (a field it needs is missing): the API answers it with 400.
var ErrInvalidRequest = errors.New("invalid request")

// ErrShortHistory is forecast.ErrShortHistory: history, but too little to
// fit a model yet.
var ErrShortHistory = forecast.ErrShortHistory
