package backtest

import (
	"context"
	"math"
)

// MeanOracle knows the demand's local level but not its noise: every
// second it keeps enough replicas for the mean plus Z standard deviations
// of the true demand over the Window seconds centred on each second from
// now until a replica asked for now would serve. No forecaster of the rate
// can do better than knowing it, so the gap between this strategy and the
// Oracle is the cost of the noise no forecast can see.
type MeanOracle struct {
	cfg      Config
	mean, sd []float64
	z        float64
}

// NewMeanOracle precomputes the centred window means and deviations of
// demand.
func NewMeanOracle(cfg Config, demand []float64, window int, z float64) (*MeanOracle, error) {
	mean, err := Demand(demand, 0, 0, 1, window)
	if err != nil {
		return nil, err
	}
	sq := make([]float64, len(demand))
	for i, d := range demand {
		sq[i] = (d - mean[i]) * (d - mean[i])
	}
	variance, err := Demand(sq, 0, 0, 1, window)
	if err != nil {
		return nil, err
	}
	sd := make([]float64, len(variance))
	for i, v := range variance {
		sd[i] = math.Sqrt(v)
	}
	return &MeanOracle{cfg: cfg, mean: mean, sd: sd, z: z}, nil
}

// Name implements Strategy.
func (*MeanOracle) Name() string { return "mean-oracle" }

// Decide implements Strategy.
func (m *MeanOracle) Decide(_ context.Context, obs Observation) (Decision, error) {
	// A replica asked for now serves StartupDelay seconds on, but one
	// removed now stops serving at once: keep what every second until then
	// needs.
	need := 0.0
	for t := obs.Now; t <= min(obs.Now+m.cfg.StartupDelay, len(m.mean)-1); t++ {
		need = max(need, m.mean[t]+m.z*m.sd[t])
	}
	return Decision{Desired: int(math.Ceil(need / m.cfg.Capacity)), Evaluated: true}, nil
}
