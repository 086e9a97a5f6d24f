package supersocket

import (
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/supersocket-go/supersocket/internal/netwrite"
	"github.com/supersocket-go/supersocket/internal/proxyproto"
)

// proxyEvents is what a PROXY test server saw of its sessions.
type proxyEvents struct {
	sessions chan *Session[struct{}]
	closed   chan closeEvent
	refused  chan error
}

// proxyServer serves an ECHO line server behind a PROXY listener configured by p (and
// the listener's TLS, when spec is set).
func proxyServer(t *testing.T, cfg Config, p ProxyConfig, spec *TLSConfig) (*Server[struct{}], *proxyEvents) {
	t.Helper()
	ev := &proxyEvents{sessions: make(chan *Session[struct{}], 64), closed: make(chan closeEvent, 64), refused: make(chan error, 64)}
	if len(cfg.Listeners) == 0 {
		cfg.Listeners = []ListenerConfig{{Addr: "127.0.0.1:0", Proxy: &p, TLS: spec}}
	}
	cfg.OnRefused = func(_ net.Addr, why error) { ev.refused <- why }
	srv := startServer(t, cfg, Handlers[struct{}]{
		Connected: sessionsInto(ev.sessions),
		Request:   func(s *Session[struct{}], r Request) { s.Send(r.Body, []byte("\r\n")) },
		Closed:    closedInto[struct{}](ev.closed),
	})
	return srv, ev
}

// echo sends "ECHO text" and expects text back.
func (c *client) echo(text string) {
	c.t.Helper()
	if got := c.roundTrip("ECHO " + text + "\r\n"); got != text+"\r\n" {
		c.t.Fatalf("ECHO %s: got %q", text, got)
	}
}

func v1Header(src, dst string) string {
	return string(proxyproto.AppendV1(nil, netip.MustParseAddrPort(src), netip.MustParseAddrPort(dst)))
}

// TestProxyV1NamesTheClient: a trusted proxy's version 1 header, with the first request
// in the same packet: the session's RemoteAddr is the client's, Proxy tells the rest, and
// the request after the header is answered.
func TestProxyV1NamesTheClient(t *testing.T) {
	srv, ev := proxyServer(t, Config{}, ProxyConfig{TrustedFrom: []string{"127.0.0.1"}}, nil)
	c := dial(t, srv)
	c.send(v1Header("127.0.0.2:40000", "192.0.2.1:4000") + "ECHO first\r\n")
	c.expectLine("first\r\n")
	s := recv(t, ev.sessions, "the session")
	if got := s.RemoteAddr().String(); got != "127.0.0.2:40000" {
		t.Errorf("RemoteAddr %s, want the client's 127.0.0.2:40000", got)
	}
	p := s.Proxy()
	if p == nil || p.Version != 1 || p.Local || p.Destination.String() != "192.0.2.1:4000" || p.Proxy.String() != c.LocalAddr().String() {
		t.Fatalf("Proxy() = %+v", p)
	}
	if s.LocalAddr().String() != addrOf(srv) {
		t.Errorf("LocalAddr %s, want the socket's %s", s.LocalAddr(), addrOf(srv))
	}
	c.echo("again")
}

