package supersocket

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/supersocket-go/supersocket/filter"
)

// udpClient is a UDP socket on loopback that talks to one server address.
type udpClient struct {
	t    *testing.T
	conn *net.UDPConn
	to   *net.UDPAddr
}

func newUDPClient(t *testing.T, server string) *udpClient {
	t.Helper()
	to, err := net.ResolveUDPAddr("udp", server)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &udpClient{t: t, conn: c, to: to}
}

func (c *udpClient) send(b []byte) {
	c.t.Helper()
	if _, err := c.conn.WriteToUDP(b, c.to); err != nil {
		c.t.Fatal(err)
	}
}

// recv returns the next datagram, failing the test after waitLong.
func (c *udpClient) recv() []byte {
	c.t.Helper()
	buf := make([]byte, 64<<10)
	c.conn.SetReadDeadline(time.Now().Add(waitLong))
	n, _, err := c.conn.ReadFromUDP(buf)
	if err != nil {
		c.t.Fatalf("udp recv: %v", err)
	}
	return buf[:n]
}

func udpLoopback() []ListenerConfig { return []ListenerConfig{{Network: "udp", Addr: "127.0.0.1:0"}} }

// TestUDPSessionPerAddressEchoes: each client address is one session; replies go back to
// the sender; every session gets Connected first and Closed last.
func TestUDPSessionPerAddressEchoes(t *testing.T) {
	var connected, closed atomic.Int32
	srv := startServer(t, Config{Listeners: udpLoopback(), Filter: filter.Terminator([]byte("\n"))}, Handlers[struct{}]{
		Connected: func(*Session[struct{}]) { connected.Add(1) },
		Request: func(s *Session[struct{}], r Request) {
			s.Send([]byte(s.ID()+":"), r.Body)
		},
		Closed: func(*Session[struct{}], CloseReason) { closed.Add(1) },
	})
	a, b := newUDPClient(t, addrOf(srv)), newUDPClient(t, addrOf(srv))
	a.send([]byte("one\n"))
	gotA := string(a.recv())
	b.send([]byte("two\n"))
	gotB := string(b.recv())
	a.send([]byte("three\nfour\n")) // two requests in one datagram
	gotA3, gotA4 := string(a.recv()), string(a.recv())
	idA, idB := gotA[:len(gotA)-len("one")-1], gotB[:len(gotB)-len("two")-1]
	if idA == idB {
		t.Fatalf("two addresses share session %s", idA)
	}
	if gotA3 != idA+":three" || gotA4 != idA+":four" {
		t.Fatalf("same address, different session or bad order: %q %q (session %s)", gotA3, gotA4, idA)
	}
	if srv.SessionCount() != 2 || connected.Load() != 2 {
		t.Fatalf("sessions %d connected %d, want 2 and 2", srv.SessionCount(), connected.Load())
	}
	s, ok := srv.Session(idA)
	if !ok || s.RemoteAddr().String() != a.conn.LocalAddr().String() {
		t.Fatalf("Session(%s) = %v %v, want remote %s", idA, s, ok, a.conn.LocalAddr())
	}
	srv.Stop()
	// The client may have its last reply before the Request handler that sent it returned;
	// Stop does not wait for a session still inside a handler, Wait does.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Wait(ctx); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if closed.Load() != 2 || srv.Stats().Closes[CloseServerShutdown] != 2 {
		t.Fatalf("closed %d, ServerShutdown closes %d; want 2 and 2", closed.Load(), srv.Stats().Closes[CloseServerShutdown])
	}
}

// TestUDPOrderPerSessionUnderConcurrentSenders: datagrams of one session are handled one
// at a time and in arrival order (SuperSocketLite dispatches each with Task.Run and loses
// both), while many clients send at once.
func TestUDPOrderPerSessionUnderConcurrentSenders(t *testing.T) {
	// Clients send in acknowledged bursts so the socket's receive buffer never overflows,
	// even under -race; a lost acknowledgement only costs a bounded wait.
	const clients, perClient, burst = 8, 300, 20
	type state struct {
		last     int64
		inFlight atomic.Int32
	}
	var violations atomic.Int32
	var handled atomic.Int64
	srv := startServer(t, Config{Listeners: udpLoopback(), Filter: filter.FixedSize(8)}, Handlers[state]{
		Connected: func(s *Session[state]) { s.Data().last = -1 },
		Request: func(s *Session[state], r Request) {
			st := s.Data()
			if st.inFlight.Add(1) != 1 {
				violations.Add(1)
			}
			seq := int64(binary.BigEndian.Uint64(r.Body))
			if seq <= st.last {
				violations.Add(1)
			}
			st.last = seq
			handled.Add(1)
			st.inFlight.Add(-1)
			if seq%burst == burst-1 {
				s.Send(r.Body) // acknowledge the burst
			}
		},
	})
	var wg sync.WaitGroup
	for range clients {
		c := newUDPClient(t, addrOf(srv))
		wg.Add(1)
		go func() {
			defer wg.Done()
			var b [8]byte
			ack := make([]byte, 16)
			for i := range perClient {
				binary.BigEndian.PutUint64(b[:], uint64(i))
				c.conn.WriteToUDP(b[:], c.to)
				if i%burst == burst-1 {
					c.conn.SetReadDeadline(time.Now().Add(time.Second))
					c.conn.ReadFromUDP(ack)
				}
			}
		}()
	}
	wg.Wait()
	if v := violations.Load(); v != 0 {
		t.Fatalf("%d ordering or overlap violations", v)
	}
	if h := handled.Load(); h < clients*perClient*9/10 {
		t.Fatalf("only %d of %d datagrams handled", h, clients*perClient)
	}
	if srv.SessionCount() != clients {
		t.Fatalf("%d sessions, want %d", srv.SessionCount(), clients)
	}
}

