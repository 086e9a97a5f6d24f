package supersocket

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/supersocket-go/supersocket/internal/proxyproto"
)

// ProxyConfig makes a TCP listener (plain, TLS or WebSocket) read the PROXY protocol
// header, version 1 or 2, that a load balancer (HAProxy, nginx's stream module, AWS NLB,
// GCP's TCP proxy) sends before a connection's first byte to name the client. The header
// is read on the connection's own goroutine before anything else (before the TLS
// handshake), bounded by HeaderTimeout and MaxHeaderBytes, and only from TrustedFrom. The
// session's RemoteAddr is then the client's address, and so are the addresses that
// AllowConnect, MaxConnectionsPerIP and the logs see; Session.Proxy has the rest of the
// header. A header that is malformed, too long, or not complete within HeaderTimeout
// closes the connection before any session exists (Stats.HandshakeFailures, logged at
// debug level).
type ProxyConfig struct {
	// TrustedFrom lists the proxies' addresses: CIDR prefixes ("10.0.0.0/8") or single
	// IPs ("192.0.2.7"). Required: a listener that took a header from anyone would let any
	// client claim any address.
	TrustedFrom []string
	// Untrusted says what happens to a connection from a peer outside TrustedFrom.
	// Default ProxyRefuse.
	Untrusted ProxyPolicy
	// Optional lets a trusted peer connect without a header: it is then served under its
	// own address. Default false: a trusted peer's connection must start with a header,
	// as HAProxy's send-proxy does.
	Optional bool
	// HeaderTimeout bounds the wait for a complete header (and, where a header may or may
	// not come, for enough bytes to tell). Default 5s.
	HeaderTimeout time.Duration
	// MaxHeaderBytes bounds a version 2 header, TLVs included (version 1's is at most 107
	// bytes); a longer one closes the connection, read no further than its first 16
	// bytes. Default 4096; at most 65551.
	MaxHeaderBytes int
}

// ProxyPolicy is what a PROXY listener does with a connection from an untrusted peer.
type ProxyPolicy int

const (
	// ProxyRefuse closes it at accept, before reading a byte: refused, counted in
	// Stats.Refused, told to OnRefused with ErrProxyUntrusted.
	ProxyRefuse ProxyPolicy = iota
	// ProxyServeDirect serves it as a direct client, under its own address; if it
	// starts with a PROXY header anyway (a client trying to claim another address), it
	// is closed before a session exists. To tell, the listener waits for the first bytes
	// (up to HeaderTimeout), so a protocol where the server speaks first waits that long.
	ProxyServeDirect
)

// PROXY defaults.
const (
	DefaultProxyHeaderTimeout  = 5 * time.Second
	DefaultProxyMaxHeaderBytes = 4096
)

// ErrProxyUntrusted is the refusal of a connection to a PROXY listener from a peer
// outside ProxyConfig.TrustedFrom (with ProxyRefuse), as given to Config.OnRefused.
var ErrProxyUntrusted = errors.New("supersocket: connection refused: not from a trusted proxy")

// ProxyInfo is what a PROXY header said about a session's connection (Session.Proxy).
type ProxyInfo struct {
	// Version is the header's version: 1 or 2.
	Version int
	// Local reports the LOCAL command (version 1: "PROXY UNKNOWN"): the proxy's own
	// connection, such as a health check. The session keeps the connection's addresses.
	Local bool
	// Source is the client's address, which the session's RemoteAddr returns, and
	// Destination the address the client connected to at the proxy; nil when the header
	// carries none (LOCAL, UNKNOWN, UNSPEC). For a Unix socket family they are
	// *net.UnixAddr.
	Source, Destination net.Addr
	// Proxy is the connection's own peer: the proxy's address.
	Proxy net.Addr
	// TLVs are a version 2 header's Type-Length-Value entries, in order (a CRC32C entry,
	// when present, has been verified).
	TLVs []ProxyTLV
}

// ProxyTLV is one Type-Length-Value entry of a version 2 PROXY header.
type ProxyTLV struct {
	Type  byte
	Value []byte
}

// TLV types of the PROXY protocol specification and of the cloud load balancers.
const (
	ProxyTLVALPN      = proxyproto.TypeALPN      // the ALPN protocol the client negotiated with the proxy
	ProxyTLVAuthority = proxyproto.TypeAuthority // the host name the client asked for (SNI)
	ProxyTLVUniqueID  = proxyproto.TypeUniqueID  // an opaque connection ID
	ProxyTLVSSL       = proxyproto.TypeSSL       // the client's TLS details at the proxy (sub-TLVs)
	ProxyTLVNetNS     = proxyproto.TypeNetNS     // the proxy's network namespace
	ProxyTLVGCP       = proxyproto.TypeGCP       // Google Cloud: the Private Service Connect connection ID
	ProxyTLVAWS       = proxyproto.TypeAWS       // AWS: subtype byte 0x01, then the VPC endpoint ID
	ProxyTLVAzure     = proxyproto.TypeAzure     // Azure: subtype byte 0x01, then the private endpoint's link ID
)