// TestProxyV2TLVs: a version 2 header with TLVs (ALPN, authority, an AWS VPC endpoint ID
// and a CRC32C) sent a byte at a time.
func TestProxyV2TLVs(t *testing.T) {
	srv, ev := proxyServer(t, Config{}, ProxyConfig{TrustedFrom: []string{"127.0.0.0/8"}}, nil)
	hdr, err := proxyproto.AppendV2(nil, proxyproto.Proxy, netip.MustParseAddrPort("[2001:db8::5]:7000"), netip.MustParseAddrPort("[2001:db8::1]:443"),
		[]proxyproto.TLV{{Type: ProxyTLVALPN, Value: []byte("h2")}, {Type: ProxyTLVAuthority, Value: []byte("game.example")},
			{Type: ProxyTLVAWS, Value: append([]byte{1}, "vpce-0abc"...)}}, true)
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, srv)
	for _, b := range hdr {
		c.send(string([]byte{b}))
	}
	c.echo("x")
	s := recv(t, ev.sessions, "the session")
	p := s.Proxy()
	if s.RemoteAddr().String() != "[2001:db8::5]:7000" || p.Version != 2 || p.ALPN() != "h2" || p.Authority() != "game.example" || p.AWSVPCEndpointID() != "vpce-0abc" || len(p.TLVs) != 4 {
		t.Fatalf("RemoteAddr %s, Proxy() %+v", s.RemoteAddr(), p)
	}
}

// TestProxyLocalKeepsTheConnectionsAddress: a LOCAL header (a health check) is accepted;
// the session keeps the proxy's own address.
func TestProxyLocalKeepsTheConnectionsAddress(t *testing.T) {
	srv, ev := proxyServer(t, Config{}, ProxyConfig{TrustedFrom: []string{"127.0.0.1"}}, nil)
	for _, hdr := range []string{mustV2(t, proxyproto.Local), "PROXY UNKNOWN\r\n"} {
		c := dial(t, srv)
		c.send(hdr + "ECHO ok\r\n")
		c.expectLine("ok\r\n")
		s := recv(t, ev.sessions, "the session")
		if s.RemoteAddr().String() != c.LocalAddr().String() || s.Proxy() == nil || !s.Proxy().Local || s.Proxy().Source != nil {
			t.Fatalf("%q: RemoteAddr %s, Proxy %+v", hdr, s.RemoteAddr(), s.Proxy())
		}
	}
}

// expectConfigError checks that New refuses a server of one listener l with a ConfigError
// for field.
func expectConfigError(t *testing.T, l ListenerConfig, field string) {
	t.Helper()
	_, err := New(Config{Listeners: []ListenerConfig{l}}, Handlers[struct{}]{Request: echoFrame[struct{}]})
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Field != field {
		t.Errorf("%+v: %v, want a ConfigError for %s", l, err, field)
	}
}

