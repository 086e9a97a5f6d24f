package client_test

import (
	"crypto/tls"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/supersocket-go/supersocket"
	"github.com/supersocket-go/supersocket/client"
	"github.com/supersocket-go/supersocket/filter"
)

// TestProxyHeader: the client's PROXY header, version 1 and 2, with its own addresses or
// claimed ones, TLVs, LOCAL, and before TLS: the server behind it sees what it says.
func TestProxyHeader(t *testing.T) {
	cert, roots := selfSigned(t)
	for _, tt := range []struct {
		name       string
		hdr        client.ProxyHeader
		tls        bool
		wantRemote string // "" : the client's own address
		wantLocal  bool
		wantALPN   string
	}{
		{name: "v2 own addresses", hdr: client.ProxyHeader{}},
		{name: "v1 claimed", hdr: client.ProxyHeader{Version: 1, Source: netip.MustParseAddrPort("127.0.0.9:1234"), Destination: netip.MustParseAddrPort("127.0.0.1:80")}, wantRemote: "127.0.0.9:1234"},
		{name: "v2 claimed with TLVs", hdr: client.ProxyHeader{Source: netip.MustParseAddrPort("[2001:db8::9]:1"), Destination: netip.MustParseAddrPort("[2001:db8::1]:2"),
			TLVs: []client.ProxyTLV{{Type: supersocket.ProxyTLVALPN, Value: []byte("h2")}}}, wantRemote: "[2001:db8::9]:1", wantALPN: "h2"},
		{name: "v2 LOCAL", hdr: client.ProxyHeader{Local: true}, wantLocal: true},
		{name: "v1 before TLS", hdr: client.ProxyHeader{Version: 1, Source: netip.MustParseAddrPort("127.0.0.8:8"), Destination: netip.MustParseAddrPort("127.0.0.1:443")}, tls: true, wantRemote: "127.0.0.8:8"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sessions := make(chan *session, 1)
			lc := supersocket.ListenerConfig{Addr: "127.0.0.1:0", Proxy: &supersocket.ProxyConfig{TrustedFrom: []string{"127.0.0.0/8"}}}
			var clientTLS *tls.Config
			if tt.tls {
				lc.TLS = &supersocket.TLSConfig{Config: &tls.Config{Certificates: []tls.Certificate{cert}}}
				clientTLS = &tls.Config{RootCAs: roots}
			}
			srv := startServerL(t, lc, filter.CommandLine(), supersocket.Handlers[struct{}]{
				Connected: func(s *session) { sessions <- s },
				Request:   echoFrame,
			})
			c := dial(t, client.Config{Addr: addrOf(srv), Filter: filter.CommandLine(), Proxy: &tt.hdr, TLS: clientTLS})
			if m, err := c.Request(testCtx(t), []byte("ECHO x\r\n")); err != nil || string(m.Frame) != "ECHO x\r\n" {
				t.Fatalf("request: %q, %v", m.Frame, err)
			}
			s := recv(t, sessions, "the session")
			want := tt.wantRemote
			if want == "" {
				want = c.LocalAddr().String()
			}
			p := s.Proxy()
			if s.RemoteAddr().String() != want || p == nil || p.Local != tt.wantLocal || p.ALPN() != tt.wantALPN {
				t.Fatalf("RemoteAddr %s (want %s), Proxy %+v", s.RemoteAddr(), want, p)
			}
		})
	}
	if _, err := client.Dial(testCtx(t), client.Config{Addr: "127.0.0.1:1", Filter: filter.CommandLine(), Proxy: &client.ProxyHeader{Version: 3}}); err == nil || !strings.Contains(err.Error(), "Proxy.Version") {
		t.Fatalf("version 3: %v", err)
	}
}

// startTLSServer is a line server with STARTTLS: "STARTTLS" answers "OK" and upgrades,
// "NOTLS" answers "NO", anything else is echoed with whether the session is on TLS.
func startTLSServer(t *testing.T, cert tls.Certificate) string {
	srvTLS := &tls.Config{Certificates: []tls.Certificate{cert}}
	// StartTLS needs the goroutine engine (an epoll session refuses it: docs/engines.md).
	srv := startServerE(t, supersocket.EngineGoroutine, supersocket.ListenerConfig{Addr: "127.0.0.1:0"}, filter.CommandLine(), supersocket.Handlers[struct{}]{Request: func(s *session, req supersocket.Request) {
		switch req.Key {
		case "STARTTLS":
			s.Send([]byte("OK\r\n"))
			s.StartTLS(srvTLS)
		case "NOTLS":
			s.Send([]byte("NO\r\n"))
		default:
			tag := "plain"
			if s.TLS() != nil {
				tag = "tls"
			}
			s.Send([]byte(tag+" "), req.Body, []byte("\r\n"))
		}
	}})
	return addrOf(srv)
}

