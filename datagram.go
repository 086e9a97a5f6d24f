package supersocket

import (
	"errors"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/supersocket-go/supersocket/internal/pool"
	"github.com/supersocket-go/supersocket/internal/sendq"
)

// datagrams is the UDP transport: the socket's read loop (udpSocket.receive) puts each
// of the session's datagrams in its bounded inbox, and the session's goroutine handles
// them one at a time, in arrival order, each a unit that holds whole requests (see
// Session.dispatchMessage).
// Replies are written straight to the socket, one datagram per message, to the address
// the latest datagram came from.
type datagrams[T any] struct {
	s     *Session[T]
	route atomic.Pointer[udpRoute[T]]
	inbox chan []byte   // pooled copies of datagrams, oldest first
	quit  chan struct{} // closed by wake
	key   netip.AddrPort
	byID  bool
}

func (dg *datagrams[T]) remoteAddr() net.Addr { return net.UDPAddrFromAddrPort(dg.route.Load().addr) }
func (dg *datagrams[T]) localAddr() net.Addr  { return dg.route.Load().sock.pc.LocalAddr() }

// serve handles datagrams until the session closes; a UDP session never goes idle
// without its goroutine.
func (dg *datagrams[T]) serve() bool {
	s := dg.s
	for s.closed.Load() == 0 {
		select {
		case d := <-dg.inbox:
			s.dispatchMessage(d)
			pool.Put(d)
		case <-dg.quit:
		}
	}
	for {
		select {
		case d := <-dg.inbox:
			pool.Put(d)
		default:
			return true
		}
	}
}

// hold does nothing: each reply is its own datagram, written at once.
func (dg *datagrams[T]) hold() {}

// send writes parts as one datagram to the session's current address. It does not
// queue: the datagram is in the kernel's hands, or refused, when it returns.
func (dg *datagrams[T]) send(parts [][]byte, _ time.Duration) error {
	s := dg.s
	if s.closed.Load() != 0 {
		return ErrSessionClosed
	}
	// Gathered into a pooled buffer even for one part, so that buffers passed to Send
	// never escape to the heap through the socket call.
	b := pool.Get(sendq.Size(parts))[:0]
	for _, p := range parts {
		b = append(b, p...)
	}
	defer pool.Put(b)
	r := dg.route.Load()
	n, err := r.sock.pc.WriteToUDPAddrPort(b, r.addr)
	if err != nil {
		if errors.Is(err, net.ErrClosed) {
			return ErrSessionClosed
		}
		return err
	}
	s.wrote(int64(n))
	return nil
}

// wake ends serve's wait; there is nothing queued to linger for.
func (dg *datagrams[T]) wake(time.Duration) { close(dg.quit) }

// cut does nothing more than wake: the socket is shared and nothing is queued.
func (dg *datagrams[T]) cut() {}

// drain forgets the session's key, so that the next datagram from its peer makes a new
// session.
func (dg *datagrams[T]) drain() { dg.s.srv.udp.remove(dg) }

// release does nothing: the socket belongs to the listener.
func (dg *datagrams[T]) release() {}
