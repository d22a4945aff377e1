package backtest

import "fmt"

// StrategyNames are the strategies NewStrategy builds, in report order.
var StrategyNames = []string{"predictive", "target-value", "hpa", "oracle"}

// NewStrategy builds a fresh strategy by name for a replay of demand
// under cfg. Only the oracle reads demand; the others see the past through
// their Observations.
func NewStrategy(name string, cfg Config, demand []float64) (Strategy, error) {
	switch name {
	case "target-value":
		return NewTargetValue(cfg.Capacity), nil
	case "hpa":
		return NewHPA(cfg.Capacity, cfg.Min, cfg.Max), nil
	case "oracle":
		return NewOracle(cfg, demand, nil), nil
	}
	return nil, fmt.Errorf("unknown strategy %q (known: %v)", name, StrategyNames)
}
