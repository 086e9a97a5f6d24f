package supersocket

import (
	"context"
	"crypto/tls"
	"errors"
	"testing"
	"time"

	"github.com/supersocket-go/supersocket/filter"
)

// gateway is a server whose sessions report their events on channels.
type gatewayEvents struct {
	connected chan string
	requests  chan string
	closed    chan CloseReason
}

func newGateway(t *testing.T, cfg Config) (*Server[struct{}], gatewayEvents) {
	ev := gatewayEvents{make(chan string, 8), make(chan string, 8), make(chan CloseReason, 8)}
	if cfg.Filter == nil {
		cfg.Filter = filter.Terminator([]byte("\n"))
	}
	srv := startServer(t, cfg, Handlers[struct{}]{
		Connected: func(s *Session[struct{}]) { ev.connected <- s.ID() },
		Request:   func(s *Session[struct{}], r Request) { ev.requests <- string(r.Body) },
		Closed:    func(_ *Session[struct{}], why CloseReason) { ev.closed <- why },
	})
	return srv, ev
}

func recvWithin[V any](t *testing.T, ch <-chan V, what string) V {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitLong):
		t.Fatalf("timed out waiting for %s", what)
	}
	panic("unreachable")
}

func lineEcho(s *Session[struct{}], r Request) { s.Send([]byte("re:"), r.Body, []byte("\n")) }

// TestConnectTCPIsANormalSession: an outbound session fires the same events, sits in the
// registry and counts toward MaxConnections.
func TestConnectTCPIsANormalSession(t *testing.T) {
	backend := startServer(t, Config{Filter: filter.Terminator([]byte("\n"))}, Handlers[struct{}]{Request: lineEcho})
	gw, ev := newGateway(t, Config{MaxConnections: 1})
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	s, err := gw.Connect(ctx, addrOf(backend))
	if err != nil {
		t.Fatal(err)
	}
	if id := recvWithin(t, ev.connected, "Connected"); id != s.ID() {
		t.Fatalf("Connected for %s, want %s", id, s.ID())
	}
	if got, ok := gw.Session(s.ID()); !ok || got != s {
		t.Fatal("outbound session not in the registry")
	}
	if err := s.Send([]byte("ping\n")); err != nil {
		t.Fatal(err)
	}
	if got := recvWithin(t, ev.requests, "reply"); got != "re:ping" {
		t.Fatalf("gateway got %q", got)
	}
	if _, err := gw.Connect(ctx, addrOf(backend)); !errors.Is(err, ErrMaxConnections) {
		t.Fatalf("second Connect with MaxConnections 1: %v", err)
	}
	backend.Stop()
	if why := recvWithin(t, ev.closed, "Closed"); why != CloseClientClosing {
		t.Fatalf("closed with %v when the back end went away, want ClientClosing", why)
	}
}

func TestConnectNeedsARunningServer(t *testing.T) {
	gw := newServer(t, Config{}, Handlers[struct{}]{Request: lineEcho})
	if _, err := gw.Connect(context.Background(), "127.0.0.1:1"); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("Connect before Start: %v", err)
	}
	srv := startServer(t, Config{}, Handlers[struct{}]{Request: lineEcho})
	if _, err := srv.Connect(context.Background(), "127.0.0.1:1", WithNetwork("sctp")); err == nil {
		t.Fatal("Connect with a bad network succeeded")
	}
}

