package cluster

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/supersocket-go/supersocket"
)

// Users.
//
// A user is bound to one session at a time, cluster-wide, in the users' KV bucket:
// key token(userID), value the session ID. Every write is a compare-and-set on the
// key's revision, so concurrent Binds of one user, on any nodes, are put in one order
// by NATS: each one that wins replaces the binding before it, and kicks that session.
// Whatever the interleaving, once the Binds have returned exactly one of their
// sessions is bound and live; the others were kicked (Handlers.Kicked, then closed).
//
// A node rewrites the bindings of its sessions every UserTTL/3 (again a compare-and-set
// on the revision it holds), and the bucket forgets a key not written for UserTTL
// (its MaxAge): so a crashed node's users are unbound at most UserTTL after the crash.
// Until then they are unreachable at once (NATS answers no-responders for the dead
// node), and a new login of the same user takes over at once, as with any binding.
// When a rewrite finds the key changed, the user was bound elsewhere while this node
// could not be told (NATS was away): the local session is kicked. When it finds the key
// gone (expired while NATS was away), the binding is taken back.

// Bind binds userID to s, a live session of this node's server, cluster-wide. A session
// already bound to that user anywhere else is kicked (see Handlers.Kicked) and closed,
// and Bind returns once the kick has been handled, or its node found gone. A session
// bound to another user is first unbound from it. Binding the same pair again does
// nothing. It fails with ErrDisconnected at once when this node has lost NATS, with
// ErrNotLocal for a session that is closed or not this node's, and with ErrBadName for
// an empty or too long user ID. Safe from any goroutine.
func (n *Node[T]) Bind(ctx context.Context, s *supersocket.Session[T], userID string) error {
	if err := checkName("user ID", userID); err != nil {
		return err
	}
	l := n.link.Load()
	if l == nil || !l.connected() {
		return ErrDisconnected
	}
	kv := l.bucket()
	if kv == nil {
		return ErrDisconnected
	}
	n.mu.RLock()
	m := n.memberLocked(s)
	var old string
	if m != nil {
		old = m.user
	}
	n.mu.RUnlock()
	if m == nil {
		return ErrNotLocal
	}
	if old == userID {
		return nil
	}
	if old != "" {
		n.Unbind(s)
	}
	ctx, cancel := n.callContext(ctx)
	defer cancel()
	key, sid := token(userID), []byte(s.ID())
	var rev uint64
	var prev string
	for {
		e, err := kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			rev, err = kv.Create(ctx, key, sid)
			if errors.Is(err, jetstream.ErrKeyExists) {
				continue // someone bound it meanwhile: take it from them
			}
			prev = ""
		case err == nil:
			prev = string(e.Value())
			rev, err = kv.Update(ctx, key, sid, e.Revision())
			if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
				continue
			}
		}
		if err != nil {
			n.stats.errors.Add(1)
			return n.kvError(ctx, err)
		}
		break
	}
	n.mu.Lock()
	m = n.memberLocked(s)
	if m != nil && m.kicked {
		m = nil // kicked by a newer Bind as this one returned: the binding is the kicker's
	}
	if m != nil {
		m.user, m.rev = userID, rev
		n.users[userID] = m
		n.announceUserLocked(m)
	}
	n.mu.Unlock()
	n.drainRoomFrames()
	if m == nil {
		// Closed while binding: its Closed handler found nothing to unbind.
		n.unbindKV(userID, rev)
		return ErrNotLocal
	}
	if prev != "" && prev != s.ID() {
		n.kick(ctx, prev, userID)
	}
	return nil
}

// Unbind unbinds the user of s, if any, and returns its ID. Closing a session unbinds
// it too. Safe from any goroutine.
func (n *Node[T]) Unbind(s *supersocket.Session[T]) string {
	n.mu.Lock()
	m := n.memberLocked(s)
	if m == nil || m.user == "" {
		n.mu.Unlock()
		return ""
	}
	user, rev := m.user, m.rev
	m.user, m.rev = "", 0
	if n.users[user] == m {
		delete(n.users, user)
	}
	n.announceUserLocked(m)
	n.mu.Unlock()
	n.drainRoomFrames()
	n.unbindKV(user, rev)
	return user
}

// UserOf returns the user bound to s, a session of this node, or "". Safe from any
// goroutine.
func (n *Node[T]) UserOf(s *supersocket.Session[T]) string {
	n.mu.RLock()
	defer n.mu.RUnlock()
	if m := n.memberLocked(s); m != nil {
		return m.user
	}
	return ""
}

