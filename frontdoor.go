package supersocket

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"syscall"

	"github.com/supersocket-go/supersocket/internal/pool"
	"github.com/supersocket-go/supersocket/internal/websocket"
)

// The front door: what a TCP listener with ListenerConfig.Proxy or ListenerConfig.Detect
// does with a connection before its session exists, on the connection's own goroutine:
//
//	[PROXY header: trusted peers only] ─► [detect: ClientHello │ GET … HTTP/1.1 │ other]
//	    ─► TLS? ─► [detect again inside TLS] ─► WebSocket upgrade? ─► session (raw bytes
//	       read so far go to its filter first)
//
// Each step is bounded (HeaderTimeout, DetectConfig.Timeout, HandshakeTimeout) and reads
// into one pooled buffer no larger than its own limit; bytes read past a step are handed
// to the next (as a prefix the next step reads first). The connection is listed in
// srv.pending throughout, so a stop closes it; a failure closes it without a session and
// counts it in Stats.HandshakeFailures. Listeners with neither option take the shorter
// path of accept.go.

// frontListener is a listener's front door, ready to use; nil for a listener without one.
type frontListener struct {
	proxy  *proxyListener // nil: no PROXY header
	detect *DetectConfig  // nil: the listener's protocols are fixed
}

// doorState is a server's front-door state (Server.door).
type doorState struct {
	listeners []*frontListener // per Config.Listeners entry; nil for none
	// given marks the listeners given as a net.Listener or net.PacketConn that a Start
	// has used: a stop closes them, so they serve one run (guarded by Server.mu).
	given []bool
	// draining is set while Drain runs (drain.go).
	draining atomic.Bool
}

// init makes each listener's front door from a checked Config.
func (d *doorState) init(ls []ListenerConfig) {
	d.listeners = make([]*frontListener, len(ls))
	d.given = make([]bool, len(ls))
	for i, l := range ls {
		if l.Proxy == nil && l.Detect == nil {
			continue
		}
		fl := &frontListener{detect: l.Detect}
		if l.Proxy != nil {
			fl.proxy = newProxyListener(*l.Proxy)
		}
		d.listeners[i] = fl
	}
}

// frontDefaults validates a listener's front-door options and fills in their defaults;
// config.go's withDefaults calls it.
func (l *ListenerConfig) frontDefaults(field string) error {
	if l.Proxy != nil {
		if isUDP(l.Network) {
			return configError(field+".Proxy", "the PROXY protocol needs a TCP listener, not %s", l.Network)
		}
		p, err := l.Proxy.withDefaults(field + ".Proxy")
		if err != nil {
			return err
		}
		l.Proxy = &p
	}
	if l.Detect != nil {
		switch {
		case isUDP(l.Network):
			return configError(field+".Detect", "detection needs a TCP listener, not %s", l.Network)
		case l.TLS == nil && l.WebSocket == nil:
			return configError(field+".Detect", "nothing to detect: set TLS, WebSocket, or both, beside the raw protocol")
		case l.Detect.Timeout < 0:
			return configError(field+".Detect.Timeout", "must not be negative, got %v", l.Detect.Timeout)
		}
		d := *l.Detect
		if d.Timeout == 0 {
			d.Timeout = DefaultDetectTimeout
		}
		l.Detect = &d
	}
	return nil
}

// serveFront is serveConn for a listener with a front door. Like a handshake, the front
// door grows the goroutine's stack: the session starts on a fresh goroutine.
func (srv *Server[T]) serveFront(r *run, c net.Conn, lt *tlsListener, ws *WebSocketConfig, ls *listenerStats, ip netip.Addr) {
	if s := srv.openFront(r, c, lt, ws, ls, ip); s != nil {
		go s.own()
	}
}

