package supersocket

import (
	"fmt"
	"net"
	"sync/atomic"
)

// handshaking is a connection in its handshakes (TLS, WebSocket, the front door), listed
// in Server.pending from its accept until it becomes a session or fails.
//
// A stop and the connection's own goroutine race for it, and exactly one wins: the stop
// closes the connection (closeHandshakes, waitHandshakes) only while the goroutine has
// not claimed it, and the goroutine opens the session only if it claimed it first. A
// claimed connection is the registry's from then on: the stop finds its session there
// (register closes one that comes after the stop's snapshot), and closes it the way a
// session closes, a WebSocket's close handshake included. Without the one decision, a
// stop could close a connection whose session it had just found in the registry: the
// client, its upgrade answered, saw a reset where its close frame should have been.
type handshaking struct {
	c     net.Conn
	state atomic.Uint32 // handshakeRunning, handshakeClaimed or handshakeStopped
	done  chan struct{} // closed when the goroutine is through with c (see unlist)
}

const (
	handshakeRunning uint32 = iota
	handshakeClaimed        // the goroutine opens its session
	handshakeStopped        // a stop closed it
)

// listHandshake lists c as a connection in its handshakes.
func (srv *Server[T]) listHandshake(c net.Conn) *handshaking {
	h := &handshaking{c: c, done: make(chan struct{})}
	srv.pending.Store(c, h)
	return h
}

// unlist takes h off the list once its goroutine is through with it: its session
// registered, or its handshake failed.
func (srv *Server[T]) unlist(h *handshaking) {
	srv.pending.Delete(h.c)
	close(h.done)
}

// claim reports whether the connection's goroutine may go on to its session: true unless
// a stop closed the connection first. Called before the session is registered, and by a
// WebSocket upgrade before its answer: a client that has its 101 has a session, which a
// stop closes with a close frame, not a reset. Later calls report the first one's answer.
func (h *handshaking) claim() bool {
	return h.state.CompareAndSwap(handshakeRunning, handshakeClaimed) || h.state.Load() == handshakeClaimed
}

// stop closes the connection unless its goroutine has claimed it for a session.
func (h *handshaking) stop() {
	if h.state.CompareAndSwap(handshakeRunning, handshakeStopped) {
		h.c.Close()
	}
}

// raceHooks hold a goroutine where a race between a stop or a Close and a session's own
// goroutine is decided, so that a test can force each order (stop_race_test.go). A
// server has none outside tests: each costs a nil check on a path taken once per
// connection or per close.
type raceHooks struct {
	closing  func() // Session.Close: the reason is set, the transport's wake not yet run
	upgraded func() // a WebSocket upgrade answered, its session not yet registered
	opening  func() // a TCP session made, not yet registered (goroutine engine)
	stopping func() // a stop has closed the handshakes in progress, not yet its sessions
}

// errStoppedInHandshake: a stop closed the connection before its session was opened.
var errStoppedInHandshake = fmt.Errorf("closed by a stop during its handshakes: %w", ErrNotRunning)
