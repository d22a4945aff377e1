package history

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/nomadscalerd/nomadscalerd/store"
)

// Prometheus answers PromQL instant queries evaluated at the time of the
// call. A tick's queries are deduplicated and sent joined, BatchSize to a
// request, at most MaxInFlight requests at once across the process.
type Prometheus struct {
	// client sends the instant queries (see instant); api the range
	// queries of back-fills.
	client promapi.Client
	api    promv1.API
	log    *slog.Logger
	now    func() time.Time
	// sem bounds the requests in flight to Prometheus.
	sem chan struct{}
	// batchSize is how many distinct queries one request carries.
	batchSize int

	mu sync.Mutex
	// solo holds queries that are asked alone: a batch containing them
	// failed and they were isolated (a scalar result cannot be labelled,
	// and a broken query should not break its neighbours every tick).
	solo map[string]bool
	// requests counts requests sent, for tests and the bench.
	requests int64
}

// Defaults of the Prometheus source.
const (
	DefaultPromBatchSize   = 50
	DefaultPromMaxInFlight = 4
)

// NewPrometheus connects to the Prometheus HTTP API at address
// (e.g. http://127.0.0.1:9090).
func NewPrometheus(address string, log *slog.Logger) (*Prometheus, error) {
	if address == "" {
		return nil, fmt.Errorf("prometheus address is empty")
	}
	c, err := promapi.NewClient(promapi.Config{Address: address})
	if err != nil {
		return nil, fmt.Errorf("prometheus client: %w", err)
	}
	if log == nil {
		log = slog.Default()
	}
	return &Prometheus{client: c, api: promv1.NewAPI(c), log: log, now: time.Now, sem: make(chan struct{}, DefaultPromMaxInFlight),
		batchSize: DefaultPromBatchSize, solo: map[string]bool{}}, nil
}

// Requests is how many queries were sent to Prometheus so far.
func (p *Prometheus) Requests() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.requests
}

// acquire takes a slot of the global request limit and counts the
// request; release gives the slot back.
func (p *Prometheus) acquire(ctx context.Context) (release func(), err error) {
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for a prometheus slot: %w", ctx.Err())
	}
	p.mu.Lock()
	p.requests++
	p.mu.Unlock()
	return func() { <-p.sem }, nil
}

// query sends one instant query, holding a slot of the global limit.
func (p *Prometheus) query(ctx context.Context, q string, at time.Time) (instantAnswer, error) {
	release, err := p.acquire(ctx)
	if err != nil {
		return instantAnswer{}, err
	}
	defer release()
	res, warnings, err := p.instant(ctx, q, at)
	for _, w := range warnings {
		p.log.Debug("prometheus query warning", "query", q, "warning", w)
	}
	return res, err
}

// batchLabel tells a joined query's parts apart in its result.
const batchLabel = "nomadscalerd_q"

// SampleBatch evaluates every distinct query once, at one instant, with
// up to batchSize of them joined into one request as
// label_replace((q0), "nomadscalerd_q", "0", "", "") or ..., each part
// tagged so its series are told apart. A joined request that fails is
// split in halves until the failing query stands alone; queries that
// needed that are asked alone from then on. A request that failed because
// Prometheus could not answer at all (no connection, a 5xx) is not split:
// every query of it fails this tick.
func (p *Prometheus) SampleBatch(ctx context.Context, qs []Query, _ int) []Result {
	at := p.now()
	texts, byText := distinctQueries(qs)
	p.mu.Lock()
	for t := range p.solo {
		if _, ok := byText[t]; !ok {
			delete(p.solo, t) // no longer recorded
		}
	}
	var joined, alone []string
	for _, t := range texts {
		if p.solo[t] || t == "" {
			alone = append(alone, t)
		} else {
			joined = append(joined, t)
		}
	}
	p.mu.Unlock()
	results := make(map[string]Result, len(texts))
	var mu sync.Mutex
	put := func(rs map[string]Result) {
		mu.Lock()
		defer mu.Unlock()
		for k, v := range rs {
			results[k] = v
		}
	}
	var wg sync.WaitGroup
	for start := 0; start < len(joined); start += p.batchSize {
		part := joined[start:min(start+p.batchSize, len(joined))]
		wg.Go(func() {
			rs, _ := p.evalJoined(ctx, part, at)
			put(rs)
		})
	}
	for _, t := range alone {
		wg.Go(func() { put(map[string]Result{t: p.evalOne(ctx, t, at)}) })
	}
	wg.Wait()
	out := make([]Result, len(qs))
	for t, idx := range byText {
		for _, i := range idx {
			out[i] = results[t]
		}
	}
	return out
}