func mustV2(t *testing.T, cmd proxyproto.Command) string {
	b, err := proxyproto.AppendV2(nil, cmd, netip.MustParseAddrPort("127.0.0.9:1"), netip.MustParseAddrPort("127.0.0.1:2"), nil, false)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestProxyUntrustedRefused: with ProxyRefuse, a peer outside TrustedFrom is refused at
// accept (ErrProxyUntrusted), header or not, and no session exists.
func TestProxyUntrustedRefused(t *testing.T) {
	srv, ev := proxyServer(t, Config{}, ProxyConfig{TrustedFrom: []string{"10.0.0.0/8"}}, nil)
	c := dial(t, srv)
	c.send(v1Header("127.0.0.2:1", "127.0.0.1:2"))
	c.readToClose()
	if why := recv(t, ev.refused, "the refusal"); !errors.Is(why, ErrProxyUntrusted) {
		t.Fatalf("refused for %v", why)
	}
	noRecv(t, ev.sessions, 50*time.Millisecond, "session")
	if st := srv.Stats(); st.Refused != 1 {
		t.Fatalf("Refused %d", st.Refused)
	}
}

// TestProxyUntrustedServedDirect: with ProxyServeDirect, an untrusted peer is served under
// its own address; one that sends a header is closed before a session exists.
func TestProxyUntrustedServedDirect(t *testing.T) {
	srv, ev := proxyServer(t, Config{}, ProxyConfig{TrustedFrom: []string{"10.0.0.0/8"}, Untrusted: ProxyServeDirect}, nil)
	c := dial(t, srv)
	c.echo("direct")
	if s := recv(t, ev.sessions, "the session"); s.RemoteAddr().String() != c.LocalAddr().String() || s.Proxy() != nil {
		t.Fatalf("RemoteAddr %s, Proxy %+v", s.RemoteAddr(), s.Proxy())
	}
	spoof := dial(t, srv)
	spoof.send(v1Header("203.0.113.9:1", "127.0.0.1:2") + "ECHO spoofed\r\n")
	spoof.expectClosed()
	noRecv(t, ev.sessions, 50*time.Millisecond, "session")
	if st := srv.Stats(); st.HandshakeFailures != 1 {
		t.Fatalf("HandshakeFailures %d", st.HandshakeFailures)
	}
}

// TestProxyHeaderRequiredUnlessOptional: a trusted peer without a header is closed, unless
// the header is Optional, when it is served under its own address.
func TestProxyHeaderRequiredUnlessOptional(t *testing.T) {
	srv, ev := proxyServer(t, Config{}, ProxyConfig{TrustedFrom: []string{"127.0.0.1"}}, nil)
	c := dial(t, srv)
	c.send("ECHO no header\r\n")
	c.expectClosed()
	noRecv(t, ev.sessions, 50*time.Millisecond, "session")

	srv, ev = proxyServer(t, Config{}, ProxyConfig{TrustedFrom: []string{"127.0.0.1"}, Optional: true}, nil)
	c = dial(t, srv)
	c.echo("no header")
	if s := recv(t, ev.sessions, "the session"); s.Proxy() != nil || s.RemoteAddr().String() != c.LocalAddr().String() {
		t.Fatalf("RemoteAddr %s, Proxy %+v", s.RemoteAddr(), s.Proxy())
	}
	c = dial(t, srv)
	c.send(v1Header("127.0.0.3:5", "127.0.0.1:2") + "ECHO with\r\n")
	c.expectLine("with\r\n")
	if s := recv(t, ev.sessions, "the session"); s.RemoteAddr().String() != "127.0.0.3:5" {
		t.Fatalf("RemoteAddr %s", s.RemoteAddr())
	}
}

// TestProxyAdmissionSeesTheClient: AllowConnect and MaxConnectionsPerIP judge the client a
// header names, not the proxy that every connection comes from.
func TestProxyAdmissionSeesTheClient(t *testing.T) {
	var seen atomic.Value
	srv, ev := proxyServer(t, Config{
		MaxConnectionsPerIP: 1,
		AllowConnect: func(a net.Addr) bool {
			seen.Store(a.String())
			return !strings.HasPrefix(a.String(), "127.0.0.66:")
		},
	}, ProxyConfig{TrustedFrom: []string{"127.0.0.1"}}, nil)
	a := dial(t, srv)
	a.send(v1Header("127.0.0.2:1000", "127.0.0.1:1"))
	a.echo("a")
	if seen.Load() != "127.0.0.2:1000" {
		t.Fatalf("AllowConnect saw %v", seen.Load())
	}
	// The same client again: over MaxConnectionsPerIP. Another client through the same
	// proxy: admitted.
	again := dial(t, srv)
	again.send(v1Header("127.0.0.2:1001", "127.0.0.1:1") + "ECHO again\r\n")
	again.readToClose()
	if why := recv(t, ev.refused, "the refusal"); !errors.Is(why, ErrTooManyFromIP) {
		t.Fatalf("refused for %v", why)
	}
	b := dial(t, srv)
	b.send(v1Header("127.0.0.3:1000", "127.0.0.1:1"))
	b.echo("b")
	denied := dial(t, srv)
	denied.send(v1Header("127.0.0.66:1", "127.0.0.1:1") + "ECHO denied\r\n")
	denied.readToClose()
	if why := recv(t, ev.refused, "the refusal"); !errors.Is(why, ErrConnectionNotAllowed) {
		t.Fatalf("refused for %v", why)
	}
	if st := srv.Stats(); st.Sessions != 2 || st.Refused != 2 || st.HandshakeFailures != 0 {
		t.Fatalf("Stats: %d sessions, %d refused, %d handshake failures", st.Sessions, st.Refused, st.HandshakeFailures)
	}
}

// TestProxyBeforeTLS: the header comes before the ClientHello on a TLS listener.
func TestProxyBeforeTLS(t *testing.T) {
	ca := newTestCA(t)
	cert, _, _ := ca.issue(t, "server", false)
	srv, ev := proxyServer(t, Config{}, ProxyConfig{TrustedFrom: []string{"127.0.0.1"}}, &TLSConfig{Config: &tls.Config{Certificates: []tls.Certificate{cert}}})
	raw, err := net.DialTimeout("tcp", addrOf(srv), waitLong)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.Write([]byte(v1Header("127.0.0.7:9", "127.0.0.1:443")))
	tc := tls.Client(raw, &tls.Config{RootCAs: ca.pool, ServerName: "127.0.0.1"})
	tc.SetDeadline(time.Now().Add(waitLong))
	tc.Write([]byte("ECHO secret\r\n"))
	buf := make([]byte, 64)
	n, err := tc.Read(buf)
	if err != nil || string(buf[:n]) != "secret\r\n" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
	if s := recv(t, ev.sessions, "the session"); s.RemoteAddr().String() != "127.0.0.7:9" || s.TLS() == nil {
		t.Fatalf("RemoteAddr %s, TLS %v", s.RemoteAddr(), s.TLS())
	}
}

// TestProxyHeaderTimeout: a header that never completes is cut at HeaderTimeout, without
// a session, and counted.
func TestProxyHeaderTimeout(t *testing.T) {
	const timeout = 200 * time.Millisecond
	srv, ev := proxyServer(t, Config{}, ProxyConfig{TrustedFrom: []string{"127.0.0.1"}, HeaderTimeout: timeout}, nil)
	start := time.Now()
	c := dial(t, srv)
	c.send("PROXY TCP4 127.0.0.2 127.0")
	c.expectClosed()
	if d := time.Since(start); d < timeout || d > timeout+waitLong/2 {
		t.Fatalf("closed after %v, want about %v", d, timeout)
	}
	noRecv(t, ev.sessions, 50*time.Millisecond, "session")
	eventually(t, "the failure counted", func() bool { return srv.Stats().HandshakeFailures == 1 })
	if srv.Stats().Sessions != 0 || srv.SessionCount() != 0 {
		t.Fatal("a session exists")
	}
}

// TestProxySessionParks: a session behind a PROXY header reads, writes and parks like any
// other (its socket is wrapped to name the client, and hands over its descriptor).
func TestProxySessionParks(t *testing.T) {
	srv, ev := proxyServer(t, Config{}, ProxyConfig{TrustedFrom: []string{"127.0.0.1"}}, nil)
	c := dial(t, srv)
	c.send(v1Header("127.0.0.2:1", "127.0.0.1:2"))
	c.echo("before")
	s := recv(t, ev.sessions, "the session")
	var tr netwrite.Trier
	if !tr.Init(s.tcp.conn) {
		t.Fatal("the wrapped socket offers no direct writes")
	}
	if runtime.GOOS == "linux" {
		eventually(t, "the session parked", func() bool { return srv.Stats().Parked == 1 })
	}
	c.echo("after")
	if s.RemoteAddr().String() != "127.0.0.2:1" {
		t.Fatalf("RemoteAddr %s", s.RemoteAddr())
	}
}

func TestProxyConfigErrors(t *testing.T) {
	for _, tt := range []struct {
		l     ListenerConfig
		field string
	}{
		{ListenerConfig{Addr: "127.0.0.1:0", Proxy: &ProxyConfig{}}, "Listeners[0].Proxy.TrustedFrom"},
		{ListenerConfig{Addr: "127.0.0.1:0", Proxy: &ProxyConfig{TrustedFrom: []string{"10.0.0.0/33"}}}, "Listeners[0].Proxy.TrustedFrom[0]"},
		{ListenerConfig{Addr: "127.0.0.1:0", Proxy: &ProxyConfig{TrustedFrom: []string{"10.0.0.1", "proxy.example"}}}, "Listeners[0].Proxy.TrustedFrom[1]"},
		{ListenerConfig{Addr: "127.0.0.1:0", Proxy: &ProxyConfig{TrustedFrom: []string{"::1"}, Untrusted: 7}}, "Listeners[0].Proxy.Untrusted"},
		{ListenerConfig{Addr: "127.0.0.1:0", Proxy: &ProxyConfig{TrustedFrom: []string{"::1"}, MaxHeaderBytes: 1 << 20}}, "Listeners[0].Proxy.MaxHeaderBytes"},
		{ListenerConfig{Addr: "127.0.0.1:0", Proxy: &ProxyConfig{TrustedFrom: []string{"::1"}, HeaderTimeout: -1}}, "Listeners[0].Proxy.HeaderTimeout"},
		{ListenerConfig{Network: "udp", Addr: "127.0.0.1:0", Proxy: &ProxyConfig{TrustedFrom: []string{"::1"}}}, "Listeners[0].Proxy"},
	} {
		expectConfigError(t, tt.l, tt.field)
	}
	srv, err := New(Config{Listeners: []ListenerConfig{{Addr: "127.0.0.1:0", Proxy: &ProxyConfig{TrustedFrom: []string{"10.0.0.0/8"}}}}}, Handlers[struct{}]{Request: echoFrame[struct{}]})
	if err != nil {
		t.Fatal(err)
	}
	if p := srv.Config().Listeners[0].Proxy; p.HeaderTimeout != DefaultProxyHeaderTimeout || p.MaxHeaderBytes != DefaultProxyMaxHeaderBytes {
		t.Fatalf("defaults: %+v", p)
	}
}

// countingConn counts the bytes read through it.
type countingConn struct {
	net.Conn
	n atomic.Int64
}

func (c *countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.n.Add(int64(n))
	return n, err
}

// TestProxyReadsNoFurtherThanTheLimit: whatever a peer sends, reading its header takes
// no more than MaxHeaderBytes from the connection (version 1: its line's 107 bytes fit);
// an oversized version 2 header is refused from its first 16 bytes.
func TestProxyReadsNoFurtherThanTheLimit(t *testing.T) {
	p, err := ProxyConfig{TrustedFrom: []string{"127.0.0.1"}, MaxHeaderBytes: 256}.withDefaults("Proxy")
	if err != nil {
		t.Fatal(err)
	}
	pl := newProxyListener(p)
	for name, flood := range map[string][]byte{
		"v1 without an end":   append([]byte("PROXY UNKNOWN "), make([]byte, 1<<20)...),
		"v2 declaring 64 KiB": append([]byte("\r\n\r\n\x00\r\nQUIT\n\x21\x11\xff\xff"), make([]byte, 1<<20)...),
		"v2 then a flood":     append([]byte(mustV2(t, proxyproto.Proxy)), make([]byte, 1<<20)...),
		"no signature":        append([]byte("HELLO"), make([]byte, 1<<20)...),
	} {
		a, b := net.Pipe()
		go func() {
			b.SetWriteDeadline(time.Now().Add(waitLong))
			b.Write(flood)
		}()
		c := &countingConn{Conn: a}
		h, rest, err := pl.readProxy(c, true)
		a.Close()
		b.Close()
		if n := c.n.Load(); n > int64(p.MaxHeaderBytes) {
			t.Errorf("%s: read %d bytes, the limit is %d", name, n, p.MaxHeaderBytes)
		}
		if name == "v2 then a flood" {
			if err != nil || h == nil || len(rest) > p.MaxHeaderBytes {
				t.Errorf("%s: %v, %d bytes after it", name, err, len(rest))
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