func TestConnectUDPRoutesRepliesToTheSession(t *testing.T) {
	backend := startServer(t, Config{Listeners: udpLoopback(), Filter: filter.Terminator([]byte("\n"))}, Handlers[struct{}]{Request: lineEcho})
	gw, ev := newGateway(t, Config{Listeners: udpLoopback()})
	s, err := gw.Connect(context.Background(), addrOf(backend), WithNetwork("udp"))
	if err != nil {
		t.Fatal(err)
	}
	recvWithin(t, ev.connected, "Connected")
	if err := s.Send([]byte("over udp\n")); err != nil {
		t.Fatal(err)
	}
	if got := recvWithin(t, ev.requests, "reply"); got != "re:over udp" {
		t.Fatalf("gateway got %q", got)
	}
	if s.RemoteAddr().String() != addrOf(backend) {
		t.Fatalf("remote %s, want %s", s.RemoteAddr(), addrOf(backend))
	}
	tcpOnly := startServer(t, Config{}, Handlers[struct{}]{Request: lineEcho})
	if _, err := tcpOnly.Connect(context.Background(), addrOf(backend), WithNetwork("udp")); err == nil {
		t.Fatal("UDP Connect without a UDP listener succeeded")
	}
}

func TestConnectTLS(t *testing.T) {
	ca := newTestCA(t)
	cert, _, _ := ca.issue(t, "localhost", false)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(waitLong))
				buf := make([]byte, 64)
				n, err := c.Read(buf)
				if err != nil {
					return // a client that refused our certificate
				}
				c.Write(append([]byte("tls:"), buf[:n]...))
				c.Read(buf) // until the gateway closes
			}()
		}
	}()
	pool := ca.pool
	gw, ev := newGateway(t, Config{})
	s, err := gw.Connect(context.Background(), ln.Addr().String(), WithTLS(&tls.Config{RootCAs: pool, ServerName: "localhost"}))
	if err != nil {
		t.Fatal(err)
	}
	s.Send([]byte("secret\n"))
	if got := recvWithin(t, ev.requests, "reply"); got != "tls:secret" {
		t.Fatalf("got %q", got)
	}
	s.Close(CloseServerClosing)
	recvWithin(t, ev.closed, "Closed")

	// A server whose certificate does not verify: Connect fails and no session exists.
	_, err = gw.Connect(context.Background(), ln.Addr().String(), WithTLS(&tls.Config{ServerName: "localhost"}))
	if err == nil {
		t.Fatal("Connect trusted an unknown certificate")
	}
	if gw.SessionCount() != 0 {
		t.Fatalf("%d sessions after a failed handshake", gw.SessionCount())
	}
}

// TestConnectWithInitRunsBeforeConnected: ConnectWith's init marks an outbound session
// before any handler sees it, over TCP and UDP. (Its type is the server's session type,
// checked by the compiler.)
func TestConnectWithInitRunsBeforeConnected(t *testing.T) {
	type link struct{ backend bool }
	backend := startServer(t, Config{Filter: filter.Terminator([]byte("\n"))}, Handlers[struct{}]{Request: lineEcho})
	udpBackend := startServer(t, Config{Listeners: udpLoopback(), Filter: filter.Terminator([]byte("\n"))}, Handlers[struct{}]{Request: lineEcho})
	sawBackend := make(chan bool, 4)
	gw := startServer(t, Config{
		Listeners: []ListenerConfig{{Addr: "127.0.0.1:0"}, {Network: "udp", Addr: "127.0.0.1:0"}},
		Filter:    filter.Terminator([]byte("\n")),
	}, Handlers[link]{
		Connected: func(s *Session[link]) { sawBackend <- s.Data().backend },
		Request:   func(*Session[link], Request) {},
	})
	mark := func(s *Session[link]) { s.Data().backend = true }
	if _, err := gw.ConnectWith(context.Background(), addrOf(backend), mark); err != nil {
		t.Fatal(err)
	}
	if !recvWithin(t, sawBackend, "Connected over TCP") {
		t.Fatal("Connected ran before ConnectWith's init (TCP)")
	}
	if _, err := gw.ConnectWith(context.Background(), addrOf(udpBackend), mark, WithNetwork("udp")); err != nil {
		t.Fatal(err)
	}
	if !recvWithin(t, sawBackend, "Connected over UDP") {
		t.Fatal("Connected ran before ConnectWith's init (UDP)")
	}
}
