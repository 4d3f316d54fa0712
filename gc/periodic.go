package gc

import (
	"context"
	"sync"
	"time"
)

// Periodic runs a collection every Every while a server runs (weir serve
// --gc-every), each one as Options say, and keeps the latest result for
// whoever reports on it (logs, metrics).
type Periodic struct {
	Collector *Collector
	Options   Options
	Every     time.Duration
	// OnResult, if set, is called after each collection with its result
	// (metrics: what it freed, or that it failed).
	OnResult func(Result, error)
	// Defer, if set, is asked before each collection: a non-empty answer
	// (why) skips this one, logged. weir serve defers while a run has
	// been running for more than half of --gc-grace, whose files and
	// objects are not yet named by any ref and would soon be older than
	// the grace period.
	Defer func() string

	mu   sync.Mutex
	last Result
	err  error
	runs int
}

// Run collects every Every until ctx is done; the first collection runs
// one interval after start. A collection in progress when ctx ends stops
// at its next repo (nothing half-deleted: each sweep is one batch).
func (p *Periodic) Run(ctx context.Context) {
	if p.Every <= 0 {
		return
	}
	t := time.NewTicker(p.Every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if p.Defer != nil {
			if why := p.Defer(); why != "" {
				p.Collector.log().Info("gc deferred", "why", why)
				continue
			}
		}
		res, err := p.Collector.Run(ctx, p.Options)
		if err != nil && ctx.Err() == nil {
			p.Collector.log().Warn("gc failed", "err", err)
		}
		p.mu.Lock()
		p.last, p.err = res, err
		p.runs++
		p.mu.Unlock()
		if p.OnResult != nil && ctx.Err() == nil {
			p.OnResult(res, err)
		}
	}
}

// Last returns the latest collection's result and error, and how many
// collections have run (0: none yet, and the result is empty).
func (p *Periodic) Last() (Result, error, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last, p.err, p.runs
}
