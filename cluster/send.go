package cluster

import (
	"context"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/supersocket-go/supersocket"
)

// Sessions by ID across nodes.
//
// A session's node is the first part of its ID, so a call for it goes straight to that
// node, or stays local. Across nodes, sends, closes and kicks travel on the owner's
// inbox subject <prefix>.node.<owner>.in, batched: one NATS message carries the calls
// a sender made to that node since its last flush (see outbox.go):
//
//   - the owner handles the messages of its inbox in arrival order (one subscription), so
//     the calls of one sender to one session arrive in order, and acknowledges the
//     calls that wait in batches: one message to <prefix>.node.<sender>.ack.b carries
//     the status of every call its inbox held (a burst ends when the inbox is empty),
//     so under load an acknowledgement costs a fraction of a message;
//   - when nothing serves the owner's inbox (it stopped, crashed, or lost NATS), NATS
//     itself answers the batch's reply subject at once with a no-responders status, and
//     its calls fail with an error matching ErrNodeGone and ErrNoSession: no timeout is
//     waited for.
//
// SendTo waits for its call's acknowledgement, so it reports what happened: delivered
// to the session's send queue, no such session, queue full, session closing.
// SendToAsync makes the same call and hands the verdict to a callback, so that one
// goroutine keeps many calls in flight. Post does not wait, and learns only what this
// node knows. The owner never blocks on a session:
// it uses TrySend.

// Kinds of inbox entries.
const (
	kindSend  = 1
	kindClose = 2
	kindKick  = 3
)

// Acknowledgement statuses.
const (
	ackOK = iota
	ackNoSession
	ackQueueFull
	ackClosed
	ackBadFrame
)

// ackErr turns an acknowledgement status into the caller's error.
func ackErr(status byte, sessionID string) error {
	switch status {
	case ackOK:
		return nil
	case ackNoSession:
		if sessionID == "" {
			return ErrNoSession // call adds the ID
		}
		return fmt.Errorf("%w: %s", ErrNoSession, sessionID)
	case ackQueueFull:
		return supersocket.ErrSendQueueFull
	case ackClosed:
		return supersocket.ErrSessionClosed
	}
	return fmt.Errorf("%w (session %s)", errBadFrame, sessionID)
}

// SendTo queues msg on the session with the given ID, on whichever node it lives, and
// returns once the session has queued it or the call failed. A local session is sent to
// directly, without NATS. Like Session.TrySend it never waits for room in the session's
// send queue (supersocket.ErrSendQueueFull); it fails with an error matching
// ErrNoSession when the session does not exist, at once when its node is gone (then the
// error also matches ErrNodeGone), with ErrDisconnected at once when this node has lost
// NATS, and with ErrTimeout when the other node does not answer within ctx's deadline
// (Config.RequestTimeout if ctx has none). msg is copied before SendTo returns.
// Messages one goroutine sends to one session arrive in the order sent. Safe from any
// goroutine.
func (n *Node[T]) SendTo(ctx context.Context, sessionID string, msg []byte) error {
	node, err := n.sendRoute(sessionID, msg)
	if node == "" {
		return err
	}
	n.stats.remoteSends.Add(1)
	err = n.call(ctx, node, &entry{kind: kindSend, sid: sessionID, msg: msg})
	if err != nil {
		n.stats.remoteSendErrors.Add(1)
	}
	return err
}

// SendToAsync is SendTo that does not wait: it queues msg for the session with the
// given ID and returns, and done receives the verdict SendTo would have returned
// (nil once the session has queued msg; ErrNoSession, ErrNodeGone, ErrSendQueueFull,
// ErrSessionClosed, ErrDisconnected, ErrTimeout, nats.ErrMaxPayload), so that one
// goroutine can keep many sends in flight.
//
// done is called exactly once. A verdict known at once (a local session, an invalid
// ID, a message too large, NATS lost, ctx ended) is given on the caller's goroutine
// before SendToAsync returns; a remote one later, on one of the node's goroutines
// (the one that reads acknowledgements; or the flusher, the heartbeat, the connection
// watcher, a context's watcher, the one that stops the node), so the done of
// different calls may run at the same time. done must be quick and must not block:
// while it runs, the verdicts after it wait; it must not call SendTo or Close, nor
// SendToAsync, which may wait for room (below). A caller that needs more hands the
// verdict to its own goroutine (a buffered channel, a counter).
//
// Order: the messages of the SendTo, SendToAsync and Post calls one goroutine makes to
// one session arrive in the order made (those that fail are missing). The verdicts
// the session's node gives come in the order of the calls to that node. Errors found
// on this side (ctx ended, RequestTimeout, the node found gone, NATS lost) come in
// call order among themselves, but may overtake the verdict of an earlier call.
//
// Bounds: at most Config.MaxInFlight calls of this node wait for their verdicts; past
// it SendToAsync waits for one to be answered, and gives ErrTimeout when ctx ends
// first. ctx bounds the call as for SendTo: when it ends before the verdict (its
// deadline, or Config.RequestTimeout, checked every HeartbeatInterval, when it has
// none), done gets an error matching ErrTimeout and ctx.Err(), and msg may still have
// been delivered; so ctx must outlive the call (not a context cancelled as soon as
// SendToAsync returns). Watching ctx costs one context.AfterFunc per context, shared
// by its calls: give many calls the same context. msg is copied before SendToAsync
// returns. Safe from any goroutine.
func (n *Node[T]) SendToAsync(ctx context.Context, sessionID string, msg []byte, done func(err error)) {
	node, err := n.sendRoute(sessionID, msg)
	if node == "" {
		done(err)
		return
	}
	n.stats.remoteSends.Add(1)
	if err := n.callAsync(ctx, node, sessionID, msg, done); err != nil {
		n.stats.remoteSendErrors.Add(1)
		done(err)
	}
}