// openFront is openConn for a listener with a front door: the steps above, then the
// session; nil when a step failed (the connection is closed and its run count and
// connection slot released).
func (srv *Server[T]) openFront(r *run, c net.Conn, lt *tlsListener, ws *WebSocketConfig, ls *listenerStats, ip netip.Addr) *Session[T] {
	h := srv.listHandshake(c)
	s, rw, err := srv.frontDoor(r, h, lt, ws, ls, &ip)
	srv.unlist(h)
	if err == nil {
		return s
	}
	var refused errRefused
	if !errors.As(err, &refused) {
		srv.counters.handshakeFailures.Add(1)
		srv.log.Debug("front door failed; no session", "remote", c.RemoteAddr().String(), "err", err)
	}
	srv.release(ip)
	if herr := (*websocket.HandshakeError)(nil); errors.As(err, &herr) {
		refuseUpgrade(rw, herr)
	}
	c.Close()
	r.wg.Done()
	return nil
}

// frontDoor runs a connection's front door and opens its session. *ip is its admission,
// which a PROXY header replaces with the client's. rw is what the steps reached (where
// a refused WebSocket upgrade is answered).
func (srv *Server[T]) frontDoor(r *run, h *handshaking, lt *tlsListener, ws *WebSocketConfig, ls *listenerStats, ip *netip.Addr) (s *Session[T], rw net.Conn, err error) {
	c := h.c
	if srv.State() == StateStopping {
		return nil, c, ErrNotRunning
	}
	fl := ls.front
	var conn net.Conn = c // the session's socket: c, or c naming the PROXY header's client
	var pre []byte        // bytes read and not yet used, pooled
	defer func() {
		if err != nil {
			pool.Put(pre)
		}
	}()
	if p := fl.proxy; p != nil {
		trusted := p.trusts(c.RemoteAddr())
		h, rest, err := p.readProxy(c, trusted)
		if err != nil {
			return nil, c, err
		}
		pre = rest
		if h != nil {
			info, client := proxyInfo(h, c.RemoteAddr())
			if client != nil {
				if err := srv.admitClient(client, ip); err != nil {
					return nil, c, err
				}
			}
			conn = &frontConn{Conn: c, remote: client, info: info}
		}
	}
	proto := protoRaw
	switch {
	case fl.detect != nil:
		if proto, pre, err = detect(conn, pre, lt != nil, ws != nil, detectLimit(ws), fl.detect.Timeout); err != nil {
			return nil, c, fmt.Errorf("detect: %w", err)
		}
	case lt != nil:
		proto = protoTLS
	case ws != nil:
		proto = protoWebSocket
	}
	rw = conn
	var tc *tls.Conn
	if proto == protoTLS {
		if tc, err = srv.handshake(prefixed(conn, &pre), lt.outer); err != nil {
			return nil, c, fmt.Errorf("tls: %w", err)
		}
		rw, proto = tc, protoRaw
		switch {
		case ws != nil && fl.detect != nil:
			if proto, pre, err = detect(tc, nil, false, true, detectLimit(ws), fl.detect.Timeout); err != nil {
				return nil, rw, fmt.Errorf("detect inside tls: %w", err)
			}
		case ws != nil:
			proto = protoWebSocket
		}
	}
	var hs wsHandshake
	if proto == protoWebSocket {
		pc := &prefixConn{Conn: rw, prefix: pre}
		var initial []byte
		if hs, initial, err = srv.upgradeWebSocket(pc, ws, h); err != nil {
			return nil, rw, err
		}
		// Bytes the upgrade did not read from the prefix follow what it returned.
		rest := joinPooled(initial, pc.prefix, srv.cfg.ReceiveBufferSize)
		pool.Put(pre)
		pre = rest
	}
	if !h.claim() {
		return nil, rw, errStoppedInHandshake
	}
	s = srv.openStream(r, conn, tc, *ip, ls, hs, nil)
	if len(pre) > 0 {
		srv.counters.bytesIn.Add(uint64(len(pre)))
		s.tcp.initial = pre // the owner hands them to the WebSocket layer or the filter first
	} else {
		pool.Put(pre)
	}
	pre = nil
	return s, rw, nil
}

