package supersocket

import (
	"errors"
	"io"
	"os"
	"time"

	"github.com/supersocket-go/supersocket/internal/netread"
	"github.com/supersocket-go/supersocket/internal/pool"
)

// maxReadSize bounds how far a session's read buffer grows for a busy stream.
const maxReadSize = 64 << 10

// parkAfter is how long a TCP session waits for bytes, with nothing pending, before it
// parks: its goroutine lets go of it. Handling requests grows a goroutine's stack (to 4 KiB and
// more), and the runtime keeps that stack while the goroutine waits. On Linux the session
// then parks: its goroutine exits and the server's parker starts a new one when the
// socket is readable (see netread.Parker); elsewhere it moves its wait to a fresh
// goroutine, on the smallest stack.
//
// A quarter second keeps a burst of new connections from holding a grown stack each for
// long, which is what the process's resident memory remembers after the burst, and is
// still far longer than the gaps of a busy session, so steady traffic never parks
// (docs/performance.md has the measurements behind the choice).
const parkAfter = 250 * time.Millisecond

// serve implements transport: it reads and dispatches until the session closes (true)
// or has been idle for parkAfter (false: the session is parked, or continues on a fresh
// goroutine, which holds the run count added here).
func (st *stream[T]) serve() bool {
	s := st.s
	if st.rd == nil {
		st.rd = netread.New(st.rw)
		st.readSize = int32(s.srv.cfg.ReceiveBufferSize)
	}
	if st.read() {
		return true
	}
	s.run.wg.Add(1) // the calling goroutine still holds a count: safe
	if !s.srv.park(st) {
		go s.resume()
	}
	return false
}

// read runs the read loop: netread's Serve, driving the stream as its Handler
// (BeforeRead, ReadSize, Received below); read handles what ends a Serve. It returns true
// once the session is closed, false when it has been idle for parkAfter.
func (st *stream[T]) read() (closed bool) {
	s := st.s
	st.armed = false
	var pending []byte
	if b := st.initial; b != nil {
		// Bytes read before the session existed: the client's first frames, after a
		// WebSocket upgrade, or its first bytes, read by the front door (frontdoor.go).
		st.initial = nil
		if st.ws != nil {
			pending = st.ws.received(b, int(st.readSize))
		} else {
			pending = s.dispatch(b, int(st.readSize))
		}
		if st.held {
			st.flush()
		}
	}
	for s.closed.Load() == 0 || st.closeWait() {
		var err error
		pending, err = st.rd.Serve(st, pending)
		if st.upgrade != nil && s.closed.Load() == 0 {
			// StartTLS: it runs here, outside Serve, since the handshake reads the
			// connection.
			st.startTLS(pending)
			pending = nil
			continue
		}
		if err == nil {
			continue // stopped by BeforeRead: closed
		}
		if st.closeWait() {
			if st.ws.staleDeadline(err) {
				continue
			}
			// The client's close frame did not come within CloseTimeout, or the
			// connection ended first.
			st.ws.endCloseWait()
			break
		}
		if s.srv.door.draining.Load() && s.closed.Load() == 0 && errors.Is(err, os.ErrDeadlineExceeded) {
			st.drainRead(len(pending)) // drain.go: close if drained, else read on
			continue
		}
		if st.armed && len(pending) == 0 && s.closed.Load() == 0 && errors.Is(err, os.ErrDeadlineExceeded) {
			st.conn.SetReadDeadline(time.Time{})
			if s.closed.Load() != 0 {
				break
			}
			st.idleWait = true
			return false
		}
		st.readFailed(err)
	}
	pool.Put(pending)
	return true
}

// startTLS performs a pending StartTLS: the replies so far have left in plaintext; the
// rest of the stream is TLS, bytes already received (pending, given back to the pool)
// included. A failed handshake closes the session. Out of read's frame, which stays
// below every request's handler.
//
//go:noinline
func (st *stream[T]) startTLS(pending []byte) {
	s := st.s
	err := st.upgradeTLS(pending)
	pool.Put(pending)
	if err != nil {
		s.srv.log.Info("starttls failed; closing session", "session", s.id, "err", err)
		s.Close(CloseSocketError)
		return
	}
	st.rd = netread.New(st.rw)
	st.armed = false
	s.lastActive.Store(time.Now().UnixNano())
}

