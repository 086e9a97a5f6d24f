package soak

import (
	"context"
	"sync"
	"sync/atomic"
)

// clientErrors tallies client errors by kind, keeping the first few messages.
type clientErrors struct {
	mu       sync.Mutex
	byKind   map[string]int64
	examples []string
	total    atomic.Int64
}

// addWhileLoading counts err as add does, unless ctx, the load's, has ended: a client cut
// off by the end of the load has not failed.
func (e *clientErrors) addWhileLoading(ctx context.Context, kind string, err error) {
	if ctx.Err() == nil {
		e.add(kind, err)
	}
}

// add counts err as one error of kind; the first ten errors are kept as examples.
func (e *clientErrors) add(kind string, err error) {
	e.total.Add(1)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.byKind == nil {
		e.byKind = map[string]int64{}
	}
	e.byKind[kind]++
	if len(e.examples) < 10 {
		e.examples = append(e.examples, kind+": "+err.Error())
	}
}