// LookupUser returns the ID of the session userID is bound to, on any node; ErrNoUser
// when it is bound nowhere. Safe from any goroutine.
func (n *Node[T]) LookupUser(ctx context.Context, userID string) (string, error) {
	if err := checkName("user ID", userID); err != nil {
		return "", err
	}
	n.mu.RLock()
	m := n.users[userID]
	n.mu.RUnlock()
	if m != nil {
		return m.s.ID(), nil
	}
	l := n.link.Load()
	if l == nil || !l.connected() {
		return "", ErrDisconnected
	}
	kv := l.bucket()
	if kv == nil {
		return "", ErrDisconnected
	}
	ctx, cancel := n.callContext(ctx)
	defer cancel()
	e, err := kv.Get(ctx, token(userID))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", fmt.Errorf("%w: %s", ErrNoUser, userID)
	}
	if err != nil {
		n.stats.errors.Add(1)
		return "", n.kvError(ctx, err)
	}
	return string(e.Value()), nil
}

// SendToUser sends msg to the session userID is bound to, on any node, as SendTo
// does. A user bound nowhere, or whose session or node is gone, fails with an error
// matching ErrNoUser (and ErrNoSession or ErrNodeGone when it was bound). Safe from
// any goroutine.
func (n *Node[T]) SendToUser(ctx context.Context, userID string, msg []byte) error {
	sid, err := n.LookupUser(ctx, userID)
	if err != nil {
		return err
	}
	if err := n.SendTo(ctx, sid, msg); err != nil {
		if errors.Is(err, ErrNoSession) {
			return fmt.Errorf("%w: %s: %w", ErrNoUser, userID, err)
		}
		return err
	}
	return nil
}

// KickUser kicks the session userID is bound to, on any node: Handlers.Kicked runs
// there, then the session closes with supersocket.CloseServerClosing, and the user is
// unbound. A user bound nowhere fails with ErrNoUser. Safe from any goroutine.
func (n *Node[T]) KickUser(ctx context.Context, userID string) error {
	sid, err := n.LookupUser(ctx, userID)
	if err != nil {
		return err
	}
	if err := n.kick(ctx, sid, userID); err != nil {
		if errors.Is(err, ErrNoSession) {
			return fmt.Errorf("%w: %s: %w", ErrNoUser, userID, err)
		}
		return err
	}
	return nil
}

// kick kicks the session sid of user, local or remote. When the session is gone, the
// user's stale binding to it is removed.
func (n *Node[T]) kick(ctx context.Context, sid, user string) error {
	n.stats.kicks.Add(1)
	node, _ := NodeOf(sid)
	var err error
	if node == n.cfg.NodeID {
		err = ackErr(n.kickLocal(sid, user), sid)
	} else {
		err = n.call(ctx, node, &entry{kind: kindKick, sid: sid, user: user})
	}
	if errors.Is(err, ErrNoSession) {
		n.dropStaleBinding(ctx, user, sid)
	}
	return err
}

// kickLocal kicks a session of this node: it loses user, Kicked runs, it closes.
func (n *Node[T]) kickLocal(sid, user string) byte {
	n.mu.Lock()
	m := n.members[sid]
	if m != nil {
		m.kicked = true
	}
	if m != nil && m.user == user {
		// The binding belongs to the kicker now: the session's close must not delete it.
		m.user, m.rev = "", 0
		if n.users[user] == m {
			delete(n.users, user)
		}
		n.announceUserLocked(m)
	}
	n.mu.Unlock()
	n.drainRoomFrames()
	if m == nil {
		return ackNoSession
	}
	if h := n.h.Kicked; h != nil {
		func() {
			defer func() {
				if p := recover(); p != nil {
					n.log.Error("Kicked handler panicked", "session", sid, "panic", p, "stack", string(debug.Stack()))
				}
			}()
			h(m.s, user)
		}()
	}
	m.s.Close(supersocket.CloseServerClosing)
	return ackOK
}

// dropStaleBinding deletes user's binding if it still names sid, a session that is gone.
func (n *Node[T]) dropStaleBinding(ctx context.Context, user, sid string) {
	l := n.link.Load()
	if l == nil {
		return
	}
	kv := l.bucket()
	if kv == nil {
		return
	}
	if e, err := kv.Get(ctx, token(user)); err == nil && string(e.Value()) == sid {
		kv.Delete(ctx, token(user), jetstream.LastRevision(e.Revision()))
	}
}