func (p *Prometheus) evalOne(ctx context.Context, q string, at time.Time) Result {
	r, _ := p.evalAlone(ctx, q, at)
	return r
}

// evalAlone is evalOne that also says whether q could have been joined:
// Prometheus answered it alone with a vector (of any length), which
// label_replace takes.
func (p *Prometheus) evalAlone(ctx context.Context, q string, at time.Time) (Result, bool) {
	if q == "" {
		return Result{Err: fmt.Errorf("prometheus: empty query")}, false
	}
	res, err := p.query(ctx, q, at)
	if err != nil {
		return Result{Err: fmt.Errorf("prometheus query %q: %w", q, err)}, false
	}
	joinable := res.resultType == "vector"
	v, err := promValue(res)
	if err != nil {
		return Result{Err: fmt.Errorf("prometheus query %q: %w", q, err)}, joinable
	}
	return Result{V: v}, joinable
}

// evalJoined answers texts with one request, or by halves if it fails;
// ok says the texts could be asked joined (one text: alone, see
// evalAlone).
func (p *Prometheus) evalJoined(ctx context.Context, texts []string, at time.Time) (_ map[string]Result, ok bool) {
	if len(texts) == 1 {
		// Isolated by a failed batch (or a batch of one): asked alone.
		r, joinable := p.evalAlone(ctx, texts[0], at)
		return map[string]Result{texts[0]: r}, joinable
	}
	var b strings.Builder
	for i, t := range texts {
		if i > 0 {
			b.WriteString(" or ")
		}
		fmt.Fprintf(&b, "label_replace((\n%s\n), %q, \"%d\", \"\", \"\")", t, batchLabel, i)
	}
	res, err := p.query(ctx, b.String(), at)
	if err != nil {
		// An outage says nothing about which query broke the request:
		// splitting would send every query alone, and mark them all to be
		// asked alone for as long as they are recorded.
		if ctx.Err() != nil || errors.Is(err, errUnavailable) {
			out := make(map[string]Result, len(texts))
			for _, t := range texts {
				out[t] = Result{Err: fmt.Errorf("prometheus query %q: %w", t, err)}
			}
			return out, false
		}
		half := len(texts) / 2
		out, leftOK := p.evalJoined(ctx, texts[:half], at)
		right, rightOK := p.evalJoined(ctx, texts[half:], at)
		for k, v := range right {
			out[k] = v
		}
		// A half of one query is asked alone from then on if it broke
		// the request: it cannot be joined (a scalar, an error), or the
		// other half joined without it. The healthy query the halving
		// paired with the one that broke it is not: asked alone it
		// would cost a request every tick for as long as it is recorded.
		leftSolo := half == 1 && (!leftOK || rightOK)
		rightSolo := len(texts)-half == 1 && (!rightOK || leftOK)
		if leftSolo || rightSolo {
			p.mu.Lock()
			if leftSolo {
				p.solo[texts[0]] = true
			}
			if rightSolo {
				p.solo[texts[len(texts)-1]] = true
			}
			p.mu.Unlock()
		}
		return out, false
	}
	if res.resultType != "vector" {
		// A joined query always yields a vector; anything else is a
		// Prometheus this code does not understand: ask each alone.
		out := make(map[string]Result, len(texts))
		for _, t := range texts {
			out[t] = p.evalOne(ctx, t, at)
		}
		return out, false
	}
	parts := make([][]instantSample, len(texts))
	for _, s := range res.samples {
		i, err := strconv.Atoi(s.part)
		if err != nil || i < 0 || i >= len(texts) {
			continue
		}
		parts[i] = append(parts[i], s)
	}
	out := make(map[string]Result, len(texts))
	for i, t := range texts {
		v, err := vectorValue(parts[i])
		if err != nil {
			err = fmt.Errorf("prometheus query %q: %w", t, err)
		}
		out[t] = Result{V: v, Err: err}
	}
	return out, true
}

// Sample evaluates q.Query at now. A scalar or a one-element vector is the
// value; an empty vector is ErrNoData; several elements are an error, as in
// nomad-autoscaler's prometheus plugin, because silently summing or picking
// one would hide a query that matches more series than its author meant
// (wrap it in sum() to aggregate).
func (p *Prometheus) Sample(ctx context.Context, q Query) (float64, error) {
	if q.Query == "" {
		return 0, fmt.Errorf("prometheus: empty query")
	}
	res, err := p.query(ctx, q.Query, p.now())
	if err != nil {
		return 0, fmt.Errorf("prometheus query %q: %w", q.Query, err)
	}
	v, err := promValue(res)
	if err != nil {
		return 0, fmt.Errorf("prometheus query %q: %w", q.Query, err)
	}
	return v, nil
}

