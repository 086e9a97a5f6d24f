package supersocket

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// ConnectOption configures Server.Connect.
type ConnectOption func(*connectOptions)

type connectOptions struct {
	network string
	tls     *tls.Config
	local   string
}

// WithNetwork sets the network to dial: "tcp", "tcp4", "tcp6", "udp", "udp4" or "udp6".
// Default: the server's Mode.
func WithNetwork(network string) ConnectOption {
	return func(o *connectOptions) { o.network = network }
}

// WithTLS makes a TCP Connect a TLS client with cfg; the handshake completes before
// Connect returns. Set cfg.ServerName when the address is not the certificate's name.
func WithTLS(cfg *tls.Config) ConnectOption {
	return func(o *connectOptions) { o.tls = cfg }
}

// WithLocalAddr binds the outgoing TCP connection to a local host:port.
func WithLocalAddr(addr string) ConnectOption {
	return func(o *connectOptions) { o.local = addr }
}

// Connect dials addr and returns the connection as a session of this server
// (SuperSocket's ActiveConnect): the same filter, handlers, registry, counters, idle
// clearing and MaxConnections as accepted sessions, and Connected runs first as for any
// session. Gateways use it to hold connections to back-end servers.
//
// Over UDP the session is reached through the server's first UDP listener, keyed by the
// target's address, so the back end's replies are routed to it; this needs address-keyed
// UDP sessions (no UDPSessionKey). AllowConnect is not consulted: the application chose
// the peer. Connect fails with ErrNotRunning unless the server is running, and with
// ErrMaxConnections when the server is full. Safe from any goroutine, handlers included.
func (srv *Server[T]) Connect(ctx context.Context, addr string, opts ...ConnectOption) (*Session[T], error) {
	return srv.ConnectWith(ctx, addr, nil, opts...)
}

// ConnectWith is Connect that runs init on the new session before any of its handlers
// (Connected first), so the application can mark an outbound session in its Data — a
// gateway's back-end link, say. For UDP, init runs only if ConnectWith creates the
// session (an existing session for the address is returned as is). A nil init is
// Connect.
func (srv *Server[T]) ConnectWith(ctx context.Context, addr string, init func(*Session[T]), opts ...ConnectOption) (*Session[T], error) {
	o := connectOptions{network: srv.cfg.Mode}
	for _, opt := range opts {
		opt(&o)
	}
	switch o.network {
	case "tcp", "tcp4", "tcp6":
	case "udp", "udp4", "udp6":
		return srv.connectUDP(o, addr, init)
	default:
		return nil, fmt.Errorf("supersocket: connect: network %q is not tcp, tcp4, tcp6, udp, udp4 or udp6", o.network)
	}
	if srv.State() != StateRunning {
		return nil, ErrNotRunning
	}
	d := net.Dialer{KeepAlive: srv.cfg.KeepAlive}
	if o.local != "" {
		la, err := net.ResolveTCPAddr(o.network, o.local)
		if err != nil {
			return nil, fmt.Errorf("supersocket: connect: local address: %w", err)
		}
		d.LocalAddr = la
	}
	c, err := d.DialContext(ctx, o.network, addr)
	if err != nil {
		return nil, fmt.Errorf("supersocket: connect: %w", err)
	}
	srv.tune(c)
	raw := c
	var tc *tls.Conn
	if o.tls != nil {
		tc = tls.Client(c, o.tls)
		hctx, cancel := context.WithTimeout(ctx, srv.cfg.HandshakeTimeout)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("supersocket: connect: tls handshake with %s: %w", addr, err)
		}
	}
	ip, why := srv.admit(c.RemoteAddr(), true)
	if why != nil {
		c.Close()
		return nil, why
	}
	r := srv.addWorker()
	if r == nil {
		srv.release(ip)
		c.Close()
		return nil, ErrNotRunning
	}
	s := srv.openStream(r, raw, tc, ip, nil, wsHandshake{}, nil)
	if init != nil {
		init(s) // before the session's goroutine starts: before Connected
	}
	go s.own()
	return s, nil
}

// addWorker counts one more goroutine of the current run, and returns the run, if the
// server is running; nil otherwise. Goroutines started outside the run's loops go
// through it, so none starts after a stop began.
func (srv *Server[T]) addWorker() *run {
	srv.runMu.RLock()
	defer srv.runMu.RUnlock()
	if srv.State() != StateRunning {
		return nil
	}
	srv.run.wg.Add(1)
	return srv.run
}

func (srv *Server[T]) connectUDP(o connectOptions, addr string, init func(*Session[T])) (*Session[T], error) {
	if srv.cfg.UDPSessionKey != nil {
		return nil, errors.New("supersocket: connect: UDP sessions are keyed by UDPSessionKey; Connect needs address-keyed sessions")
	}
	ua, err := net.ResolveUDPAddr(o.network, addr)
	if err != nil {
		return nil, fmt.Errorf("supersocket: connect: %w", err)
	}
	to := ua.AddrPort()
	to = netip.AddrPortFrom(to.Addr().Unmap(), to.Port())
	srv.runMu.RLock()
	defer srv.runMu.RUnlock()
	if srv.State() != StateRunning {
		return nil, ErrNotRunning
	}
	if len(srv.udpSocks) == 0 {
		return nil, errors.New("supersocket: connect: the server has no UDP listener to send from")
	}
	s := srv.newUDPSession(srv.run, srv.udpSocks[0], to, nil, false, true, init)
	if s == nil {
		return nil, ErrMaxConnections
	}
	return s, nil
}
