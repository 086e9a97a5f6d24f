package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/supersocket-go/supersocket/filter"
	"github.com/supersocket-go/supersocket/internal/frame"
	"github.com/supersocket-go/supersocket/internal/netread"
	"github.com/supersocket-go/supersocket/internal/pool"
	"github.com/supersocket-go/supersocket/internal/sendq"
)

// readSize is the size of the pooled buffer one stream read fills.
const readSize = 4 << 10

// aLongTimeAgo is a deadline in the past: setting it wakes a blocked read or write.
var aLongTimeAgo = time.Unix(1, 0)

// errStopped ends a read loop that stopped because the Conn is closing.
var errStopped = errors.New("client: stopped")

// errAfterGoAhead: the server sent bytes after STARTTLS's go-ahead, before the handshake
// (plaintext an attacker could have injected).
var errAfterGoAhead = errors.New("bytes after the STARTTLS reply, before the handshake")

// link is one connection of a Conn, from dial to close. A Conn with Reconnect goes through
// several; waiters and the send queue belong to one, so nothing crosses to the next.
type link struct {
	c      *Conn
	conn   net.Conn
	udp    bool
	frames frame.Stepper // the receive filter; used by the reader only
	q      sendq.Queue   // TCP only
	ws     *wsLink       // the WebSocket layer, for a ws:// or wss:// Addr (ws_link.go)
	down   atomic.Bool   // set once the link has ended
	// tls is the TLS layer StartTLS put over conn (starttls.go); switching, the reader's
	// own, is a STARTTLS reply it has taken and must act on before reading on.
	tls       atomic.Pointer[tls.Conn]
	switching *switchTLS

	// turn serialises registering a FIFO waiter with queueing its bytes.
	turn chan struct{}

	mu    sync.Mutex
	fifo  []*waiter // FIFO waiters, oldest first, from fifo[head]
	head  int
	ids   map[uint64]*waiter // waiters by id (ReplyID mode)
	dead  error              // set when the link ends: the error late registrations get
	cause error              // a write failure that ended the link
}

// waiter is a Request waiting for its reply.
type waiter struct {
	ch      chan result // capacity 1: the one result is sent without blocking
	id      uint64
	state   int         // guarded by link.mu
	upgrade *tlsUpgrade // a StartTLS request's
}

// waiter states.
const (
	waiting   = iota
	answered  // its result is in ch
	abandoned // its Request gave up; in FIFO mode it stays in line as a tombstone
)

type result struct {
	msg Message
	err error
}

// waiters recycles waiters. A waiter goes back only from await, after its one result was
// received: by then the link holds no reference to it. An abandoned waiter is left to the
// garbage collector.
var waiters = sync.Pool{New: func() any { return &waiter{ch: make(chan result, 1)} }}

func newWaiter(id uint64) *waiter {
	w := waiters.Get().(*waiter)
	w.id, w.state, w.upgrade = id, waiting, nil
	return w
}

// take receives w's result and recycles w.
func (w *waiter) take() (Message, error) {
	r := <-w.ch
	waiters.Put(w)
	return r.msg, r.err
}

func newLink(c *Conn, nc net.Conn, f filter.Filter) *link {
	l := &link{c: c, conn: nc, udp: c.cfg.udp(), turn: make(chan struct{}, 1)}
	l.frames.Use(f, c.cfg.MaxRequestLength)
	l.q.Init(c.cfg.SendQueueSize, c.cfg.SendQueueBytes, l)
	if c.cfg.ReplyID != nil {
		l.ids = make(map[uint64]*waiter)
	}
	return l
}

// send queues (TCP, WebSocket) or writes (UDP) one message. wait ≤ 0: do not wait for
// room.
func (l *link) send(parts [][]byte, wait time.Duration) error {
	switch {
	case l.udp:
		return l.sendDatagram(parts)
	case l.ws != nil:
		return l.sendWS(parts, wait)
	}
	return l.queued(l.q.Wait(parts, wait))
}

// queued is the error of a send for the send queue's.
func (l *link) queued(err error) error {
	switch err {
	case nil:
		return nil
	case sendq.ErrClosed:
		return l.c.unavailable()
	case sendq.ErrTimeout:
		return ErrSendTimeout
	default:
		return ErrSendQueueFull
	}
}

// StartWriter implements sendq.Owner: a goroutine drains the queue.
func (l *link) StartWriter() {
	l.c.writers.Add(1)
	go l.write()
}