// callAsync queues a send for node whose verdict goes to done; the error is a verdict
// known at once (done is then not called).
func (n *Node[T]) callAsync(ctx context.Context, node, sessionID string, msg []byte, done func(error)) error {
	l, e, err := n.sendLink(sessionID, msg)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrTimeout, err)
	}
	if err := l.pending.reserve(ctx); err != nil {
		return fmt.Errorf("%w: %d calls waiting (Config.MaxInFlight): %w", ErrTimeout, l.pending.maxAsync, err)
	}
	w := waiterPool.Get().(*waiter)
	w.node, w.cb, w.sid = node, done, sessionID
	if ctx.Done() != nil {
		w.ctx = ctx
	}
	_, deadline := ctx.Deadline()
	w.expires = !deadline
	if !l.enqueue(node, w, &e) {
		w.resetAsync()
		waiterPool.Put(w)
		l.pending.release()
		return ErrDisconnected
	}
	return nil
}

// sendRoute returns the node of sessionID when it is another node's; otherwise ""
// and the error of an invalid ID, or of sending msg to the local session.
func (n *Node[T]) sendRoute(sessionID string, msg []byte) (string, error) {
	node, ok := NodeOf(sessionID)
	if !ok {
		return "", fmt.Errorf("%w: %q is not a cluster session ID", ErrNoSession, sessionID)
	}
	if node == n.cfg.NodeID {
		n.stats.localSends.Add(1)
		return "", ackErr(n.deliver(sessionID, msg), sessionID)
	}
	return node, nil
}

// Post is SendTo without the verdict: it queues msg for the session with the given ID
// and returns without waiting for the session's node. For a local session it is
// SendTo (its error says what happened). For a remote one it returns nil once msg is
// queued for NATS (nothing is reported back: a missing session, a full send queue or
// a node that is gone lose the message, counted in the owner's
// Stats.PostsUndelivered), ErrDisconnected at once when this node has lost NATS, and an
// error matching nats.ErrMaxPayload for a message too large for one NATS message.
// SendTo and Post calls one goroutine makes to one session arrive in the order made.
// msg is copied before Post returns. Safe from any goroutine.
func (n *Node[T]) Post(sessionID string, msg []byte) error {
	node, err := n.sendRoute(sessionID, msg)
	if node == "" {
		return err
	}
	n.stats.remotePosts.Add(1)
	l, e, err := n.sendLink(sessionID, msg)
	if err != nil {
		return err
	}
	l.enqueue(node, nil, &e)
	return nil
}

// sendLink returns the NATS link a send to another node's session goes out on, and the
// send's outbox entry; ErrDisconnected without NATS, and an error matching
// nats.ErrMaxPayload for a message too large for one NATS message.
func (n *Node[T]) sendLink(sessionID string, msg []byte) (*link, entry, error) {
	l := n.link.Load()
	if l == nil || l.pending.down.Load() {
		return nil, entry{}, ErrDisconnected
	}
	e := entry{kind: kindSend, sid: sessionID, msg: msg}
	if err := l.fits(&e); err != nil {
		return nil, entry{}, err
	}
	return l, e, nil
}

// Close closes the session with the given ID, on whichever node it lives, with reason;
// it returns once the owning node has started the close (see Session.Close), or with
// the errors of SendTo. Safe from any goroutine.
func (n *Node[T]) Close(ctx context.Context, sessionID string, reason supersocket.CloseReason) error {
	node, ok := NodeOf(sessionID)
	if !ok {
		return fmt.Errorf("%w: %q is not a cluster session ID", ErrNoSession, sessionID)
	}
	if node == n.cfg.NodeID {
		return ackErr(n.closeLocal(sessionID, reason), sessionID)
	}
	return n.call(ctx, node, &entry{kind: kindClose, sid: sessionID, reason: byte(reason)})
}