// TLV returns the value of the header's first entry of type t.
func (p *ProxyInfo) TLV(t byte) ([]byte, bool) {
	for _, e := range p.TLVs {
		if e.Type == t {
			return e.Value, true
		}
	}
	return nil, false
}

// ALPN returns the protocol the client negotiated with the proxy (ProxyTLVALPN), or "".
func (p *ProxyInfo) ALPN() string {
	v, _ := p.TLV(ProxyTLVALPN)
	return string(v)
}

// Authority returns the host name the client asked the proxy for (ProxyTLVAuthority),
// or "".
func (p *ProxyInfo) Authority() string {
	v, _ := p.TLV(ProxyTLVAuthority)
	return string(v)
}

// AWSVPCEndpointID returns the VPC endpoint ID an AWS Network Load Balancer names for a
// connection through PrivateLink (ProxyTLVAWS, subtype 0x01), or "".
func (p *ProxyInfo) AWSVPCEndpointID() string {
	v, ok := p.TLV(ProxyTLVAWS)
	if !ok || len(v) < 1 || v[0] != 0x01 {
		return ""
	}
	return string(v[1:])
}

// Proxy returns what the PROXY header of the session's connection said, or nil when the
// session's connection came without one. Safe from any goroutine; the result must not be
// modified.
func (s *Session[T]) Proxy() *ProxyInfo {
	if st, ok := s.tr.(*stream[T]); ok {
		if fc, ok := st.conn.(*frontConn); ok {
			return fc.info
		}
	}
	return nil
}

// proxyListener is a listener's PROXY configuration, ready to use.
type proxyListener struct {
	ProxyConfig
	trusted []netip.Prefix
}

// withDefaults validates a listener's ProxyConfig and fills in its defaults.
func (p ProxyConfig) withDefaults(field string) (ProxyConfig, error) {
	if len(p.TrustedFrom) == 0 {
		return p, configError(field+".TrustedFrom", "required: the proxies' addresses (CIDR prefixes or IPs); from anyone, a header would let any client claim any address")
	}
	for i, s := range p.TrustedFrom {
		if _, err := parseTrusted(s); err != nil {
			return p, configError(fmt.Sprintf("%s.TrustedFrom[%d]", field, i), "%v", err)
		}
	}
	switch p.Untrusted {
	case ProxyRefuse, ProxyServeDirect:
	default:
		return p, configError(field+".Untrusted", "unknown policy %d", p.Untrusted)
	}
	switch {
	case p.HeaderTimeout < 0:
		return p, configError(field+".HeaderTimeout", "must not be negative, got %v", p.HeaderTimeout)
	case p.HeaderTimeout == 0:
		p.HeaderTimeout = DefaultProxyHeaderTimeout
	}
	switch {
	case p.MaxHeaderBytes < 0 || p.MaxHeaderBytes > proxyproto.MaxV2:
		return p, configError(field+".MaxHeaderBytes", "must be from 0 (the default, %d) to %d, got %d", DefaultProxyMaxHeaderBytes, proxyproto.MaxV2, p.MaxHeaderBytes)
	case p.MaxHeaderBytes == 0:
		p.MaxHeaderBytes = DefaultProxyMaxHeaderBytes
	case p.MaxHeaderBytes < proxyproto.MaxV1:
		p.MaxHeaderBytes = proxyproto.MaxV1 // a version 1 header may always take its 107 bytes
	}
	p.TrustedFrom = append([]string(nil), p.TrustedFrom...)
	return p, nil
}