// TestStartTLS: a live connection upgrades in place; requests sent concurrently with the
// upgrade go over TLS once it is done, in order, and none is lost; a refused go-ahead
// keeps the connection in plaintext.
func TestStartTLS(t *testing.T) {
	cert, roots := selfSigned(t)
	addr := startTLSServer(t, cert)
	c := dial(t, client.Config{Addr: addr, Filter: filter.CommandLine()})
	ctx := testCtx(t)
	if m, err := c.Request(ctx, []byte("ECHO a\r\n")); err != nil || string(m.Frame) != "plain a\r\n" {
		t.Fatalf("before: %q, %v", m.Frame, err)
	}
	isOK := func(m client.Message) bool { return string(m.Frame) == "OK\r\n" }
	m, err := c.StartTLS(ctx, &tls.Config{RootCAs: roots}, isOK, []byte("NOTLS\r\n"))
	if !errors.Is(err, client.ErrStartTLSRefused) || string(m.Frame) != "NO\r\n" {
		t.Fatalf("refused: %q, %v", m.Frame, err)
	}
	if m, err := c.Request(ctx, []byte("ECHO b\r\n")); err != nil || string(m.Frame) != "plain b\r\n" {
		t.Fatalf("after a refusal: %q, %v", m.Frame, err)
	}
	var wg sync.WaitGroup
	replies := make(chan string, 50)
	start := make(chan struct{})
	for i := range 5 {
		wg.Go(func() {
			<-start
			for k := range 10 {
				m, err := c.Request(ctx, []byte("ECHO "+string(rune('a'+i))+string(rune('0'+k))+"\r\n"))
				if err != nil {
					t.Errorf("concurrent request: %v", err)
					return
				}
				replies <- string(m.Frame)
			}
		})
	}
	close(start)
	m, err = c.StartTLS(ctx, &tls.Config{RootCAs: roots}, isOK, []byte("STARTTLS\r\n"))
	if err != nil || string(m.Frame) != "OK\r\n" {
		t.Fatalf("STARTTLS: %q, %v", m.Frame, err)
	}
	wg.Wait()
	close(replies)
	n := 0
	for r := range replies {
		if !strings.HasPrefix(r, "plain ") && !strings.HasPrefix(r, "tls ") {
			t.Errorf("reply %q", r)
		}
		n++
	}
	if n != 50 {
		t.Fatalf("%d replies, want 50", n)
	}
	if m, err := c.Request(ctx, []byte("ECHO c\r\n")); err != nil || string(m.Frame) != "tls c\r\n" {
		t.Fatalf("after: %q, %v", m.Frame, err)
	}
	if _, err := c.StartTLS(ctx, &tls.Config{RootCAs: roots}, isOK, []byte("STARTTLS\r\n")); err == nil {
		t.Fatal("a second StartTLS succeeded")
	}
}

// TestStartTLS_ReplyBeforePause: the server's reply to STARTTLS may reach the reader
// before StartTLS has paused the send queue behind its request; the reader then waits for
// the pause, and resumes the queue after it: a refusal leaves the queue running. (The
// reader resumed first once, and the pause that followed held every later request: the
// next Request timed out.)
func TestStartTLS_ReplyBeforePause(t *testing.T) {
	cert, roots := selfSigned(t)
	addr := startTLSServer(t, cert)
	c := dial(t, client.Config{Addr: addr, Filter: filter.CommandLine()})
	ctx := testCtx(t)
	replied := make(chan struct{}, 1)
	defer client.SetStartTLSHooks(func() {
		// Hold StartTLS between its send and its pause until the reader has the reply.
		select {
		case <-replied:
		case <-ctx.Done():
		}
	}, func() { replied <- struct{}{} })()
	isOK := func(m client.Message) bool { return string(m.Frame) == "OK\r\n" }
	if m, err := c.StartTLS(ctx, &tls.Config{RootCAs: roots}, isOK, []byte("NOTLS\r\n")); !errors.Is(err, client.ErrStartTLSRefused) || string(m.Frame) != "NO\r\n" {
		t.Fatalf("refused: %q, %v", m.Frame, err)
	}
	if m, err := c.Request(ctx, []byte("ECHO b\r\n")); err != nil || string(m.Frame) != "plain b\r\n" {
		t.Fatalf("after a refusal: %q, %v", m.Frame, err)
	}
	// And an accepted upgrade whose reply came first handshakes once the queue is paused.
	if _, err := c.StartTLS(ctx, &tls.Config{RootCAs: roots}, isOK, []byte("STARTTLS\r\n")); err != nil {
		t.Fatalf("accepted: %v", err)
	}
	if m, err := c.Request(ctx, []byte("ECHO c\r\n")); err != nil || string(m.Frame) != "tls c\r\n" {
		t.Fatalf("after the upgrade: %q, %v", m.Frame, err)
	}
}

// TestStartTLSHandshakeFails: a handshake that fails (the server's certificate is not
// trusted) loses the connection, and StartTLS says why.
func TestStartTLSHandshakeFails(t *testing.T) {
	cert, _ := selfSigned(t)
	_, otherRoots := selfSigned(t)
	addr := startTLSServer(t, cert)
	c := dial(t, client.Config{Addr: addr, Filter: filter.CommandLine()})
	_, err := c.StartTLS(testCtx(t), &tls.Config{RootCAs: otherRoots}, nil, []byte("STARTTLS\r\n"))
	if err == nil || !strings.Contains(err.Error(), "handshake") {
		t.Fatalf("StartTLS: %v", err)
	}
	<-c.Done()
	if !errors.Is(c.Err(), client.ErrClosed) {
		t.Fatalf("Err: %v", c.Err())
	}
}
