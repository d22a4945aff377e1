// Package forecast owns the types a demand forecast is handed over in,
// between the model that makes it (package model) and the planner that
// plans for it (package optimize), so neither imports the other.
package forecast

import (
	"context"
	"errors"
)

// History is what a forecast is made from: the request series, one value
// per second, oldest first, and optional exogenous rows. Exog[i] belongs to
// second i of Requests; rows past len(Requests) describe the forecast
// horizon (known future covariates) for forecasters that use them.
//
// Lead is how many seconds a plan made now must hold what it sees: until
// a replica it asks for serves and the next plan can act (the startup
// delay plus the re-plan interval); 0 leaves it to the forecaster.
type History struct {
	Requests []float64
	Exog     [][]float64
	Lead     int
}

// Forecaster predicts the next steps values of the request series.
type Forecaster interface {
	Forecast(ctx context.Context, h History, steps int) ([]float64, error)
}

// Band is a forecast with its uncertainty, per second: Plan is what to plan
// for (the mean plus a margin), Lower and Upper the band outside which
// observed demand means the forecast is wrong.
//
// Burst is the headroom for bursts Plan holds above the forecast mean, in
// the series' units, when the forecaster measured it on the history (0
// otherwise): what an operator reads to see why a plan runs above the
// forecast.
type Band struct {
	Plan, Lower, Upper []float64
	Burst              float64
}

// BandForecaster is a Forecaster that also gives the band; a planner
// stores it in the plan, so the plan's server can tell when demand leaves
// it.
type BandForecaster interface {
	Forecaster
	ForecastBand(ctx context.Context, h History, steps int) (Band, error)
}

// ErrShortHistory means there is history, but too little to fit a model
// yet: every new policy starts so, and its floor scales it meanwhile, so it
// is not an error worth logging as one.
var ErrShortHistory = errors.New("history too short to forecast")