// WriteFailed implements sendq.Owner: write reports the error itself.
func (l *link) WriteFailed(error) {}

// write drains the send queue; it runs only while there is something to write.
func (l *link) write() {
	defer l.c.writers.Done()
	if err := l.q.Drain(l.stream(), nil); err != nil {
		l.fail(fmt.Errorf("write: %w", err))
	}
}

// sendDatagram writes parts as one datagram.
func (l *link) sendDatagram(parts [][]byte) error {
	if l.down.Load() {
		return l.c.unavailable()
	}
	var b []byte
	if len(parts) == 1 {
		b = parts[0]
	} else {
		n := 0
		for _, p := range parts {
			n += len(p)
		}
		b = pool.Get(n)[:0]
		for _, p := range parts {
			b = append(b, p...)
		}
		defer pool.Put(b)
	}
	if _, err := l.conn.Write(b); err != nil {
		if l.down.Load() {
			return l.c.unavailable()
		}
		return fmt.Errorf("client: send: %w", err)
	}
	return nil
}

// fail ends the link for a cause found off the reader goroutine (a write error): it wakes
// the reader, which reports the cause.
func (l *link) fail(cause error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cause == nil {
		l.cause = cause
	}
	l.conn.SetReadDeadline(aLongTimeAgo)
}

// close is Conn.Close's part: the queue takes no more and what it holds is flushed; then
// the client half-closes (FIN, or TLS close_notify) and the reader goes on reading, replies
// included, until the server closes its side. Both steps are bounded by linger. Half-closing
// rather than closing matters: closing a socket with the server's bytes still arriving
// resets the connection, and a server that sees a reset may drop requests it has not
// handled yet. With linger < 0, or over UDP, queued bytes are dropped and the reader is
// stopped at once. A WebSocket closes with its close handshake instead (closeWS).
func (l *link) close(linger time.Duration) {
	if l.udp || linger < 0 {
		l.q.Close()
		l.q.Discard()
		l.conn.SetReadDeadline(aLongTimeAgo)
		return
	}
	if l.ws != nil {
		l.closeWS(linger)
		return
	}
	deadline := time.Now().Add(linger)
	if l.q.Close() {
		l.conn.SetWriteDeadline(deadline)
		l.q.WaitIdle()
	}
	if l.failed() == nil { // everything queued was written
		if cw, ok := l.stream().(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil && l.readOn(deadline) {
			return
		}
	}
	l.conn.SetReadDeadline(aLongTimeAgo)
}

// readOn lets the reader read on until deadline, for the server's end of a graceful
// close, and reports true, unless a failure has woken the reader already: fail and this
// step are ordered by mu.
func (l *link) readOn(deadline time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cause == nil {
		l.conn.SetReadDeadline(deadline)
		return true
	}
	return false
}

// failed returns the cause fail recorded, if any.
func (l *link) failed() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cause
}

// end closes the link once its reader has stopped, and fails the requests still waiting.
// graceful: Close was called and has flushed the queue (or is flushing it, within its
// deadline); otherwise queued bytes are dropped and a write in progress is cut short.
func (l *link) end(graceful bool, cause error) {
	l.down.Store(true)
	l.q.Close() // no writer starts after this, so Conn.writers.Wait cannot race an Add
	if !graceful {
		l.q.Discard()
		l.conn.SetWriteDeadline(aLongTimeAgo)
	}
	l.q.WaitIdle()
	l.conn.Close()
	l.q.Discard()
	err := ErrClosed
	if !graceful {
		err = fmt.Errorf("%w: %w", ErrConnectionLost, cause)
	}
	l.mu.Lock()
	l.dead = err
	for _, w := range l.fifo[l.head:] {
		l.answerLocked(w, result{err: err})
	}
	clear(l.fifo)
	l.fifo, l.head = nil, 0
	for id, w := range l.ids {
		l.answerLocked(w, result{err: err})
		delete(l.ids, id)
	}
	l.mu.Unlock()
}

// answerLocked hands r to w unless w gave up.
func (l *link) answerLocked(w *waiter, r result) {
	if w.state == waiting {
		w.state = answered
		w.ch <- r
	}
}