// deliver queues msg on a local session.
func (n *Node[T]) deliver(sessionID string, msg []byte) byte {
	s, ok := n.Server.Session(sessionID)
	if !ok {
		return ackNoSession
	}
	return sendStatus(s.TrySend(msg))
}

// sendStatus is the acknowledgement status of a TrySend's error.
func sendStatus(err error) byte {
	switch err {
	case nil:
		return ackOK
	case supersocket.ErrSendQueueFull:
		return ackQueueFull
	default:
		return ackClosed
	}
}

func (n *Node[T]) closeLocal(sessionID string, reason supersocket.CloseReason) byte {
	s, ok := n.Server.Session(sessionID)
	if !ok {
		return ackNoSession
	}
	s.Close(reason)
	return ackOK
}

// call sends an inbox entry to node and waits for its acknowledgement.
func (n *Node[T]) call(ctx context.Context, node string, e *entry) error {
	l := n.link.Load()
	if l == nil {
		return ErrDisconnected
	}
	if err := l.fits(e); err != nil {
		return err
	}
	// Without NATS the call fails here (pending calls are down) or, in the moment
	// before watch has seen it, when the flusher finds the connection down.
	w := waiterPool.Get().(*waiter)
	w.node = node
	if !l.enqueue(node, w, e) {
		waiterPool.Put(w)
		return ErrDisconnected
	}
	var timeout <-chan time.Time
	if _, ok := ctx.Deadline(); !ok {
		if w.timer == nil {
			w.timer = time.NewTimer(n.cfg.RequestTimeout)
		} else {
			w.timer.Reset(n.cfg.RequestTimeout)
		}
		timeout = w.timer.C
	}
	var err error
	answered := false
	select {
	case err = <-w.done:
		answered = true
	case <-ctx.Done():
		err = fmt.Errorf("%w: %w", ErrTimeout, ctx.Err())
	case <-timeout:
		err = fmt.Errorf("%w: node %q did not answer within %v", ErrTimeout, node, n.cfg.RequestTimeout)
	}
	if timeout != nil {
		w.timer.Stop()
	}
	if !answered && l.pending.take(w.seq) == nil {
		// Given up, but the answer was taken from the table meanwhile: it is on its
		// way, and it is the truth.
		err = <-w.done
	}
	waiterPool.Put(w)
	if err == ErrNoSession {
		err = fmt.Errorf("%w: %s", ErrNoSession, e.sid)
	}
	return err
}

// fits checks that an entry fits in one NATS message.
func (l *link) fits(e *entry) error {
	if size := int64(e.size() + len(l.self) + binary.MaxVarintLen64); size > l.maxPayload {
		return fmt.Errorf("cluster: a message of %d bytes does not fit NATS's max payload (%d): %w", len(e.msg), l.maxPayload, nats.ErrMaxPayload)
	}
	return nil
}

// onInbox handles one batch of this node's inbox and acknowledges its waiting calls;
// the acknowledgements of a burst go out together, when the inbox is empty.
//
// Consecutive sends of a batch to one TCP session are queued on it with one TrySend,
// as one message of the send queue (one write to the socket, where one each would cost
// a system call each; it counts as one message of SendQueueSize), as long as they fit
// in SendQueueBytes together; if the queue
// cannot take them together, each is tried alone, so the verdicts are those of single
// sends. Sends to WebSocket and UDP sessions, whose messages are frames and datagrams,
// are queued one by one.
func (n *Node[T]) onInbox(l *link, m *nats.Msg) {
	n.stats.msgsIn.Add(1)
	g, _ := l.inboxScratch.(*sendGroup[T])
	if g == nil {
		g = &sendGroup[T]{max: n.Server.Config().SendQueueBytes}
		l.inboxScratch = g
	}
	r := reader{b: m.Data}
	from := r.bytes()
	g.from = from
	for len(r.b) > 0 && !r.bad {
		kind := r.byte()
		seq := r.uvarint()
		sid := r.bytes()
		if kind == kindSend {
			msg := r.bytes()
			if !r.bad {
				n.groupSend(l, g, sid, seq, msg)
			}
			continue
		}
		n.flushGroup(l, g)
		var status byte = ackBadFrame
		switch kind {
		case kindClose:
			reason := r.byte()
			if !r.bad {
				status = n.closeLocal(string(sid), supersocket.CloseReason(reason))
			}
		case kindKick:
			user := r.string()
			if !r.bad {
				status = n.kickLocal(string(sid), user)
			}
		}
		if r.bad || status == ackBadFrame {
			break
		}
		n.ack(l, from, seq, status)
	}
	n.flushGroup(l, g)
	if r.bad {
		n.stats.errors.Add(1)
		n.log.Warn("malformed inbox frame", "subject", m.Subject, "from", string(from), "bytes", len(m.Data))
	}
	g.from = nil
	// Pending counts the message in hand until this callback returns.
	if pending, _, err := m.Sub.Pending(); err != nil || pending <= 1 || l.acks.full() {
		n.stats.msgsOut.Add(l.flushAcks())
	}
}

