// Package model owns demand forecasting: SARIMAX models with exogenous
// regressors, fitted by maximum likelihood, the order chosen by AIC, and
// forecasts with 95% intervals. Python statsmodels'
// SARIMAX(..., enforce_stationarity=False, enforce_invertibility=False) is
// the reference; the golden tests hold this package to it.
//
// # Model
//
// y[t] = x[t]'beta + u[t], where u follows ARIMA(p,d,q)(P,D,Q,s): a
// regression in levels with ARIMA errors (statsmodels' mle_regression), no
// trend term. The state-space form is statsmodels' (Harvey representation
// with the differencing kept in the state vector), initialised
// approximately diffuse with variance 1e6, and the first k_states
// log-likelihood terms are burned, as statsmodels does. AIC is
// -2 llf + 2 k, k counting AR, MA, seasonal, exog and variance parameters.
//
// # Fitting
//
// Starting values are statsmodels': OLS of the differenced series on the
// differenced exog, then conditional sum of squares for the ARMA part (a
// warm start from a previous fit replaces them). gonum's L-BFGS minimises
// -llf/nobs. Because the Kalman gains do not depend on the data, the exog
// coefficients are concentrated out exactly: each evaluation filters y and
// every exog column once and solves a small weighted least squares, so the
// optimiser only searches the ARMA parameters and log sigma2. Gradients are
// central differences on a single filtered column y - X*beta (by the
// envelope theorem that is the concentrated gradient). The best point seen
// is kept when a line search fails, and after such a failure L-BFGS
// restarts from it until a restart gains nothing. A candidate that fails to
// fit is skipped. The fit goes to the optimum: statsmodels' default fit (50
// iterations, forward differences) often stops short of it, so this
// package's log-likelihood is equal or higher; against statsmodels' own fit
// restarted to convergence the golden tests hold AIC within 1e-3.
//
// Parameters are laid out and named as statsmodels does for array input:
// x1..xk for the exog coefficients, then ar.L*, ma.L*, ar.S.L*, ma.S.L*,
// sigma2. Record.ExogNames maps x1..xk back to column names.
//
// # Seasonality at second resolution
//
// A seasonal state of period 86,400 is infeasible (the state vector would
// have 86,400 entries). Daily and weekly patterns enter instead as Fourier
// regressors: K sine/cosine pairs per period (e.g. 86400 and 604800 s),
// computed from absolute unix time so they continue into the future
// (Fourier, AppendFourier). SelectFourier picks K by AIC jointly with the
// order, as for the orders themselves.
//
// Fourier terms draw a cycle's smooth shape; a step or a burst at the same
// time of each cycle takes dozens of pairs. Once the history holds a cycle
// plus MinSteps steps, the Forecaster also regresses each step on the step
// one cycle earlier (ForecastConfig.Seasons), which draws it at once: a
// seasonal-naive forecast whose weight the fit estimates.
//
// # Forecasts
//
// Result.Forecast gives the mean, the variance of the mean prediction and
// the normal 95% interval for each future step, given future exog rows.
// When future exog is unknown (or shorter than the horizon) the last known
// row is held: the naive forecast of the regressors.
//
// # Headroom
//
// What a plan asks for is more than the forecast mean. The Forecaster adds
// the scatter of single seconds around their step's mean (NoiseMargin,
// capped by NoiseCap) and either Margin standard deviations of the
// forecast or, with BurstQuantile, a quantile of how far the last hour's
// bursts rose above the minute before them (burstScratch.headroom): headroom
// measured on the traffic, wide where it bursts and narrow where its
// seconds only scatter.
//
// # Demand and persistence
//
// Demand applies the seed formula (requests * avg_response_time * 0.05 +
// queue_waiting * 0.1 + authentication_awaiting_users * 0.2, weights
// configurable) to forecast requests. Record is the JSON form a store keeps;
// Record.Stale tells the reconciler when to refit and Record.WarmStart feeds
// the stored parameters back into Select.
package model