// promValue reduces an instant-query result to one number.
func promValue(res instantAnswer) (float64, error) {
	switch res.resultType {
	case "scalar":
		return finite(res.scalar)
	case "vector":
		return vectorValue(res.samples)
	case "":
		return 0, ErrNoData
	default:
		return 0, fmt.Errorf("result type %s is not supported, want a scalar or an instant vector", res.resultType)
	}
}

// vectorValue is the value of a vector of one series.
func vectorValue(samples []instantSample) (float64, error) {
	switch len(samples) {
	case 0:
		return 0, ErrNoData
	case 1:
		return finite(samples[0].v)
	default:
		return 0, fmt.Errorf("result has %d series, want 1 (aggregate with sum or avg)", len(samples))
	}
}

// distinctQueries is qs' distinct query texts, in first-seen order, and
// the indexes in qs of each: policies that share a query are asked once.
func distinctQueries(qs []Query) (texts []string, byText map[string][]int) {
	byText = map[string][]int{}
	for i, q := range qs {
		if _, ok := byText[q.Query]; !ok {
			texts = append(texts, q.Query)
		}
		byText[q.Query] = append(byText[q.Query], i)
	}
	return texts, byText
}

// SampleRange evaluates each distinct query over [from, to] at step, up to
// batchSize of them joined into one range request as SampleBatch does. A
// joined request that fails fails its queries (a back-fill tries again
// later); queries known to need asking alone are asked alone.
func (p *Prometheus) SampleRange(ctx context.Context, qs []Query, from, to time.Time, step time.Duration) []RangeResult {
	texts, byText := distinctQueries(qs)
	p.mu.Lock()
	var joined, alone []string
	for _, t := range texts {
		if p.solo[t] || t == "" {
			alone = append(alone, t)
		} else {
			joined = append(joined, t)
		}
	}
	p.mu.Unlock()
	rng := promv1.Range{Start: from, End: to, Step: step}
	results := make(map[string]RangeResult, len(texts))
	var mu sync.Mutex
	var wg sync.WaitGroup
	run := func(part []string) {
		expr := part[0]
		if len(part) > 1 {
			var b strings.Builder
			for i, t := range part {
				if i > 0 {
					b.WriteString(" or ")
				}
				fmt.Fprintf(&b, "label_replace((\n%s\n), %q, \"%d\", \"\", \"\")", t, batchLabel, i)
			}
			expr = b.String()
		}
		res, err := p.queryRange(ctx, expr, rng)
		out := make(map[string]RangeResult, len(part))
		m, ok := res.(model.Matrix)
		switch {
		case err != nil:
		case res == nil || !ok:
			err = fmt.Errorf("range result is %v, want a matrix", res)
		}
		for i, t := range part {
			if err != nil {
				out[t] = RangeResult{Err: fmt.Errorf("prometheus range query %q: %w", t, err)}
				continue
			}
			var mine []*model.SampleStream
			for _, s := range m {
				if len(part) == 1 || string(s.Metric[batchLabel]) == strconv.Itoa(i) {
					mine = append(mine, s)
				}
			}
			switch len(mine) {
			case 0:
				out[t] = RangeResult{Err: ErrNoData}
			case 1:
				pts := make([]store.Sample, 0, len(mine[0].Values))
				for _, v := range mine[0].Values {
					if f, err := finite(float64(v.Value)); err == nil {
						pts = append(pts, store.Sample{T: v.Timestamp.Time().UTC(), V: f})
					}
				}
				out[t] = RangeResult{Points: pts}
			default:
				out[t] = RangeResult{Err: fmt.Errorf("prometheus range query %q: result has %d series, want 1", t, len(mine))}
			}
		}
		mu.Lock()
		for k, v := range out {
			results[k] = v
		}
		mu.Unlock()
	}
	for start := 0; start < len(joined); start += p.batchSize {
		part := joined[start:min(start+p.batchSize, len(joined))]
		wg.Go(func() { run(part) })
	}
	for _, t := range alone {
		wg.Go(func() { run([]string{t}) })
	}
	wg.Wait()
	out := make([]RangeResult, len(qs))
	for t, idx := range byText {
		for _, i := range idx {
			out[i] = results[t]
		}
	}
	return out
}

// queryRange sends one range query, holding a slot of the global limit.
func (p *Prometheus) queryRange(ctx context.Context, q string, r promv1.Range) (model.Value, error) {
	release, err := p.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	res, warnings, err := p.api.QueryRange(ctx, q, r)
	for _, w := range warnings {
		p.log.Debug("prometheus range query warning", "query", q, "warning", w)
	}
	return res, err
}
