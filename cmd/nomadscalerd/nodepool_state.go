package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/nomadscalerd/nomadscalerd/migrations"
	"github.com/nomadscalerd/nomadscalerd/nodepool"
	"github.com/nomadscalerd/nomadscalerd/store"
)

// nodepoolKindPrefix marks journal entries of the node pool controller;
// the nodepool.Entry itself travels in Data.
const nodepoolKindPrefix = "nodepool_"

// nodepoolState adapts the bbolt store to nodepool.Journal and
// nodepool.IdleStore.
type nodepoolState struct{ db *store.DB }

func (s nodepoolState) Append(_ context.Context, e nodepool.Entry) error {
	data, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode nodepool entry: %w", err)
	}
	state := store.StateIntent // every non-final phase is still open work
	switch e.Phase {
	case nodepool.PhaseDone:
		state = store.StateDone
	case nodepool.PhaseFailed:
		state = store.StateFailed
	}
	target := "nodepool/" + e.Pool
	if e.NodeID != "" {
		target += "/" + e.NodeID
	}
	_, err = s.db.Append(store.JournalEntry{Time: e.At, ActionID: e.ID, Kind: nodepoolKindPrefix + string(e.Kind),
		State: state, Target: target, Reason: e.Reason, Data: data})
	return err
}

func (s nodepoolState) Pending(context.Context) ([]nodepool.Entry, error) {
	open, err := s.db.OpenActions()
	if err != nil {
		return nil, err
	}
	var out []nodepool.Entry
	for _, je := range open {
		if !strings.HasPrefix(je.Kind, nodepoolKindPrefix) {
			continue
		}
		var e nodepool.Entry
		if err := json.Unmarshal(je.Data, &e); err != nil {
			return nil, fmt.Errorf("decode nodepool entry %s: %w", je.ActionID, err)
		}
		out = append(out, e)
	}
	return out, nil
}

func (s nodepoolState) LoadIdle(_ context.Context, pool string) (nodepool.IdleState, error) {
	var st nodepool.IdleState
	err := s.db.GetJSON(migrations.BucketState, "nodepool_idle/"+pool, &st)
	if errors.Is(err, store.ErrNotFound) {
		return nodepool.IdleState{}, nil
	}
	return st, err
}

func (s nodepoolState) SaveIdle(_ context.Context, pool string, st nodepool.IdleState) error {
	return s.db.PutJSON(migrations.BucketState, "nodepool_idle/"+pool, st)
}