// simpleUDPKey is SuperSocketLite's SimpleUDPServer format: a 4-byte ASCII key, a 36-byte
// ASCII session id, then data.
func simpleUDPKey(d []byte) ([]byte, bool) {
	if len(d) <= 40 {
		return nil, false
	}
	return d[4:40], true
}

// TestUDPSessionFollowsItsIDAcrossAddresses: with UDPSessionKey, a client that changes
// address keeps its session, and replies go to the new address.
func TestUDPSessionFollowsItsIDAcrossAddresses(t *testing.T) {
	var connected atomic.Int32
	srv := startServer(t, Config{Listeners: udpLoopback(), UDPSessionKey: simpleUDPKey, Filter: wholeDatagram}, Handlers[struct{}]{
		Connected: func(*Session[struct{}]) { connected.Add(1) },
		Request:   func(s *Session[struct{}], r Request) { s.Send([]byte(s.ID()), []byte("|"), r.Frame[40:]) },
	})
	id := "0f8fad5b-d9cb-469f-a165-70867728950e"
	first, second := newUDPClient(t, addrOf(srv)), newUDPClient(t, addrOf(srv))
	first.send([]byte("ECHO" + id + "hello"))
	if got := string(first.recv()); got != id+"|hello" {
		t.Fatalf("first reply %q", got)
	}
	second.send([]byte("ECHO" + id + "again")) // same id, new address
	if got := string(second.recv()); got != id+"|again" {
		t.Fatalf("reply after roaming %q", got)
	}
	s, ok := srv.Session(id)
	if !ok || s.RemoteAddr().String() != second.conn.LocalAddr().String() {
		t.Fatalf("session %q: found %v, remote %v; want %s", id, ok, s.RemoteAddr(), second.conn.LocalAddr())
	}
	if n := srv.SessionCount(); n != 1 {
		t.Fatalf("%d sessions, want 1", n)
	}
	if n := connected.Load(); n != 1 {
		t.Fatalf("Connected ran %d times, want 1", n)
	}
	// A datagram without an id (≤ 40 bytes) is dropped and counted.
	first.send([]byte("short"))
	deadline := time.Now().Add(waitLong)
	for srv.Stats().DatagramsDropped == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond) // the drop has no event to wait on
	}
	if srv.Stats().DatagramsDropped != 1 {
		t.Fatalf("DatagramsDropped = %d, want 1", srv.Stats().DatagramsDropped)
	}
}

// wholeDatagram treats everything it is given as one request (one datagram, for UDP).
func wholeDatagram(limit int) filter.Filter { return wholeFilter{} }

type wholeFilter struct{}

func (wholeFilter) Filter(d []byte) (filter.Request, int, error) {
	return filter.Request{Body: d, Frame: d}, len(d), nil
}

func TestUDPIdleSessionTimesOut(t *testing.T) {
	closed := make(chan CloseReason, 1)
	srv := startServer(t, Config{
		Listeners: udpLoopback(), Filter: wholeDatagram,
		IdleTimeout: 150 * time.Millisecond, IdleCheckInterval: 20 * time.Millisecond,
	}, Handlers[struct{}]{
		Request: func(s *Session[struct{}], r Request) { s.Send(r.Body) },
		Closed:  func(_ *Session[struct{}], why CloseReason) { closed <- why },
	})
	c := newUDPClient(t, addrOf(srv))
	start := time.Now()
	c.send([]byte("hi"))
	c.recv()
	select {
	case why := <-closed:
		if why != CloseTimeOut {
			t.Fatalf("closed with %v, want TimeOut", why)
		}
		if el := time.Since(start); el < 150*time.Millisecond {
			t.Fatalf("closed after %v, before IdleTimeout", el)
		}
	case <-time.After(waitLong):
		t.Fatal("idle UDP session never closed")
	}
	if srv.SessionCount() != 0 {
		t.Fatalf("%d sessions left", srv.SessionCount())
	}
	// The next datagram from the same address starts a new session.
	c.send([]byte("again"))
	if got := string(c.recv()); got != "again" {
		t.Fatalf("got %q", got)
	}
}