// register lines w up for a reply.
func (l *link) register(w *waiter, byID bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.dead != nil {
		return l.c.unavailable()
	}
	if byID {
		if _, dup := l.ids[w.id]; dup {
			return fmt.Errorf("%w: %d", ErrDuplicateID, w.id)
		}
		l.ids[w.id] = w
		return nil
	}
	if l.head > 0 && l.head >= len(l.fifo)/2 {
		// Move the line to the front, so that a pipeline that never drains does not grow
		// the slice for ever; amortised, each waiter is moved at most once.
		n := copy(l.fifo, l.fifo[l.head:])
		clear(l.fifo[n:])
		l.fifo, l.head = l.fifo[:n], 0
	}
	l.fifo = append(l.fifo, w)
	return nil
}

// unregister takes w out of line after its bytes could not be queued. In FIFO mode it is
// still the last in line (the turn is held), unless the link ended meanwhile.
func (l *link) unregister(w *waiter, byID bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if w.state != waiting {
		return
	}
	w.state = abandoned
	if byID {
		if l.ids[w.id] == w {
			delete(l.ids, w.id)
		}
		return
	}
	if n := len(l.fifo); n > l.head && l.fifo[n-1] == w {
		l.fifo[n-1] = nil
		l.fifo = l.fifo[:n-1]
	}
}

// await waits for w's result or the end of ctx.
func (l *link) await(ctx context.Context, w *waiter, byID bool) (Message, error) {
	select {
	case r := <-w.ch:
		waiters.Put(w)
		return r.msg, r.err
	case <-ctx.Done():
	}
	l.mu.Lock()
	if w.state == waiting {
		w.state = abandoned
		if byID && l.ids[w.id] == w {
			delete(l.ids, w.id)
		}
		l.mu.Unlock()
		return Message{}, requestErr(ctx.Err())
	}
	l.mu.Unlock()
	// The result came as ctx ended: it is the caller's.
	return w.take()
}

// deliver hands one message to its Request or pushes it. It reports false when the Conn
// closed while a push waited for room.
func (l *link) deliver(req filter.Request) bool {
	m := own(req)
	cfg := &l.c.cfg
	if cfg.ReplyID != nil {
		id, ok := cfg.ReplyID(m)
		if !ok {
			return l.c.push(m)
		}
		l.mu.Lock()
		w := l.ids[id]
		if w != nil {
			delete(l.ids, id)
			l.answerLocked(w, result{msg: m})
		}
		l.mu.Unlock()
		if w == nil {
			l.c.log.Debug("reply dropped: no request waits for its id", "id", id)
		}
		return true
	}
	if cfg.IsPush == nil || !cfg.IsPush(m) {
		l.mu.Lock()
		if l.head < len(l.fifo) {
			w := l.fifo[l.head]
			l.fifo[l.head] = nil
			l.head++
			if w.upgrade != nil && w.state == waiting {
				// STARTTLS's go-ahead (or not): the reader acts on it before reading on,
				// and answers then.
				l.switching = &switchTLS{w: w, msg: m}
				l.mu.Unlock()
				return true
			}
			gaveUp := w.state == abandoned
			l.answerLocked(w, result{msg: m})
			l.mu.Unlock()
			if gaveUp {
				l.c.log.Debug("late reply dropped: its request gave up", "bytes", len(m.Frame))
			}
			return true
		}
		l.mu.Unlock()
	}
	return l.c.push(m)
}

// serve reads and decodes until the link ends, and returns why.
func (l *link) serve() error {
	switch {
	case l.udp:
		return l.serveDatagrams()
	case l.ws != nil:
		return l.serveWS()
	}
	return l.serveStream()
}

func (l *link) serveStream() error { return l.readStream(nil, l.process) }

// readStream reads the connection until the link ends and returns why, handing process
// the bytes pending (at first, pending itself, if any) after each read. process returns
// what it left pending, with room to read more, as process and processWS do.
func (l *link) readStream(pending []byte, process func([]byte) ([]byte, error)) error {
	defer func() {
		if cap(pending) > 0 {
			pool.Put(pending)
		}
	}()
	if len(pending) > 0 {
		var err error
		if pending, err = process(pending); err != nil {
			return l.stopCause(err)
		}
	}
	rd := netread.New(l.conn)
	for {
		before := len(pending)
		var err error
		pending, err = rd.Read(pending, readSize)
		if len(pending) > before {
			var perr error
			if pending, perr = process(pending); perr != nil {
				return l.stopCause(perr)
			}
		}
		if sw := l.switching; sw != nil {
			l.switching = nil
			if err != nil {
				cause := l.readCause(err)
				l.answer(sw.w, result{msg: sw.msg, err: fmt.Errorf("%w: %w", ErrConnectionLost, cause)})
				return cause
			}
			if rd, err = l.startTLS(sw, rd); err != nil {
				return err
			}
		}
		if err != nil {
			return l.readCause(err)
		}
	}
}

