package nodepool

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/nomadscalerd/nomadscalerd/migrations"
	"github.com/nomadscalerd/nomadscalerd/store"
)

// StoreState keeps the pools' journal, idle counters and last decisions in
// the daemon's bbolt store: node actions go into the one journal scale
// actions use (their kind prefixed "nodepool_", the Entry in its data), so
// a crash is settled the same way for both.
type StoreState struct{ DB *store.DB }

var (
	_ Journal          = StoreState{}
	_ IdleStore        = StoreState{}
	_ DecisionRecorder = StoreState{}
)

// Keys of the pools' state in the store's state bucket.
const (
	journalKindPrefix = "nodepool_"
	idleKeyPrefix     = "nodepool_idle/"
	decisionKeyPrefix = "nodepool_decision/"
)

// Append implements Journal.
func (s StoreState) Append(_ context.Context, e Entry) error {
	data, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode nodepool entry: %w", err)
	}
	state := store.StateIntent // every non-final phase is still open work
	switch e.Phase {
	case PhaseDone:
		state = store.StateDone
	case PhaseFailed:
		state = store.StateFailed
	}
	target := "nodepool/" + e.Pool
	if e.NodeID != "" {
		target += "/" + e.NodeID
	}
	_, err = s.DB.Append(store.JournalEntry{Time: e.At, ActionID: e.ID, Kind: journalKindPrefix + string(e.Kind),
		State: state, Target: target, Reason: e.Reason, Data: data})
	return err
}

// Pending implements Journal from the journal's open actions.
func (s StoreState) Pending(context.Context) ([]Entry, error) {
	open, err := s.DB.OpenActions()
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, je := range open {
		if !strings.HasPrefix(je.Kind, journalKindPrefix) {
			continue
		}
		var e Entry
		if err := json.Unmarshal(je.Data, &e); err != nil {
			return nil, fmt.Errorf("decode nodepool entry %s: %w", je.ActionID, err)
		}
		out = append(out, e)
	}
	return out, nil
}

// LoadIdle implements IdleStore.
func (s StoreState) LoadIdle(_ context.Context, pool string) (IdleState, error) {
	var st IdleState
	err := s.DB.GetJSON(migrations.BucketState, idleKeyPrefix+pool, &st)
	if errors.Is(err, store.ErrNotFound) {
		return IdleState{}, nil
	}
	return st, err
}

// SaveIdle implements IdleStore.
func (s StoreState) SaveIdle(_ context.Context, pool string, st IdleState) error {
	return s.DB.PutJSON(migrations.BucketState, idleKeyPrefix+pool, st)
}

// RecordDecision implements DecisionRecorder: each pool's latest decision
// is kept for `nodes status`.
func (s StoreState) RecordDecision(_ context.Context, d Decision) error {
	return s.DB.PutJSON(migrations.BucketState, decisionKeyPrefix+d.Pool, d)
}

// LastDecision is the pool's latest recorded decision; ok is false when
// none was recorded.
func (s StoreState) LastDecision(pool string) (d Decision, ok bool, err error) {
	switch err := s.DB.GetJSON(migrations.BucketState, decisionKeyPrefix+pool, &d); {
	case err == nil:
		return d, true, nil
	case errors.Is(err, store.ErrNotFound):
		return Decision{}, false, nil
	default:
		return Decision{}, false, fmt.Errorf("read last decision of pool %s: %w", pool, err)
	}
}

// KnownPools are the pools the store holds idle counters or a decision of,
// sorted.
func (s StoreState) KnownPools() ([]string, error) {
	keys, err := s.DB.Keys(migrations.BucketState)
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	var names []string
	for _, k := range keys {
		if n, ok := strings.CutPrefix(k, idleKeyPrefix); ok {
			names = append(names, n)
		}
		if n, ok := strings.CutPrefix(k, decisionKeyPrefix); ok {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}