// parseTrusted reads a CIDR prefix or a single IP.
func parseTrusted(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return p, fmt.Errorf("%q is not a CIDR prefix or an IP", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a CIDR prefix or an IP", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func newProxyListener(p ProxyConfig) *proxyListener {
	pl := &proxyListener{ProxyConfig: p}
	for _, s := range p.TrustedFrom {
		pr, _ := parseTrusted(s) // checked by withDefaults
		pl.trusted = append(pl.trusted, pr)
	}
	return pl
}

// trusts reports whether a peer may send a header.
func (p *proxyListener) trusts(peer net.Addr) bool {
	ip := addrIP(peer)
	if !ip.IsValid() {
		return false
	}
	for _, pr := range p.trusted {
		if pr.Contains(ip) {
			return true
		}
	}
	return false
}

// admitConn is the accept path's admission of a connection (see admit). On a PROXY
// listener a trusted proxy's connection only takes its slot under MaxConnections here:
// AllowConnect and MaxConnectionsPerIP see the client's address once its header has
// been read (admitClient); an untrusted peer is refused, or admitted as a direct client.
func (srv *Server[T]) admitConn(c net.Conn, ls *listenerStats) (netip.Addr, error) {
	if fl := ls.front; fl != nil && fl.proxy != nil {
		switch {
		case fl.proxy.trusts(c.RemoteAddr()):
			return srv.admit(c.RemoteAddr(), true)
		case fl.proxy.Untrusted == ProxyRefuse:
			return netip.Addr{}, ErrProxyUntrusted
		}
	}
	return srv.admit(c.RemoteAddr(), false)
}

// admitClient admits the client a trusted proxy's header named, in place of the slot the
// connection took at accept (held by *ip, which it replaces on success). A refusal is
// counted and told as at accept, and the slot stays for the caller to release.
func (srv *Server[T]) admitClient(client net.Addr, ip *netip.Addr) error {
	srv.active.Add(-1) // the accept's slot: admit takes one again, with the client's address
	got, why := srv.admit(client, false)
	if why != nil {
		srv.active.Add(1)
		srv.refused(client, why)
		return errRefused{why}
	}
	*ip = got
	return nil
}

// errRefused is a front door's refusal of a client, counted already as a refusal rather
// than a failed handshake.
type errRefused struct{ why error }

func (e errRefused) Error() string { return e.why.Error() }
func (e errRefused) Unwrap() error { return e.why }

// readProxy reads what a PROXY listener expects at the front of a connection from peer:
// from a trusted proxy a header (or, with Optional, maybe none); from an untrusted peer
// served directly, no header. It returns the header (nil for none) and the bytes read
// after it, in a pooled buffer (nil for none): never more than MaxHeaderBytes in all.
func (p *proxyListener) readProxy(c net.Conn, trusted bool) (*proxyproto.Header, []byte, error) {
	limit := p.MaxHeaderBytes
	if !trusted {
		limit = 16 // enough to tell a signature; what comes is the client's
	}
	c.SetReadDeadline(time.Now().Add(p.HeaderTimeout))
	defer c.SetReadDeadline(time.Time{})
	buf, err := readUntil(c, limit, func(b []byte) bool {
		if proxyproto.Signature(b) != proxyproto.Yes || !trusted {
			return proxyproto.Signature(b) != proxyproto.Maybe
		}
		h, _, err := proxyproto.Parse(b, limit)
		return h != nil || err != nil
	})
	sig := proxyproto.Signature(buf)
	switch {
	case !trusted && sig == proxyproto.Yes:
		return nil, putBack(buf), errors.New("proxy: a PROXY header from an untrusted peer")
	case !trusted || p.Optional && sig != proxyproto.Yes:
		if err != nil && !isTimeout(err) && len(buf) == 0 {
			return nil, putBack(buf), err
		}
		return nil, keepBytes(buf), nil
	case sig != proxyproto.Yes:
		if err != nil {
			return nil, putBack(buf), fmt.Errorf("proxy: no header: %w", err)
		}
		return nil, putBack(buf), errors.New("proxy: no PROXY header from a trusted proxy")
	}
	h, n, perr := proxyproto.Parse(buf, limit)
	switch {
	case perr != nil:
		return nil, putBack(buf), fmt.Errorf("proxy: %w", perr)
	case h == nil && err != nil:
		return nil, putBack(buf), fmt.Errorf("proxy: header incomplete after %d bytes: %w", len(buf), err)
	case h == nil:
		return nil, putBack(buf), fmt.Errorf("proxy: header incomplete after %d bytes", len(buf))
	case h.Command == proxyproto.Proxy && h.Transport == proxyproto.Datagram:
		return nil, putBack(buf), errors.New("proxy: a datagram header on a stream listener")
	}
	// The header's values alias buf, which goes back to the pool: copy what is kept.
	for i := range h.TLVs {
		h.TLVs[i].Value = append([]byte(nil), h.TLVs[i].Value...)
	}
	return h, keepBytes(restOf(buf, n)), nil
}

// proxyInfo turns a parsed header into the session's view of it; client is the address
// the session is to report (nil: the connection's own).
func proxyInfo(h *proxyproto.Header, peer net.Addr) (info *ProxyInfo, client net.Addr) {
	info = &ProxyInfo{Version: h.Version, Local: h.Command == proxyproto.Local, Proxy: peer}
	for _, t := range h.TLVs {
		info.TLVs = append(info.TLVs, ProxyTLV{Type: t.Type, Value: t.Value})
	}
	if info.Local {
		return info, nil
	}
	switch h.Family {
	case proxyproto.Inet, proxyproto.Inet6:
		info.Source = net.TCPAddrFromAddrPort(h.Source)
		info.Destination = net.TCPAddrFromAddrPort(h.Destination)
	case proxyproto.Unix:
		info.Source = &net.UnixAddr{Name: h.SourcePath, Net: "unix"}
		info.Destination = &net.UnixAddr{Name: h.DestinationPath, Net: "unix"}
	}
	return info, info.Source
}