// BeforeRead implements netread.Handler. It stops the read loop once the session closes
// or a StartTLS is pending, and keeps the idle deadline that ends an idle session's
// goroutine (see parkAfter); that deadline is what bounds the wait (netread.Reader.Serve).
func (st *stream[T]) BeforeRead(pending int) (stop, bounded bool) {
	s := st.s
	if st.closeWait() {
		// A WebSocket close handshake: its deadline bounds the wait, but the client
		// may end the connection (EOF) instead of answering, and that must not wait
		// for the deadline: not bounded, so the reader looks again after a short read.
		return false, false
	}
	if s.closed.Load() != 0 || st.upgrade != nil {
		return true, false
	}
	if s.srv.door.draining.Load() {
		return st.drainBeforeRead(pending) // drain.go
	}
	// Only a raw TCP session goes idle: its reader holds no buffer while it waits. Asked
	// each time round, since StartTLS replaces the reader.
	switch idle := pending == 0; {
	case idle && !st.idleWait && (!st.armed || s.lastActive.Load()-st.armedAt > int64(s.srv.parkAfter/2)) && st.rd.ReleasesIdleBuffer():
		// Re-armed at most every parkAfter/2 of activity, not on every read: setting a
		// deadline costs a timer update. The session goes idle parkAfter/2 to parkAfter after
		// the last request.
		st.armedAt = s.lastActive.Load()
		st.conn.SetReadDeadline(time.Unix(0, st.armedAt).Add(s.srv.parkAfter))
		st.armed = true
		if s.closed.Load() != 0 { // Close's wake-up deadline must win
			st.conn.SetReadDeadline(aLongTimeAgo)
		}
	case st.armed && !idle:
		// Bytes of an unfinished request: no idle deadline while waiting for the rest.
		st.conn.SetReadDeadline(time.Time{})
		st.armed = false
		if s.closed.Load() != 0 {
			st.conn.SetReadDeadline(aLongTimeAgo)
		}
	}
	return false, st.armed
}

// ReadSize implements netread.Handler: the next read's buffer size, which adapts to the
// stream (see Received).
func (st *stream[T]) ReadSize() int { return int(st.readSize) }

// Received implements netread.Handler: it counts n new bytes, adapts the read size, and
// dispatches every complete request in pending; replies held for the batch leave
// together at its end.
func (st *stream[T]) Received(pending []byte, n, room int) (rest []byte, stop bool) {
	s := st.s
	st.idleWait = false
	min0, size := s.srv.cfg.ReceiveBufferSize, int(st.readSize)
	// The read size doubles when a read fills its room, and halves when what the buffer
	// holds (the last read and the unfinished request before it) is under an eighth of
	// it: judged by the read alone, the tail of a request that straddled two reads would
	// shrink the size straight back, and every such request would cost two reads.
	switch {
	case n >= room:
		size = min(2*size, max(min0, maxReadSize))
	case len(pending) < size/8:
		size = max(size/2, min0)
	}
	st.readSize = int32(size)
	s.srv.counters.bytesIn.Add(uint64(n))
	if st.ws != nil {
		rest = st.ws.received(pending, size)
	} else {
		rest = s.dispatch(pending, size)
	}
	if st.held {
		st.flush()
	}
	return rest, s.closed.Load() != 0 && !st.closeWait() || st.upgrade != nil
}

// closeWait reports whether a closed WebSocket session reads on: it waits for the
// client's close frame, or for its Close's wake to decide whether to (closeWaits).
func (st *stream[T]) closeWait() bool {
	return st.ws != nil && st.s.closed.Load() != 0 && st.ws.closeWaits()
}

// readFailed closes the session for a read error. After Close the read was woken on
// purpose, and the reason is already set.
func (st *stream[T]) readFailed(err error) {
	s := st.s
	if s.closed.Load() != 0 {
		return
	}
	if errors.Is(err, io.EOF) {
		// The peer may only have shut its sending side: let the writer finish first
		// (bounded by CloseLinger). A reset that the writer's failed write consumed also
		// reads as EOF here; waiting lets the writer report it as SocketError.
		if linger := s.srv.cfg.CloseLinger; linger > 0 {
			st.conn.SetWriteDeadline(time.Now().Add(linger))
			st.queue.WaitIdle()
		}
		s.Close(CloseClientClosing)
		return
	}
	s.srv.log.Debug("read failed", "session", s.id, "err", err)
	s.Close(CloseSocketError)
}
