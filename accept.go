package supersocket

import (
	"errors"
	"net"
	"time"
)

// acceptLoop accepts on one listener until the server stops. A session's own work starts
// on its goroutine; the accept path only counts, filters and refuses, so a slow client
// cannot stall accepting.
func (srv *Server[T]) acceptLoop(ln net.Listener, lt *tlsListener, ls *listenerStats) {
	defer srv.wg.Done()
	var backoff time.Duration
	for {
		if srv.acceptRate != nil && !srv.acceptRate.wait(srv.quit) {
			return
		}
		c, err := ln.Accept()
		if err != nil {
			select {
			case <-srv.quit:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off as net/http does rather than
			// spin, and keep accepting when the pressure eases.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			srv.log.Warn("accept failed; retrying", "addr", ln.Addr().String(), "err", err, "retry_in", backoff)
			select {
			case <-srv.quit:
				return
			case <-time.After(backoff):
			}
			continue
		}
		backoff = 0
		srv.counters.accepted.Add(1)
		ls.accepted.Add(1)
		ip, why := srv.admit(c.RemoteAddr(), false)
		if why != nil {
			srv.refuse(c, why)
			continue
		}
		srv.wg.Add(1)
		go srv.serveConn(c, lt, ls, ip)
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
