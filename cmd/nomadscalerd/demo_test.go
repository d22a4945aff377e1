package main

import (
	"testing"
	"time"
)

func TestStepPatternIsHighOnlyInsideItsWindowOfEachCycle(t *testing.T) {
	p := loadPattern{Kind: "step", Low: 10, High: 60, Period: 60 * time.Second, HighFor: 20 * time.Second, HighAt: 40 * time.Second}
	base := time.Unix(6000, 0) // a multiple of the period
	for _, tc := range []struct {
		offset time.Duration
		want   float64
	}{{0, 10}, {39 * time.Second, 10}, {40 * time.Second, 60}, {59 * time.Second, 60}, {60 * time.Second, 10}, {100 * time.Second, 60}} {
		if got := p.Rate(base.Add(tc.offset)); got != tc.want {
			t.Errorf("rate at +%s = %v, want %v", tc.offset, got, tc.want)
		}
	}
}

func TestDayPatternPeaksAtMiddayAndBurstsOnce(t *testing.T) {
	p := loadPattern{Kind: "day", Low: 10, High: 100, Period: 100 * time.Second}
	base := time.Unix(10000, 0)
	if r := p.Rate(base); r != 10 {
		t.Errorf("midnight rate %v, want the low 10", r)
	}
	if r := p.Rate(base.Add(50 * time.Second)); r != 100 {
		t.Errorf("midday rate %v, want the high 100", r)
	}
	if burst, before := p.Rate(base.Add(71*time.Second)), p.Rate(base.Add(69*time.Second)); burst < before+50 {
		t.Errorf("burst %v not well above %v", burst, before)
	}
}
