package supersocket

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/supersocket-go/supersocket/internal/pool"
	"github.com/supersocket-go/supersocket/internal/websocket"
)

// acceptLoop accepts on one listener until the server stops. A session's own work starts
// on its goroutine; the accept path only counts, filters and refuses, so a slow client
// cannot stall accepting.
func (srv *Server[T]) acceptLoop(r *run, ln net.Listener, lt *tlsListener, ws *WebSocketConfig, ls *listenerStats) {
	var backoff time.Duration
	for {
		if srv.acceptRate != nil && !srv.acceptRate.wait(r.quit) {
			return
		}
		c, err := ln.Accept()
		if err != nil {
			if !srv.acceptFailed(r, ln.Addr(), err, &backoff) {
				return
			}
			continue
		}
		backoff = 0
		srv.counters.accepted.Add(1)
		ls.accepted.Add(1)
		ip, why := srv.admitConn(c, ls)
		if why != nil {
			srv.refuse(c, why)
			continue
		}
		r.wg.Add(1)
		go srv.serveConn(r, c, lt, ws, ls, ip)
	}
}

// acceptFailed handles an accept error: false when the listener is done (the run stops,
// or the listener was closed); otherwise, out of file descriptors and the like, it has
// backed off as net/http does rather than spin, and the caller keeps accepting when the
// pressure eases.
func (srv *Server[T]) acceptFailed(r *run, addr net.Addr, err error, backoff *time.Duration) (retry bool) {
	select {
	case <-r.quit:
		return false
	default:
	}
	if errors.Is(err, net.ErrClosed) {
		return false
	}
	*backoff = min(max(2**backoff, 5*time.Millisecond), time.Second)
	srv.log.Warn("accept failed; retrying", "addr", addr.String(), "err", err, "retry_in", *backoff)
	select {
	case <-r.quit:
		return false
	case <-time.After(*backoff):
	}
	return true
}

// serveConn is an accepted connection's goroutine: its handshakes, if the listener
// serves TLS or WebSocket, then the session's first owner.
func (srv *Server[T]) serveConn(r *run, c net.Conn, lt *tlsListener, ws *WebSocketConfig, ls *listenerStats, ip netip.Addr) {
	srv.tune(c)
	if ls.front != nil {
		srv.serveFront(r, c, lt, ws, ls, ip) // PROXY headers, detection: frontdoor.go
		return
	}
	if lt == nil && ws == nil {
		srv.openStream(r, c, nil, ip, ls, wsHandshake{}, nil).own()
		return
	}
	// A handshake (TLS, WebSocket) grows the goroutine's stack, and a goroutine keeps its
	// stack: the session starts on a fresh one, which this goroutine's count of the run
	// passes to.
	if s := srv.openConn(r, c, lt, ws, ls, ip); s != nil {
		go s.own()
	}
}

// openConn runs an accepted connection's handshakes and opens its session; nil when a
// handshake failed (the connection is closed and its run count released).
func (srv *Server[T]) openConn(r *run, c net.Conn, lt *tlsListener, ws *WebSocketConfig, ls *listenerStats, ip netip.Addr) *Session[T] {
	// Listed until the session is registered, so that a stop either closes the
	// connection here or finds the session in the registry; done tells a forced stop
	// that this goroutine is through with it.
	h := srv.listHandshake(c)
	s, rw, err := srv.handshakes(r, h, lt, ws, ls, ip)
	srv.unlist(h)
	if err != nil {
		// Counted first, answered second: once the client sees the refusal, Stats and
		// the MaxConnections slot reflect it.
		srv.counters.handshakeFailures.Add(1)
		srv.release(ip)
		srv.log.Debug("handshake failed; no session", "remote", c.RemoteAddr().String(), "err", err)
		var herr *websocket.HandshakeError
		if errors.As(err, &herr) {
			refuseUpgrade(rw, herr)
		}
		c.Close()
		r.wg.Done()
		return nil
	}
	return s
}

