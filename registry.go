package supersocket

import "sync"

const registryShards = 32

// registry maps session IDs to live sessions, sharded so that connects and closes on many
// cores do not queue behind one lock.
type registry[T any] struct {
	shards [registryShards]struct {
		mu sync.RWMutex
		m  map[string]*Session[T]
	}
}

func shardOf(id string) int {
	h := uint32(2166136261) // FNV-1a
	for i := 0; i < len(id); i++ {
		h ^= uint32(id[i])
		h *= 16777619
	}
	return int(h % registryShards)
}

func (r *registry[T]) add(s *Session[T]) {
	sh := &r.shards[shardOf(s.id)]
	sh.mu.Lock()
	if sh.m == nil {
		sh.m = make(map[string]*Session[T])
	}
	sh.m[s.id] = s
	sh.mu.Unlock()
}

func (r *registry[T]) remove(s *Session[T]) {
	sh := &r.shards[shardOf(s.id)]
	sh.mu.Lock()
	if sh.m[s.id] == s {
		delete(sh.m, s.id)
	}
	sh.mu.Unlock()
}

func (r *registry[T]) get(id string) *Session[T] {
	sh := &r.shards[shardOf(id)]
	sh.mu.RLock()
	s := sh.m[id]
	sh.mu.RUnlock()
	return s
}

// snapshot appends every live session to dst. Callers act on the copy, never under a
// shard lock, so a callback may close sessions or look them up.
func (r *registry[T]) snapshot(dst []*Session[T]) []*Session[T] {
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.RLock()
		for _, s := range sh.m {
			dst = append(dst, s)
		}
		sh.mu.RUnlock()
	}
	return dst
}

// each calls f for every live session, under the shards' read locks: f must be quick and
// must not touch the registry.
func (r *registry[T]) each(f func(*Session[T])) {
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.RLock()
		for _, s := range sh.m {
			f(s)
		}
		sh.mu.RUnlock()
	}
}
