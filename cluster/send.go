package cluster

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/supersocket-go/supersocket"
)

// Sessions by ID across nodes.
//
// A session's node is the first part of its ID, so a call for it goes straight to that
// node, or stays local. Across nodes, sends, closes and kicks travel on the owner's
// inbox subject, one NATS message each, with the reply subject <prefix>.node.<sender>.ack.<seq>:
//
//   - the owner handles the messages of its inbox in arrival order (one subscription), so
//     the sends of one sender to one session arrive in order, and acknowledges them in
//     batches: one message to <prefix>.node.<sender>.ack.b carries the status of every
//     message its inbox held (a batch ends when the inbox is empty), so under load an
//     acknowledgement costs a fraction of a message;
//   - when nothing serves the owner's inbox (it stopped, crashed, or lost NATS), NATS
//     itself answers the reply subject at once with a no-responders status, and the call
//     fails with an error matching ErrNodeGone and ErrNoSession: no timeout is waited for.
//
// A sender waits for its message's acknowledgement, so SendTo reports what happened:
// delivered to the session's send queue, no such session, queue full, session closing.
// The owner never blocks on a session: it uses TrySend.

// Kinds of inbox frames.
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
	node, ok := NodeOf(sessionID)
	if !ok {
		return fmt.Errorf("%w: %q is not a cluster session ID", ErrNoSession, sessionID)
	}
	if node == n.cfg.NodeID {
		n.stats.localSends.Add(1)
		return ackErr(n.deliver(sessionID, msg), sessionID)
	}
	n.stats.remoteSends.Add(1)
	err := n.call(ctx, node, kindSend, sessionID, msg, 0, "")
	if err != nil {
		n.stats.remoteSendErrors.Add(1)
	}
	return err
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
	return n.call(ctx, node, kindClose, sessionID, nil, reason, "")
}