// detectLimit bounds the bytes detection reads: an upgrade's request line fits in its
// head's limit.
func detectLimit(ws *WebSocketConfig) int {
	if ws != nil {
		return ws.MaxHeaderBytes
	}
	return 16
}

// prefixed returns c reading *pre first, and takes *pre over (nil afterwards); c itself
// when *pre is empty.
func prefixed(c net.Conn, pre *[]byte) net.Conn {
	b := *pre
	*pre = nil
	if len(b) == 0 {
		pool.Put(b)
		return c
	}
	// The TLS layer keeps the prefixConn under it for the session's life; the prefix is
	// copied out of the pooled buffer (a ClientHello, a few hundred bytes).
	p := &prefixConn{Conn: c, prefix: append([]byte(nil), b...)}
	pool.Put(b)
	return p
}

// joinPooled returns a pooled buffer holding a (pooled, taken over) then b; nil when
// both are empty.
func joinPooled(a, b []byte, minCap int) []byte {
	switch {
	case len(b) == 0 && len(a) == 0:
		pool.Put(a)
		return nil
	case len(b) == 0:
		return a
	}
	out := append(pool.Get(max(len(a)+len(b), minCap))[:0], a...)
	pool.Put(a)
	return append(out, b...)
}

// frontConn is the socket of a session whose connection came with a PROXY header: its
// RemoteAddr is the client's address, and it keeps what the header said. It hands the
// session's reader, writer and parker the socket's own descriptor (SyscallConn) and
// half-closes, so such a session reads, writes and parks like any other.
type frontConn struct {
	net.Conn
	remote net.Addr // the client's address; nil: the connection's own
	info   *ProxyInfo
}

func (f *frontConn) RemoteAddr() net.Addr {
	if f.remote != nil {
		return f.remote
	}
	return f.Conn.RemoteAddr()
}

// SyscallConn implements syscall.Conn.
func (f *frontConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := f.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errors.New("supersocket: no raw connection")
}

func (f *frontConn) CloseRead() error {
	if hc, ok := f.Conn.(halfCloser); ok {
		return hc.CloseRead()
	}
	return nil
}

func (f *frontConn) CloseWrite() error {
	if hc, ok := f.Conn.(halfCloser); ok {
		return hc.CloseWrite()
	}
	return nil
}

// readUntil reads c into a pooled buffer until done says the bytes suffice, limit bytes
// have arrived, or a read fails (its error is returned with the bytes). The buffer is
// nil-safe for putBack and keepBytes.
func readUntil(c net.Conn, limit int, done func([]byte) bool) ([]byte, error) {
	return readMore(c, nil, limit, done)
}

// readMore is readUntil after buf's bytes (pooled, taken over).
func readMore(c net.Conn, buf []byte, limit int, done func([]byte) bool) ([]byte, error) {
	if cap(buf) < limit {
		bigger := append(pool.Get(limit)[:0], buf...)
		pool.Put(buf)
		buf = bigger
	}
	for len(buf) < limit {
		n, err := c.Read(buf[len(buf):limit])
		buf = buf[:len(buf)+n]
		if n > 0 && done(buf) {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
	return buf, nil
}

// putBack gives a pooled buffer back and returns nil.
func putBack(b []byte) []byte {
	pool.Put(b)
	return nil
}

// keepBytes returns b, or nil with b back in the pool when it holds nothing.
func keepBytes(b []byte) []byte {
	if len(b) == 0 {
		return putBack(b)
	}
	return b
}

// restOf moves what follows b's first n bytes to its front.
func restOf(b []byte, n int) []byte { return b[:copy(b, b[n:])] }

func isTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }
func isEOF(err error) bool     { return errors.Is(err, io.EOF) }