// process delivers every complete frame in buf and returns what is left: nil when all
// was consumed (the buffer goes back to the pool), otherwise the unconsumed bytes at the
// front of a buffer with room for more.
func (l *link) process(buf []byte) ([]byte, error) {
	data := buf
	for len(data) > 0 {
		req, n, err := l.decode(data)
		if err != nil {
			return buf, err
		}
		if n == 0 {
			break
		}
		if !l.deliver(req) {
			return buf, errStopped
		}
		data = data[n:]
		if l.switching != nil && len(data) > 0 {
			l.answer(l.switching.w, result{msg: l.switching.msg, err: protocolErr(errAfterGoAhead)})
			l.switching = nil
			return buf, protocolErr(errAfterGoAhead)
		}
	}
	if len(data) == 0 {
		pool.Put(buf)
		return nil, nil
	}
	return l.frames.Keep(buf, data, 0), nil
}

// decode runs the filter once through the stepper, which checks what it returns (the
// same rules as the server's) and moves to the filter's chosen successor after a frame.
// A refusal is a protocol error (ErrProtocol); a filter that panics or breaks its
// contract is a bug, reported as such.
func (l *link) decode(data []byte) (req filter.Request, n int, err error) { return l.step(data, false) }

// finish is decode for the bytes a message (a WebSocket message) ends with that the
// filter could not complete: its Finisher takes them as the last request, or the message
// is malformed.
func (l *link) finish(data []byte) (req filter.Request, n int, err error) { return l.step(data, true) }

func (l *link) step(data []byte, finish bool) (req filter.Request, n int, err error) {
	var panicked any
	func() {
		defer func() { panicked = recover() }()
		if finish {
			req, n, err = l.frames.Finish(data)
		} else {
			req, n, err = l.frames.Next(data)
		}
	}()
	switch {
	case panicked != nil:
		return req, 0, fmt.Errorf("client: the receive filter panicked: %v", panicked)
	case errors.Is(err, frame.ErrFilterBug):
		return req, 0, fmt.Errorf("client: %w", err)
	case err != nil:
		return req, 0, protocolErr(err)
	case n > 0:
		l.frames.Advance()
	}
	return req, n, nil
}

func protocolErr(err error) error { return fmt.Errorf("%w: %w", ErrProtocol, err) }

// serveDatagrams reads datagrams until the link ends; each must hold whole frames.
func (l *link) serveDatagrams() error {
	limit := l.c.cfg.MaxRequestLength
	buf := pool.Get(limit + 1)
	defer pool.Put(buf)
	for {
		n, err := l.conn.Read(buf)
		if n > limit {
			return l.stopCause(protocolErr(fmt.Errorf("%w: datagram over MaxRequestLength %d", filter.ErrTooLarge, limit)))
		}
		for data := buf[:n]; len(data) > 0; {
			req, k, perr := l.decode(data)
			if perr == nil && k == 0 {
				perr = protocolErr(fmt.Errorf("%w: a %d-byte datagram ends inside a frame (%d bytes left over)",
					filter.ErrMalformed, n, len(data)))
			}
			if perr == nil && !l.deliver(req) {
				perr = errStopped
			}
			if perr != nil {
				return l.stopCause(perr)
			}
			data = data[k:]
		}
		if err != nil {
			return l.readCause(err)
		}
	}
}

// stopCause is the cause of an end the reader decided on: a protocol error, or a stop
// because the Conn is closing.
func (l *link) stopCause(err error) error {
	if err == errStopped {
		return ErrClosed
	}
	return err
}

// readCause names why a read failed: a write failure that woke it, Close, the server
// closing the connection, or the read error.
func (l *link) readCause(err error) error {
	switch cause := l.failed(); {
	case cause != nil:
		return cause
	case l.c.ctx.Err() != nil:
		return ErrClosed
	case errors.Is(err, io.EOF):
		return fmt.Errorf("the server closed the connection: %w", err)
	}
	return fmt.Errorf("read: %w", err)
}
