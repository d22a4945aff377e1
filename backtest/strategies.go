package backtest

import (
	"fmt"
	"log/slog"
	"strings"
)

// StrategyNames are the strategies a backtest compares by default, in
// report order. NewStrategy also builds "mean-oracle", a reference that
// knows the demand's local mean (see MeanOracle).
var StrategyNames = []string{"predictive", "target-value", "hpa", "oracle"}

// Replay is what a backtest replays: Demand, one value per second from
// second Start of the trace, and Prior, the demand of the seconds just
// before it (the history a running daemon would have recorded).
type Replay struct {
	Demand []float64
	Prior  []float64
	Start  int
}

// NewReplay cuts a replay out of a raw trace (see Demand) with up to prior
// seconds of history before it.
func NewReplay(trace []float64, start, duration int, scale float64, window, prior int) (Replay, error) {
	d, err := Demand(trace, start, duration, scale, window)
	if err != nil {
		return Replay{}, err
	}
	r := Replay{Demand: d, Start: start}
	if from := max(start-prior, 0); from < start {
		if r.Prior, err = Demand(trace, from, start-from, scale, window); err != nil {
			return Replay{}, err
		}
	}
	return r, nil
}

// NewStrategy builds a fresh strategy by name for replay under cfg, the
// predictive one with pcfg. Only the oracle reads the replay's demand; the
// others see the past through their Observations (and the predictive one
// the replay's prior history).
func NewStrategy(name string, cfg Config, pcfg PredictiveConfig, replay Replay, log *slog.Logger) (Strategy, error) {
	demand := replay.Demand
	switch name {
	case "predictive":
		return NewPredictive(cfg, pcfg, replay.Prior, replay.Start, log)
	case "target-value":
		tv, t := NewTargetValue(cfg.Capacity), cfg.TargetValue
		tv.Min, tv.Max = cfg.Min, cfg.Max
		if t.Target > 0 {
			tv.Target = t.Target
		}
		if t.Window > 0 {
			tv.Window = t.Window
		}
		if t.Cooldown > 0 {
			tv.Cooldown = t.Cooldown
		}
		return tv, nil
	case "hpa":
		return NewHPA(cfg.Capacity, cfg.Min, cfg.Max), nil
	case "oracle":
		return NewOracle(cfg, demand, nil), nil
	case "mean-oracle":
		// The level over five minutes: a forecast that knew it would cut
		// the NASA trace's 7-day cost to within 20% of the oracle's.
		return NewMeanOracle(cfg, demand, 300, 1)
	}
	return nil, fmt.Errorf("unknown strategy %q (known: %s and mean-oracle)", name, strings.Join(StrategyNames, ", "))
}