func TestUDPMaxConnections(t *testing.T) {
	refused := make(chan error, 8)
	srv := startServer(t, Config{
		Listeners: udpLoopback(), Filter: wholeDatagram, MaxConnections: 2,
		OnRefused: func(_ net.Addr, why error) { refused <- why },
	}, Handlers[struct{}]{Request: func(s *Session[struct{}], r Request) { s.Send(r.Body) }})
	a, b, c := newUDPClient(t, addrOf(srv)), newUDPClient(t, addrOf(srv)), newUDPClient(t, addrOf(srv))
	for _, cl := range []*udpClient{a, b} {
		cl.send([]byte("in"))
		if got := string(cl.recv()); got != "in" {
			t.Fatalf("got %q", got)
		}
	}
	c.send([]byte("third"))
	select {
	case why := <-refused:
		if !errors.Is(why, ErrMaxConnections) {
			t.Fatalf("refused for %v", why)
		}
	case <-time.After(waitLong):
		t.Fatal("third address not refused")
	}
	if st := srv.Stats(); st.Refused != 1 || st.Sessions != 2 {
		t.Fatalf("refused %d sessions %d, want 1 and 2", st.Refused, st.Sessions)
	}
	a.send([]byte("still"))
	if got := string(a.recv()); got != "still" {
		t.Fatalf("existing session: got %q", got)
	}
}

func TestUDPBadDatagramsCloseWithProtocolError(t *testing.T) {
	closed := make(chan CloseReason, 4)
	srv := startServer(t, Config{Listeners: udpLoopback(), Filter: filter.Uint16BE(), MaxRequestLength: 64}, Handlers[struct{}]{
		Request: func(s *Session[struct{}], r Request) { s.Send(r.Body) },
		Closed:  func(_ *Session[struct{}], why CloseReason) { closed <- why },
	})
	for name, d := range map[string][]byte{
		"incomplete": {0, 10, 'a', 'b'},
		"oversized":  append([]byte{0, 100}, bytes.Repeat([]byte("x"), 100)...),
	} {
		c := newUDPClient(t, addrOf(srv))
		c.send(d)
		select {
		case why := <-closed:
			if why != CloseProtocolError {
				t.Fatalf("%s: closed with %v", name, why)
			}
		case <-time.After(waitLong):
			t.Fatalf("%s: session not closed", name)
		}
	}
}

func TestUDPListenersInOneServer(t *testing.T) {
	srv := startServer(t, Config{
		Mode:      "udp",
		Listeners: []ListenerConfig{{Addr: "127.0.0.1:0"}, {Addr: "127.0.0.1:0"}, {Network: "tcp", Addr: "127.0.0.1:0"}},
		Filter:    filter.Terminator([]byte("\n")),
	}, Handlers[struct{}]{Request: func(s *Session[struct{}], r Request) { s.Send(r.Body, []byte("\n")) }})
	addrs := srv.Addrs()
	for i, a := range addrs[:2] {
		if a.Network() != "udp" {
			t.Fatalf("listener %d is %s", i, a.Network())
		}
		c := newUDPClient(t, a.String())
		msg := fmt.Sprintf("via %d\n", i)
		c.send([]byte(msg))
		if got := string(c.recv()); got != msg {
			t.Fatalf("listener %d: got %q", i, got)
		}
	}
	tc, err := net.Dial("tcp", addrs[2].String())
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	tc.Write([]byte("tcp too\n"))
	tc.SetReadDeadline(time.Now().Add(waitLong))
	buf := make([]byte, 16)
	n, _ := tc.Read(buf)
	if string(buf[:n]) != "tcp too\n" {
		t.Fatalf("tcp listener: %q", buf[:n])
	}
}

// A datagram is a unit of whole requests: a command line filter takes a last line
// without its ending (filter.Finisher), so "ECHO hi" needs no "\r\n" over UDP.
func TestUDPDatagramEndsTheLastLine(t *testing.T) {
	srv := startServer(t, Config{Listeners: udpLoopback(), Filter: filter.CommandLine()}, Handlers[struct{}]{
		Request: func(s *Session[struct{}], r Request) { s.Send([]byte(r.Key+":"), r.Body) },
	})
	c := newUDPClient(t, addrOf(srv))
	c.send([]byte("ECHO one\r\nECHO two"))
	for _, want := range []string{"ECHO:one", "ECHO:two"} {
		if got := string(c.recv()); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
}
