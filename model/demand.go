package model

// Names of the exogenous variables the scaler records and forecasts with.
const (
	ExogAvgResponseTime             = "avg_response_time"
	ExogAuthenticationAwaitingUsers = "authentication_awaiting_users"
	ExogQueueWaiting                = "queue_waiting"
	ExogAvgProcessingTime           = "avg_processing_time"
)

// ExogNames lists the four exogenous variables in their canonical order.
func ExogNames() []string {
	return []string{ExogAvgResponseTime, ExogAuthenticationAwaitingUsers, ExogQueueWaiting, ExogAvgProcessingTime}
}

// DemandCoeffs weights the terms of the demand formula.
type DemandCoeffs struct {
	ResponseTime float64 `json:"response_time"` // multiplies requests * avg_response_time
	Queue        float64 `json:"queue"`         // multiplies queue_waiting
	AuthWaiting  float64 `json:"auth_waiting"`  // multiplies authentication_awaiting_users
}

// DefaultDemandCoeffs are the seed formula's weights.
func DefaultDemandCoeffs() DemandCoeffs {
	return DemandCoeffs{ResponseTime: 0.05, Queue: 0.1, AuthWaiting: 0.2}
}

// Demand converts forecast requests into demand:
//
//	demand[t] = requests[t]*avg_response_time[t]*c.ResponseTime
//	          + queue_waiting[t]*c.Queue
//	          + authentication_awaiting_users[t]*c.AuthWaiting
//
// A missing exog series (or a short one) counts as zero for its steps.
func Demand(requests []float64, exog map[string][]float64, c DemandCoeffs) []float64 {
	at := func(name string, t int) float64 {
		s := exog[name]
		if t < len(s) {
			return s[t]
		}
		return 0
	}
	out := make([]float64, len(requests))
	for t, r := range requests {
		out[t] = r*at(ExogAvgResponseTime, t)*c.ResponseTime +
			at(ExogQueueWaiting, t)*c.Queue +
			at(ExogAuthenticationAwaitingUsers, t)*c.AuthWaiting
	}
	return out
}
