package supersocket

import (
	"errors"
	"net"
	"net/netip"
	"sync"

	"github.com/supersocket-go/supersocket/internal/pool"
)

// UDP engine.
//
// Each UDP listener runs one read loop. A datagram is routed to its session, keyed by the
// sender's address or, with Config.UDPSessionKey, by an ID it carries; a new key makes a
// new session (subject to AllowConnect and MaxConnections). The datagram is copied into
// the session's bounded inbox, and the session's goroutine handles its datagrams one at a
// time in arrival order, each through the session's filter, with the same events as TCP.
// Replies are written straight to the socket, to the address the session's latest
// datagram came from.

// udpSocket is one bound UDP listener.
type udpSocket[T any] struct {
	srv   *Server[T]
	pc    *net.UDPConn
	stats *listenerStats
}

// udpRoute is where a UDP session's replies go: the socket and address of its latest
// datagram. It is replaced, never mutated, when the client roams.
type udpRoute[T any] struct {
	sock *udpSocket[T]
	addr netip.AddrPort
}

// udpTable finds UDP sessions by key.
type udpTable[T any] struct {
	mu     sync.RWMutex
	byAddr map[netip.AddrPort]*Session[T]
	byID   map[string]*Session[T]
}

// tune applies SocketReadBuffer and SocketWriteBuffer to the shared socket: for UDP the
// receive buffer is what absorbs bursts.
func (u *udpSocket[T]) tune() {
	cfg := &u.srv.cfg
	var errs []error
	if cfg.SocketReadBuffer > 0 {
		errs = append(errs, u.pc.SetReadBuffer(cfg.SocketReadBuffer))
	}
	if cfg.SocketWriteBuffer > 0 {
		errs = append(errs, u.pc.SetWriteBuffer(cfg.SocketWriteBuffer))
	}
	if err := errors.Join(errs...); err != nil {
		u.srv.log.Warn("udp socket options not applied", "addr", u.pc.LocalAddr().String(), "err", err)
	}
}

// receive is the socket's read loop, one goroutine per UDP listener, until the server
// stops.
func (u *udpSocket[T]) receive(r *run) {
	srv := u.srv
	// One byte more than the largest request, so an oversized datagram is seen as such
	// rather than silently truncated to a valid-looking one.
	buf := make([]byte, min(srv.cfg.MaxRequestLength+1, 1<<16))
	for {
		n, addr, err := u.pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || srv.door.draining.Load() {
				return // closed, or draining (drain.go): the socket is left to other readers
			}
			select {
			case <-r.quit:
				return
			default:
			}
			srv.log.Debug("udp read failed", "addr", u.pc.LocalAddr().String(), "err", err)
			continue
		}
		srv.counters.bytesIn.Add(uint64(n))
		addr = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
		u.deliver(r, buf[:n], addr)
	}
}

// deliver routes one datagram to its session's inbox.
func (u *udpSocket[T]) deliver(r *run, d []byte, from netip.AddrPort) {
	srv := u.srv
	dg := srv.udpSession(r, u, d, from)
	if dg == nil {
		return
	}
	if rt := dg.route.Load(); rt.addr != from || rt.sock != u {
		dg.route.Store(&udpRoute[T]{sock: u, addr: from})
	}
	cp := pool.Get(len(d))
	copy(cp, d)
	select {
	case dg.inbox <- cp:
	default:
		pool.Put(cp)
		srv.counters.datagramsDropped.Add(1)
	}
}

// udpSession returns the transport of the open session a datagram belongs to, creating
// the session if needed, or nil when the datagram is to be dropped.
func (srv *Server[T]) udpSession(r *run, u *udpSocket[T], d []byte, from netip.AddrPort) *datagrams[T] {
	t := &srv.udp
	var id []byte
	keyed := srv.cfg.UDPSessionKey != nil
	if keyed {
		var ok bool
		if id, ok = srv.cfg.UDPSessionKey(d); !ok || len(id) == 0 {
			srv.counters.datagramsDropped.Add(1)
			return nil
		}
	}
	t.mu.RLock()
	var s *Session[T]
	if keyed {
		s = t.byID[string(id)]
	} else {
		s = t.byAddr[from]
	}
	t.mu.RUnlock()
	if s == nil || s.closed.Load() != 0 {
		if s = srv.newUDPSession(r, u, from, id, keyed, false, nil); s == nil {
			return nil
		}
	}
	return s.tr.(*datagrams[T])
}

// newUDPSession admits and starts a session for a new key. Two datagrams racing for the
// same new key get the same session.
// Outbound sessions (Connect) skip AllowConnect. The caller holds a count of r.wg, or
// runMu for reading with the server running, so adding the session's goroutine is safe.
func (srv *Server[T]) newUDPSession(r *run, u *udpSocket[T], from netip.AddrPort, id []byte, keyed, outbound bool, init func(*Session[T])) *Session[T] {
	t := &srv.udp
	t.mu.Lock()
	defer t.mu.Unlock()
	var s *Session[T]
	if keyed {
		s = t.byID[string(id)]
	} else {
		s = t.byAddr[from]
	}
	if s != nil && s.closed.Load() == 0 {
		return s
	}
	remote := net.UDPAddrFromAddrPort(from)
	if !outbound {
		srv.counters.accepted.Add(1)
		u.stats.accepted.Add(1)
	}
	ip, why := srv.admit(remote, outbound)
	if why != nil {
		if !outbound {
			srv.refused(remote, why)
		}
		return nil
	}
	s = newSession(srv, r)
	s.ip = ip
	if !outbound {
		s.listener = u.stats
		u.stats.sessions.Add(1)
	}
	dg := &datagrams[T]{
		s:     s,
		inbox: make(chan []byte, srv.cfg.DatagramQueueSize),
		quit:  make(chan struct{}),
		key:   from,
		byID:  keyed,
	}
	dg.route.Store(&udpRoute[T]{sock: u, addr: from})
	s.tr = dg
	if keyed {
		s.id = string(id)
		if t.byID == nil {
			t.byID = make(map[string]*Session[T])
		}
		t.byID[s.id] = s
	} else {
		if t.byAddr == nil {
			t.byAddr = make(map[netip.AddrPort]*Session[T])
		}
		t.byAddr[from] = s
	}
	srv.register(s)
	if init != nil {
		init(s)
	}
	r.wg.Add(1)
	go s.own()
	return s
}

func (t *udpTable[T]) remove(dg *datagrams[T]) {
	t.mu.Lock()
	if dg.byID {
		if t.byID[dg.s.id] == dg.s {
			delete(t.byID, dg.s.id)
		}
	} else if t.byAddr[dg.key] == dg.s {
		delete(t.byAddr, dg.key)
	}
	t.mu.Unlock()
}
