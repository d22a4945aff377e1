package nomad

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	nomadapi "github.com/hashicorp/nomad/api"
)

// Topics are the event-stream topics nomadscalerd watches.
var Topics = []nomadapi.Topic{
	nomadapi.TopicJob, nomadapi.TopicAllocation, nomadapi.TopicEvaluation,
	nomadapi.TopicNode, nomadapi.TopicDeployment,
}

// IndexStore persists the last event index processed.
type IndexStore interface {
	GetUint64Meta(key string) (uint64, error)
	PutUint64Meta(key string, v uint64) error
}

// Handler receives each batch of events, in index order. The batch's index is
// persisted only after it returns, so a crash replays at most that batch.
type Handler interface {
	HandleEvents(ctx context.Context, index uint64, events []nomadapi.Event)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, index uint64, events []nomadapi.Event)

// HandleEvents calls f.
func (f HandlerFunc) HandleEvents(ctx context.Context, index uint64, events []nomadapi.Event) {
	f(ctx, index, events)
}

// Handlers calls each handler in order: the cluster state first, so the
// controller it feeds reads the state the events made.
type Handlers []Handler

// HandleEvents calls every handler.
func (hs Handlers) HandleEvents(ctx context.Context, index uint64, events []nomadapi.Event) {
	for _, h := range hs {
		h.HandleEvents(ctx, index, events)
	}
}

// IndexKey is the meta key holding the watcher's last processed index.
const IndexKey = "watch_index"

// Watcher follows Nomad's event stream, resuming from the last processed
// index after a reconnect or a restart, and reconnecting with exponential
// backoff while Nomad is down.
type Watcher struct {
	client     *nomadapi.Client
	store      IndexStore
	handler    Handler
	log        *slog.Logger
	newBackOff func() backoff.BackOff
	connected  atomic.Bool
	last       atomic.Uint64
	onConnect  func(ctx context.Context) error
}

// OnConnect runs f each time the stream opens, before its first event is
// handled (the cluster state lists there, so events missed while
// disconnected are made up for); an error reconnects.
func (w *Watcher) OnConnect(f func(ctx context.Context) error) { w.onConnect = f }

// NewWatcher builds a watcher; it does nothing until Run.
func NewWatcher(c *Client, store IndexStore, h Handler, log *slog.Logger) *Watcher {
	if log == nil {
		log = slog.Default()
	}
	return &Watcher{client: c.api, store: store, handler: h, log: log, newBackOff: func() backoff.BackOff {
		b := backoff.NewExponentialBackOff()
		b.InitialInterval = 250 * time.Millisecond
		b.MaxInterval = 10 * time.Second
		b.MaxElapsedTime = 0 // keep trying for as long as the daemon runs
		return b
	}}
}

// Connected reports whether the stream is currently open.
func (w *Watcher) Connected() bool { return w.connected.Load() }

// LastIndex is the last index handled.
func (w *Watcher) LastIndex() uint64 { return w.last.Load() }

// Run streams until ctx ends.
func (w *Watcher) Run(ctx context.Context) error {
	last, err := w.store.GetUint64Meta(IndexKey)
	if err != nil {
		return fmt.Errorf("read watch index: %w", err)
	}
	w.last.Store(last)
	b := w.newBackOff()
	for {
		progressed, err := w.stream(ctx)
		w.connected.Store(false)
		if ctx.Err() != nil {
			return nil
		}
		if progressed {
			b.Reset()
		}
		wait := b.NextBackOff()
		w.log.Warn("nomad event stream interrupted; reconnecting", "err", err, "retry_in", wait, "last_index", w.last.Load())
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

func (w *Watcher) stream(ctx context.Context) (progressed bool, err error) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	topics := map[nomadapi.Topic][]string{}
	for _, t := range Topics {
		topics[t] = []string{"*"}
	}
	last := w.last.Load()
	if last > 0 {
		// A stored index past everything this cluster has written belongs to
		// another cluster (a reused database, a rebuilt cluster): waiting for
		// this one to catch up would drop every event until it does.
		if cur, err := w.clusterIndex(sctx); err == nil && cur < last {
			w.log.Warn("stored watch index is ahead of this Nomad cluster; starting from its present", "stored", last, "cluster", cur)
			last = 0
			w.last.Store(0)
		}
	}
	from := uint64(0)
	if last > 0 {
		from = last + 1
	}
	ch, err := w.client.EventStream().Stream(sctx, topics, from, &nomadapi.QueryOptions{Namespace: "*"})
	if err != nil {
		return false, fmt.Errorf("open event stream: %w", err)
	}
	if w.onConnect != nil {
		if err := w.onConnect(sctx); err != nil {
			return false, fmt.Errorf("sync on connect: %w", err)
		}
	}
	w.connected.Store(true)
	w.log.Info("watching nomad event stream", "addr", w.client.Address(), "from_index", from)
	for {
		select {
		case <-ctx.Done():
			return progressed, ctx.Err()
		case evs, ok := <-ch:
			if !ok {
				return progressed, errors.New("event stream closed")
			}
			if evs.Err != nil {
				return progressed, evs.Err
			}
			if evs.IsHeartbeat() {
				progressed = true
				continue
			}
			// After a reconnect the server may resend an index already
			// handled; the stored index is the dedupe point.
			if evs.Index <= w.last.Load() {
				continue
			}
			w.handler.HandleEvents(ctx, evs.Index, evs.Events)
			if err := w.store.PutUint64Meta(IndexKey, evs.Index); err != nil {
				return progressed, fmt.Errorf("persist watch index: %w", err)
			}
			w.last.Store(evs.Index)
			progressed = true
		}
	}
}

// clusterIndex is the highest modify index among the tables the watcher
// follows, read from the query metadata of one-item list calls.
func (w *Watcher) clusterIndex(ctx context.Context) (uint64, error) {
	q := func() *nomadapi.QueryOptions {
		return (&nomadapi.QueryOptions{Namespace: "*", PerPage: 1}).WithContext(ctx)
	}
	var idx uint64
	metas := []func() (*nomadapi.QueryMeta, error){
		func() (*nomadapi.QueryMeta, error) { _, m, err := w.client.Jobs().List(q()); return m, err },
		func() (*nomadapi.QueryMeta, error) { _, m, err := w.client.Nodes().List(q()); return m, err },
		func() (*nomadapi.QueryMeta, error) { _, m, err := w.client.Evaluations().List(q()); return m, err },
		func() (*nomadapi.QueryMeta, error) { _, m, err := w.client.Allocations().List(q()); return m, err },
		func() (*nomadapi.QueryMeta, error) { _, m, err := w.client.Deployments().List(q()); return m, err },
	}
	for _, f := range metas {
		m, err := f()
		if err != nil {
			return 0, err
		}
		idx = max(idx, m.LastIndex)
	}
	return idx, nil
}
