package nodepool

import (
	"context"
	"encoding/json"
	"sync"
	"time"
)

// EntryKind is what a journal entry tracks.
type EntryKind string

// Journal entry kinds.
const (
	KindDrain    EntryKind = "drain"     // drain, then terminate a node
	KindScaleOut EntryKind = "scale_out" // nodes launched, waiting to join
)

// Phase is how far an action has got. Done and failed are final.
type Phase string

// Phases of journal entries.
const (
	PhaseDraining    Phase = "draining"
	PhaseTerminating Phase = "terminating"
	PhaseTerminated  Phase = "terminated" // until the node is gone from Nomad
	PhaseLaunched    Phase = "launched"
	PhaseJoined      Phase = "joined" // launched nodes ready; settling (JoinSettle)
	PhaseDone        Phase = "done"
	PhaseFailed      Phase = "failed"
)

// Final reports whether no more work follows the phase.
func (p Phase) Final() bool { return p == PhaseDone || p == PhaseFailed }

// Entry is one record of the action journal. Entries with the same ID
// describe one action; the latest appended one is its current state. The
// controller appends before it acts, so a restart after a crash finds the
// action and finishes it.
type Entry struct {
	ID           string    `json:"id"`
	Pool         string    `json:"pool"`
	Kind         EntryKind `json:"kind"`
	Phase        Phase     `json:"phase"`
	At           time.Time `json:"at"`
	NodeID       string    `json:"node_id,omitempty"`
	NodeName     string    `json:"node_name,omitempty"`
	InstanceType string    `json:"instance_type,omitempty"`
	// InstanceID and Address of a drained node, kept so it can be
	// terminated after it has left Nomad's view or after a restart.
	InstanceID string `json:"instance_id,omitempty"`
	Address    string `json:"address,omitempty"`
	// DrainStarted is when a drain began: an instance launched after it
	// cannot be the drained node (a private IP can be reused).
	DrainStarted time.Time `json:"drain_started,omitzero"`
	Count        int       `json:"count,omitempty"`
	Spot         bool      `json:"spot,omitempty"`
	// KnownNodes are the pool's node IDs when a scale-out was requested;
	// nodes outside it that appear later are the launched ones.
	KnownNodes []string `json:"known_nodes,omitempty"`
	// JoinedNodes are the launched nodes once all of them are ready.
	JoinedNodes []string `json:"joined_nodes,omitempty"`
	Reason      string   `json:"reason,omitempty"`
}

// Journal is the durable action log (bbolt in the daemon).
type Journal interface {
	// Append records e as the current state of action e.ID.
	Append(ctx context.Context, e Entry) error
	// Pending returns the current state of every action whose latest
	// entry is not final, oldest first.
	Pending(ctx context.Context) ([]Entry, error)
}

// DecisionRecorder may be implemented by a Journal to keep each pool's
// latest acted-on decision, so tools can show what the daemon last did and
// why after it stopped.
type DecisionRecorder interface {
	RecordDecision(ctx context.Context, d Decision) error
}

// IdleStore keeps each pool's idle counters between reconciles.
type IdleStore interface {
	// LoadIdle returns the pool's state, or a zero IdleState if none.
	LoadIdle(ctx context.Context, pool string) (IdleState, error)
	SaveIdle(ctx context.Context, pool string, s IdleState) error
}

// MemJournal is an in-memory Journal for tests and dry runs; it round-trips
// entries through JSON, as a persistent journal would. Pending reads only
// the unfinished actions, however many finished ones there are.
type MemJournal struct {
	mu sync.Mutex
	// open lists the unfinished actions in the order they began.
	open   []string
	latest map[string][]byte
}

// NewMemJournal returns an empty journal.
func NewMemJournal() *MemJournal { return &MemJournal{latest: map[string][]byte{}} }

// Append implements Journal.
func (j *MemJournal) Append(_ context.Context, e Entry) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	at := -1
	for i, id := range j.open {
		if id == e.ID {
			at = i
			break
		}
	}
	switch {
	case e.Phase.Final() && at >= 0:
		j.open = append(j.open[:at], j.open[at+1:]...)
	case !e.Phase.Final() && at < 0:
		j.open = append(j.open, e.ID)
	}
	j.latest[e.ID] = b
	return nil
}

// Pending implements Journal.
func (j *MemJournal) Pending(_ context.Context) ([]Entry, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	out := make([]Entry, 0, len(j.open))
	for _, id := range j.open {
		var e Entry
		if err := json.Unmarshal(j.latest[id], &e); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// Latest returns the current state of action id.
func (j *MemJournal) Latest(id string) (Entry, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	b, ok := j.latest[id]
	if !ok {
		return Entry{}, false
	}
	var e Entry
	_ = json.Unmarshal(b, &e)
	return e, true
}

// MemIdleStore is an in-memory IdleStore that round-trips through JSON.
type MemIdleStore struct {
	mu    sync.Mutex
	pools map[string][]byte
}

// NewMemIdleStore returns an empty store.
func NewMemIdleStore() *MemIdleStore { return &MemIdleStore{pools: map[string][]byte{}} }

// LoadIdle implements IdleStore.
func (s *MemIdleStore) LoadIdle(_ context.Context, pool string) (IdleState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var st IdleState
	if b, ok := s.pools[pool]; ok {
		if err := json.Unmarshal(b, &st); err != nil {
			return IdleState{}, err
		}
	}
	return st, nil
}

// SaveIdle implements IdleStore.
func (s *MemIdleStore) SaveIdle(_ context.Context, pool string, st IdleState) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pools[pool] = b
	return nil
}
