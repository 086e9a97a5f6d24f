package soak

import (
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