// sendGroup is the consecutive sends to one session that onInbox queues together. Only
// the inbox subscription's goroutine touches it.
type sendGroup[T any] struct {
	max    int    // the server's SendQueueBytes
	from   []byte // the batch's sender
	sid    []byte // the session's ID, aliasing the batch
	s      *supersocket.Session[T]
	stream bool // a TCP session: its messages are bytes on a stream
	bytes  int
	parts  [][]byte // aliasing the batch
	seqs   []uint64
}

// groupSend adds a send to the group, or starts a new group with it.
func (n *Node[T]) groupSend(l *link, g *sendGroup[T], sid []byte, seq uint64, msg []byte) {
	if len(g.parts) > 0 && g.stream && g.bytes+len(msg) <= g.max && string(sid) == string(g.sid) {
		g.parts = append(g.parts, msg)
		g.seqs = append(g.seqs, seq)
		g.bytes += len(msg)
		return
	}
	n.flushGroup(l, g)
	// The registry's lookup does not keep the key: no copy of the ID.
	s, _ := n.Server.Session(unsafeString(sid))
	g.s, g.sid = s, sid
	g.stream = s != nil && s.WebSocket() == nil && s.LocalAddr() != nil && s.LocalAddr().Network() == "tcp"
	g.parts = append(g.parts, msg)
	g.seqs = append(g.seqs, seq)
	g.bytes = len(msg)
}

// flushGroup queues the group's sends and acknowledges them.
func (n *Node[T]) flushGroup(l *link, g *sendGroup[T]) {
	if len(g.parts) == 0 {
		return
	}
	status := byte(ackNoSession)
	if g.s != nil {
		status = sendStatus(g.s.TrySend(g.parts...))
	}
	if status == ackQueueFull && len(g.parts) > 1 {
		for i, p := range g.parts {
			n.ack(l, g.from, g.seqs[i], sendStatus(g.s.TrySend(p)))
		}
	} else {
		for _, seq := range g.seqs {
			n.ack(l, g.from, seq, status)
		}
	}
	clear(g.parts)
	g.parts, g.seqs, g.s, g.sid = g.parts[:0], g.seqs[:0], nil, nil
}

// ack records the status of an inbox entry: an acknowledgement for a call that waits,
// a count for a post that was not delivered.
func (n *Node[T]) ack(l *link, from []byte, seq uint64, status byte) {
	if seq != 0 {
		l.acks.add(from, seq, status)
	} else if status != ackOK {
		n.stats.postsUndelivered.Add(1)
	}
}

// onAck handles acknowledgements of this node's calls: a batch from the owner, or NATS's
// no-responders status for a batch of calls sent to a node.
func (n *Node[T]) onAck(l *link, m *nats.Msg) {
	rest := strings.TrimPrefix(m.Subject, l.ackPrefix)
	if rest == "b" {
		if !l.pending.acknowledge(m.Data) {
			n.stats.errors.Add(1)
		}
		return
	}
	i := strings.LastIndexByte(rest, '.')
	if i <= 0 || len(m.Data) != 0 || m.Header.Get("Status") != "503" {
		return
	}
	node := rest[:i]
	seq, err := strconv.ParseUint(rest[i+1:], 10, 64)
	if err != nil {
		return
	}
	// The batch's calls, and those sent to that node before it, were either
	// acknowledged already (an acknowledgement precedes the end of its sender's
	// subscription) or never will be.
	l.pending.fail(node, &goneError{node: node, session: true}, func(w *waiter) bool { return w.seq <= seq })
	l.dropOutbox(node)
}

func appendUvarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// ackBatches collects the acknowledgements of a burst of inbox frames, by sender. Only
// the inbox subscription's goroutine touches it.
type ackBatches struct {
	prefix string // "<prefix>.node."
	by     map[string]*ackBatch
	n      int
}

type ackBatch struct {
	subject string
	b       []byte
}

const maxAckBatch = 4096

func (a *ackBatches) add(from []byte, seq uint64, status byte) {
	if a.by == nil {
		a.by = make(map[string]*ackBatch)
	}
	ab := a.by[string(from)]
	if ab == nil {
		ab = &ackBatch{subject: a.prefix + string(from) + ".ack.b"}
		a.by[string(from)] = ab
	}
	ab.b = appendUvarint(ab.b, seq)
	ab.b = append(ab.b, status)
	a.n++
}

func (a *ackBatches) full() bool { return a.n >= maxAckBatch }
