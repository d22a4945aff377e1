package nodepool

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
)

func benchTypes() []CapacityType {
	var types []CapacityType
	for i, s := range []struct {
		cpu, mem int64
		price    float64
	}{{2000, 4096, 0.05}, {4000, 8192, 0.096}, {8000, 16384, 0.192}, {8000, 8192, 0.17}, {16000, 32768, 0.384}, {4000, 32768, 0.25}} {
		types = append(types, CapacityType{InstanceType: InstanceType{Name: fmt.Sprint("t", i),
			Resources: Resources{CPUMHz: s.cpu, MemoryMiB: s.mem}, Price: s.price, SpotPrice: s.price * 0.35},
			Provides: []int64{s.cpu, s.mem}, Available: -1})
	}
	return types
}

func BenchmarkChooseCapacity(b *testing.B) {
	p := CapacityProblem{Dims: []string{"cpu_mhz", "memory_mib"}, Need: []int64{123000, 310000}, Types: benchTypes(), MaxNodes: 100, SpotMaxShare: 0.5}
	for _, c := range []struct {
		name string
		ch   Chooser
	}{{"greedy", GreedyChooser{}}, {"highs", NewMIPChooser(nil)}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := c.ch.Choose(context.Background(), p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkPlanBlocked(b *testing.B) {
	r := rand.New(rand.NewPCG(7, 8))
	var queued []QueuedGroup
	for g := range 20 {
		queued = append(queued, QueuedGroup{Job: "j", Group: fmt.Sprint(g), Count: 1 + r.IntN(20),
			Resources: Resources{CPUMHz: int64(100 + r.IntN(4000)), MemoryMiB: int64(128 + r.IntN(8000))}, Reason: ReasonCPU})
	}
	in := BlockedInput{Queued: queued, Types: benchTypes(), MaxNodes: -1, SpotMaxShare: 0.5}
	for _, c := range []struct {
		name string
		ch   Chooser
	}{{"greedy", GreedyChooser{}}, {"highs", NewMIPChooser(nil)}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := PlanBlocked(context.Background(), c.ch, in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkSelectDrains(b *testing.B) {
	p := DrainPolicy{MaxFraction: 0.1, Idle: IdlePolicy{Periods: 5}}
	nodes, state := idlePool(1000, testTime, p.Idle)
	for b.Loop() {
		SelectDrains(DrainInput{Nodes: nodes, Idle: state, Policy: p})
	}
}