// deliver queues msg on a local session.
func (n *Node[T]) deliver(sessionID string, msg []byte) byte {
	s, ok := n.Server.Session(sessionID)
	if !ok {
		return ackNoSession
	}
	switch s.TrySend(msg) {
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

// waiter is a call waiting for its acknowledgement.
type waiter struct {
	done  chan error // buffered: the one who takes the waiter out of the table sends once
	node  string
	since time.Time
	seq   uint64
	timer *time.Timer
}

var waiterPool = sync.Pool{New: func() any { return &waiter{done: make(chan error, 1)} }}

// pendingCalls are the calls of this node waiting for acknowledgements, by sequence.
type pendingCalls struct {
	mu   sync.Mutex
	seq  uint64
	m    map[uint64]*waiter
	down bool // the link is down: no call may wait
}

func (p *pendingCalls) add(w *waiter) (uint64, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		return 0, false
	}
	if p.m == nil {
		p.m = make(map[uint64]*waiter)
	}
	p.seq++
	w.seq = p.seq
	p.m[p.seq] = w
	return p.seq, true
}

// failNode answers the calls to node that match with a goneError: the node's inbox is
// gone, so nothing sent to it before will be acknowledged either.
func (p *pendingCalls) failNode(node string, match func(*waiter) bool) {
	p.mu.Lock()
	var gone []*waiter
	for seq, w := range p.m {
		if w.node == node && match(w) {
			gone = append(gone, w)
			delete(p.m, seq)
		}
	}
	p.mu.Unlock()
	for _, w := range gone {
		w.done <- &goneError{node: node, session: true}
	}
}

// failSilent answers the calls that have waited longer than d for a node that live
// does not list (it crashed as they were sent, and NATS could not tell).
func (p *pendingCalls) failSilent(d time.Duration, live func(node string) bool) {
	cutoff := time.Now().Add(-d)
	p.mu.Lock()
	var nodes []string
	for _, w := range p.m {
		if w.since.Before(cutoff) && !slices.Contains(nodes, w.node) && !live(w.node) {
			nodes = append(nodes, w.node)
		}
	}
	p.mu.Unlock()
	for _, node := range nodes {
		p.failNode(node, func(w *waiter) bool { return w.since.Before(cutoff) })
	}
}

// take removes the waiter of seq; nil if it has gone (answered, or given up).
func (p *pendingCalls) take(seq uint64) *waiter {
	p.mu.Lock()
	w := p.m[seq]
	delete(p.m, seq)
	p.mu.Unlock()
	return w
}

// failAll answers every waiting call with err.
func (p *pendingCalls) failAll(err error) {
	p.mu.Lock()
	ws := p.m
	p.m = nil
	p.mu.Unlock()
	for _, w := range ws {
		w.done <- err
	}
}

// setDown makes calls fail at once (down) or wait again.
func (p *pendingCalls) setDown(down bool) {
	p.mu.Lock()
	p.down = down
	p.mu.Unlock()
}

// call sends an inbox frame to node and waits for its acknowledgement.
func (n *Node[T]) call(ctx context.Context, node string, kind byte, sessionID string, msg []byte, reason supersocket.CloseReason, user string) error {
	l := n.link.Load()
	if l == nil || !l.connected() {
		return ErrDisconnected
	}
	w := waiterPool.Get().(*waiter)
	w.node, w.since = node, time.Now()
	seq, ok := l.pending.add(w)
	if !ok {
		waiterPool.Put(w)
		return ErrDisconnected
	}
	fb := getFrame()
	b := append(*fb, kind)
	b = appendUvarint(b, seq)
	b = appendString(b, n.cfg.NodeID)
	b = appendString(b, sessionID)
	switch kind {
	case kindSend:
		b = append(b, msg...)
	case kindClose:
		b = append(b, byte(reason))
	case kindKick:
		b = appendString(b, user)
	}
	*fb = b
	err := l.nc.PublishRequest(l.inboxOf(node), l.ackPrefix+strconv.FormatUint(seq, 10), b)
	putFrame(fb)
	n.stats.msgsOut.Add(1)
	if err != nil {
		if l.pending.take(seq) == nil {
			<-w.done
		}
		waiterPool.Put(w)
		n.stats.errors.Add(1)
		return fmt.Errorf("%w: %v", ErrDisconnected, err)
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
	answered := false
	select {
	case err = <-w.done:
		answered = true
	case <-ctx.Done():
		err = fmt.Errorf("%w: %w", ErrTimeout, ctx.Err())
	case <-timeout:
		err = fmt.Errorf("%w: node %q did not answer within %v", ErrTimeout, node, n.cfg.RequestTimeout)
	}
	if w.timer != nil {
		w.timer.Stop()
	}
	if !answered && l.pending.take(seq) == nil {
		// Given up, but the answer was taken from the table meanwhile: it is on its
		// way, and it is the truth.
		err = <-w.done
	}
	waiterPool.Put(w)
	return err
}

// onInbox handles one frame of this node's inbox and acknowledges it; the
// acknowledgements of a burst go out together, when the inbox is empty.
func (n *Node[T]) onInbox(l *link, m *nats.Msg) {
	n.stats.msgsIn.Add(1)
	r := reader{b: m.Data}
	kind := r.byte()
	seq := r.uvarint()
	from := r.bytes()
	sid := r.string()
	var status byte = ackBadFrame
	if !r.bad {
		switch kind {
		case kindSend:
			status = n.deliver(sid, r.rest())
		case kindClose:
			reason := r.byte()
			if !r.bad {
				status = n.closeLocal(sid, supersocket.CloseReason(reason))
			}
		case kindKick:
			user := r.string()
			if !r.bad {
				status = n.kickLocal(sid, user)
			}
		}
	}
	if status == ackBadFrame {
		n.stats.errors.Add(1)
		n.log.Warn("malformed inbox frame", "subject", m.Subject, "bytes", len(m.Data))
		if len(from) == 0 {
			return
		}
	}
	l.acks.add(from, seq, status)
	// Pending counts the message in hand until this callback returns.
	if pending, _, err := m.Sub.Pending(); err != nil || pending <= 1 || l.acks.full() {
		l.flushAcks()
	}
}

// onAck handles acknowledgements of this node's calls: a batch from the owner, or NATS's
// no-responders status for one call.
func (n *Node[T]) onAck(l *link, m *nats.Msg) {
	tok := m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]
	if tok == "b" {
		r := reader{b: m.Data}
		for len(r.b) > 0 && !r.bad {
			seq := r.uvarint()
			status := r.byte()
			if r.bad {
				break
			}
			if w := l.pending.take(seq); w != nil {
				w.done <- ackErr(status, "")
			}
		}
		if r.bad {
			n.stats.errors.Add(1)
		}
		return
	}
	seq, err := strconv.ParseUint(tok, 10, 64)
	if err != nil || len(m.Data) != 0 || m.Header.Get("Status") != "503" {
		return
	}
	if w := l.pending.take(seq); w != nil {
		node := w.node // w is the caller's again once answered
		w.done <- &goneError{node: node, session: true}
		// Calls sent to that node before this one were either acknowledged already (an
		// acknowledgement precedes the end of its sender's subscription) or never will be.
		l.pending.failNode(node, func(o *waiter) bool { return o.seq < seq })
	}
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
