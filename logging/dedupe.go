// Package logging holds the daemon's slog plumbing: a handler that keeps a
// thousand policies failing the same way from writing a thousand lines a
// second.
package logging

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Dedupe wraps a handler so that a warning or error repeated with the same
// message for the same policy (or series) is written once per window: the
// first occurrence goes through at once, later ones within the window are
// counted, and the next one after the window carries "repeated" = how many
// were held back. Info and debug records always pass.
type Dedupe struct {
	next   slog.Handler
	shared *dedupeState
	// scope is the policy or series set with Logger.With, if any.
	scope string
}

type dedupeState struct {
	every time.Duration
	now   func() time.Time

	mu   sync.Mutex
	seen map[dedupeKey]*dedupeEntry
}

type dedupeKey struct {
	level slog.Level
	msg   string
	scope string
}

type dedupeEntry struct {
	logged time.Time
	held   int
}

var _ slog.Handler = (*Dedupe)(nil)

// scopeKeys are the attributes that tell one policy's warning from
// another's.
var scopeKeys = map[string]bool{"policy": true, "series": true, "pool": true}

// NewDedupe wraps next; every <= 0 means one minute; now nil means
// time.Now.
func NewDedupe(next slog.Handler, every time.Duration, now func() time.Time) *Dedupe {
	if every <= 0 {
		every = time.Minute
	}
	if now == nil {
		now = time.Now
	}
	return &Dedupe{next: next, shared: &dedupeState{every: every, now: now, seen: map[dedupeKey]*dedupeEntry{}}}
}

// Enabled implements slog.Handler.
func (d *Dedupe) Enabled(ctx context.Context, l slog.Level) bool { return d.next.Enabled(ctx, l) }

// Handle implements slog.Handler.
func (d *Dedupe) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn {
		return d.next.Handle(ctx, r)
	}
	scope := d.scope
	r.Attrs(func(a slog.Attr) bool {
		if scopeKeys[a.Key] {
			scope = a.Value.String()
			return false
		}
		return true
	})
	held, pass := d.shared.admit(dedupeKey{level: r.Level, msg: r.Message, scope: scope})
	if !pass {
		return nil
	}
	if held > 0 {
		r = r.Clone()
		r.AddAttrs(slog.Int("repeated", held))
	}
	return d.next.Handle(ctx, r)
}

// admit says whether a record with key is written now and how many of its
// kind were held back since the last one written.
func (s *dedupeState) admit(k dedupeKey) (held int, pass bool) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.seen[k]
	if ok && now.Sub(e.logged) < s.every {
		e.held++
		return 0, false
	}
	if !ok {
		e = &dedupeEntry{}
		s.seen[k] = e
		if len(s.seen) > 10000 {
			s.forgetLocked(now)
		}
	}
	held = e.held
	e.logged, e.held = now, 0
	return held, true
}

// forgetLocked drops keys quiet for a whole window with nothing held, so
// the map stays as large as what is failing now.
func (s *dedupeState) forgetLocked(now time.Time) {
	for k, e := range s.seen {
		if e.held == 0 && now.Sub(e.logged) >= s.every {
			delete(s.seen, k)
		}
	}
}

// WithAttrs implements slog.Handler.
func (d *Dedupe) WithAttrs(attrs []slog.Attr) slog.Handler {
	out := &Dedupe{next: d.next.WithAttrs(attrs), shared: d.shared, scope: d.scope}
	for _, a := range attrs {
		if scopeKeys[a.Key] {
			out.scope = a.Value.String()
		}
	}
	return out
}

// WithGroup implements slog.Handler.
func (d *Dedupe) WithGroup(name string) slog.Handler {
	return &Dedupe{next: d.next.WithGroup(name), shared: d.shared, scope: d.scope}
}