// handshakes runs a connection's TLS and WebSocket handshakes, as its listener asks, and
// opens its session once they succeed, unless a stop closed it first. rw is what the
// handshakes reached: the socket, or TLS over it (where a refused upgrade is answered).
func (srv *Server[T]) handshakes(r *run, h *handshaking, lt *tlsListener, ws *WebSocketConfig, ls *listenerStats, ip netip.Addr) (s *Session[T], rw net.Conn, err error) {
	c := h.c
	var tc *tls.Conn
	rw = c
	if lt != nil {
		if tc, err = srv.handshake(c, lt.outer); err != nil {
			return nil, rw, fmt.Errorf("tls: %w", err)
		}
		rw = tc
	}
	var hs wsHandshake
	var initial []byte
	if ws != nil {
		if hs, initial, err = srv.upgradeWebSocket(rw, ws, h); err != nil {
			return nil, rw, err
		}
	}
	if !h.claim() {
		pool.Put(initial)
		return nil, rw, errStoppedInHandshake
	}
	return srv.openStream(r, c, tc, ip, ls, hs, initial), rw, nil
}

// openStream makes and registers the session of a TCP connection; tc is its TLS layer,
// if any, over c; ls is the listener that accepted it (nil for Connect); hs what its
// WebSocket handshake kept (hs.cfg nil for none), and initial the bytes that came after
// the upgrade request, if any.
func (srv *Server[T]) openStream(r *run, c net.Conn, tc *tls.Conn, ip netip.Addr, ls *listenerStats, hs wsHandshake, initial []byte) *Session[T] {
	var s *Session[T]
	if hs.cfg != nil {
		s = newWSSession(srv, r, &hs)
		s.tcp.initial = initial
	} else {
		s = newSession(srv, r)
	}
	s.ip = ip
	s.bindStream(c, tc)
	if ls != nil {
		s.listener = ls
		ls.sessions.Add(1)
	}
	if h := srv.hooks; h != nil && h.opening != nil {
		h.opening()
	}
	srv.register(s)
	return s
}

// register adds a new session to the registry and the live count. A session registered
// while a stop is under way closes at once: the stop may have taken its snapshot of the
// registry already. So does one registered after its run's stop has ended (a Stop does
// not wait for a connection accepted just before it whose goroutine, or loop runner,
// had yet to register it): the server's state no longer says so, its run does.
func (srv *Server[T]) register(s *Session[T]) {
	srv.live.Add(1)
	srv.sessions.add(s)
	if srv.State() == StateStopping || s.run.ended() {
		s.Close(CloseServerShutdown)
	}
}

// tune applies the socket options of the Config. Keep-alive is set by the listener.
func (srv *Server[T]) tune(c net.Conn) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return
	}
	var errs []error
	if srv.cfg.Nagle {
		errs = append(errs, tc.SetNoDelay(false))
	}
	if n := srv.cfg.SocketReadBuffer; n > 0 {
		errs = append(errs, tc.SetReadBuffer(n))
	}
	if n := srv.cfg.SocketWriteBuffer; n > 0 {
		errs = append(errs, tc.SetWriteBuffer(n))
	}
	if err := errors.Join(errs...); err != nil {
		srv.log.Debug("socket options not applied", "remote", c.RemoteAddr().String(), "err", err)
	}
}

// refuse closes a connection that never became a session: it is counted, logged and told
// to OnRefused. Existing sessions are not touched.
func (srv *Server[T]) refuse(c net.Conn, why error) {
	c.Close()
	srv.refused(c.RemoteAddr(), why)
}

// refused counts, logs and reports a refusal.
func (srv *Server[T]) refused(remote net.Addr, why error) {
	srv.counters.refused.Add(1)
	srv.log.Debug("connection refused", "remote", remote.String(), "why", why)
	if srv.refusals.shouldWarn(time.Now()) {
		srv.log.Warn("refusing connections", "why", why, "refused_total", srv.counters.refused.Load())
	}
	if hook := srv.cfg.OnRefused; hook != nil {
		defer func() {
			if p := recover(); p != nil {
				srv.log.Error("OnRefused panicked", "panic", p)
			}
		}()
		hook(remote, why)
	}
}