// unbindKV deletes the binding of user made at rev, unless it has been replaced since.
// Without NATS, the deletion waits for the connection to come back.
func (n *Node[T]) unbindKV(user string, rev uint64) {
	l := n.link.Load()
	if l == nil {
		return
	}
	key := token(user)
	kv := l.bucket()
	if kv == nil || !l.connected() {
		l.staleMu.Lock()
		l.stale[key] = rev
		l.staleMu.Unlock()
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.RequestTimeout)
	defer cancel()
	err := kv.Delete(ctx, key, jetstream.LastRevision(rev))
	if err != nil && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) && !isWrongLastSeq(err) {
		l.staleMu.Lock()
		l.stale[key] = rev
		l.staleMu.Unlock()
	}
}

// deleteStale deletes the bindings whose deletion waited for NATS.
func (n *Node[T]) deleteStale(ctx context.Context, l *link) {
	kv := l.bucket()
	if kv == nil {
		return
	}
	l.staleMu.Lock()
	stale := l.stale
	l.stale = make(map[string]uint64)
	l.staleMu.Unlock()
	for key, rev := range stale {
		err := kv.Delete(ctx, key, jetstream.LastRevision(rev))
		if err != nil && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) && !isWrongLastSeq(err) {
			l.staleMu.Lock()
			l.stale[key] = rev
			l.staleMu.Unlock()
		}
	}
}

func isWrongLastSeq(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// refresher rewrites the node's bindings every UserTTL/3, and at once when woken (NATS
// came back).
func (n *Node[T]) refresher(l *link) {
	defer l.loops.Done()
	t := time.NewTicker(n.cfg.UserTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-l.quit:
			return
		case <-t.C:
		case <-l.wake:
		}
		if !l.connected() {
			continue
		}
		ctx, cancel := context.WithTimeout(l.ctx, n.cfg.UserTTL/3)
		if l.bucket() == nil || n.bucketLost(ctx, l) {
			if err := n.ensureBucket(ctx, l); err != nil {
				n.log.Warn("users bucket unavailable", "err", err)
				cancel()
				continue
			}
		}
		n.refresh(ctx, l)
		n.deleteStale(ctx, l)
		cancel()
	}
}

// bucketLost reports whether the users' bucket is gone (NATS restarted without its
// store).
func (n *Node[T]) bucketLost(ctx context.Context, l *link) bool {
	_, err := l.js.KeyValue(ctx, bucketName(n.cfg.Prefix))
	return errors.Is(err, jetstream.ErrBucketNotFound)
}

// refresh rewrites every binding of the node, a few at a time.
func (n *Node[T]) refresh(ctx context.Context, l *link) {
	kv := l.bucket()
	n.mu.RLock()
	type entry struct {
		m    *member[T]
		user string
		rev  uint64
	}
	all := make([]entry, 0, len(n.users))
	for user, m := range n.users {
		all = append(all, entry{m, user, m.rev})
	}
	n.mu.RUnlock()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for _, e := range all {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			n.rewrite(ctx, kv, e.m, e.user, e.rev)
		})
	}
	wg.Wait()
}

// rewrite refreshes one binding; see the comment at the top of the file for what a
// changed or missing key means.
func (n *Node[T]) rewrite(ctx context.Context, kv jetstream.KeyValue, m *member[T], user string, rev uint64) {
	key, sid := token(user), m.s.ID()
	newRev, err := kv.Update(ctx, key, []byte(sid), rev)
	if err != nil && (errors.Is(err, jetstream.ErrKeyRevisionMismatch) || isWrongLastSeq(err)) {
		e, gerr := kv.Get(ctx, key)
		switch {
		case errors.Is(gerr, jetstream.ErrKeyNotFound):
			newRev, err = kv.Create(ctx, key, []byte(sid))
		case gerr == nil && string(e.Value()) == sid:
			newRev, err = kv.Update(ctx, key, []byte(sid), e.Revision())
		case gerr == nil:
			n.log.Info("user bound elsewhere while NATS was away; kicking the local session", "user", user, "session", sid, "now", string(e.Value()))
			n.stats.kicks.Add(1)
			n.kickLocal(sid, user)
			return
		default:
			err = gerr
		}
	}
	if err != nil {
		n.stats.errors.Add(1)
		n.log.Debug("binding not refreshed", "user", user, "err", err)
		return
	}
	n.mu.Lock()
	if m.user == user && m.rev == rev {
		m.rev = newRev
	}
	n.mu.Unlock()
}

// callContext bounds ctx by Config.RequestTimeout when it has no deadline.
func (n *Node[T]) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, n.cfg.RequestTimeout)
}

// kvError maps an error of the KV bucket to the caller's.
func (n *Node[T]) kvError(ctx context.Context, err error) error {
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("%w: users bucket: %v", ErrTimeout, err)
	case n.link.Load() == nil || !n.link.Load().connected():
		return fmt.Errorf("%w: %v", ErrDisconnected, err)
	}
	return fmt.Errorf("cluster: users bucket: %w", err)
}
