package supersocket

import (
	"net"
	"time"
)

// transport is how a session's bytes travel: a TCP stream, plain or TLS (stream), or the
// datagrams of a shared UDP socket (datagrams). The session's life around it — begin,
// dispatch, the close protocol, finish — is the same for every transport (lifecycle.go);
// a new transport (WebSocket messages, an event-loop engine) implements these methods
// and nothing else.
//
// serve, hold, drain and release run on the session's owner (the goroutine that runs its
// handlers at the time); the other methods are safe from any goroutine.
type transport[T any] interface {
	// serve reads the peer and hands what arrives to the session's dispatch until the
	// session is closed (it returns true: the owner finishes the session) or until it
	// has been idle long enough to give up its goroutine (false: the transport has
	// arranged for another goroutine to continue with Session.resume, holding a count of
	// the session's run, and the caller must not touch the session again).
	serve() (closed bool)
	// hold is told, during a dispatch, that more requests of the same read follow, so
	// replies may be held and written together when the batch ends.
	hold()
	// send queues or writes one message (its parts copied), waiting up to wait for room
	// when wait > 0; it returns nil, ErrSessionClosed, ErrSendQueueFull or
	// ErrSendTimeout.
	send(parts [][]byte, wait time.Duration) error
	// wake is step 1 of the close protocol, after the reason was set: no more sends,
	// queued bytes flushed within linger (dropped when linger < 0), and the owner woken
	// so that it sees the close.
	wake(linger time.Duration)
	// cut ends the session at once for a forced close: queued bytes dropped, a write in
	// progress ended, and the peer told (the connection shut down) without closing the
	// socket, which only release does. It never blocks.
	cut()
	// drain is the owner's first step of finish: it waits for a write in progress to
	// end, bounded by the linger deadline that wake set, and stops routing new input to
	// the session.
	drain()
	// release closes what the session owns of the socket; the owner calls it once, after
	// drain and after the session was counted out.
	release()
	// drainLook is Server.Drain's look at the session, on the drain's goroutine (first:
	// its first pass): a transport whose session waits for input has it look at itself
	// (drainRead; the epoll engine's check), one that cannot wait closes the session
	// here once it is quiet (UDP).
	drainLook(first bool)
	remoteAddr() net.Addr
	localAddr() net.Addr
}
