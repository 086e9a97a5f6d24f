package supersocket

import (
	"bufio"
	"io"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/supersocket-go/supersocket/filter"
)

// waitParked waits (bounded) until Stats reports n of srv's sessions parked.
func waitParked[T any](t *testing.T, srv *Server[T], n int) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for srv.Stats().Parked != int64(n) {
		if time.Now().After(deadline) {
			t.Fatalf("Stats.Parked %d, want %d", srv.Stats().Parked, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitIdle waits until n of srv's sessions have left their goroutine: parked on Linux
// (an observable state), elsewhere after parkAfter, for which there is no event.
func waitIdle[T any](t *testing.T, srv *Server[T], n int) {
	t.Helper()
	if runtime.GOOS == "linux" {
		waitParked(t, srv, n)
		return
	}
	time.Sleep(parkAfter + parkAfter/2)
}

// TestIdleSessionWakesForRequestsFINAndClose: a session idle past parkAfter gives up its
// goroutine (Linux: it parks with none; elsewhere it moves to a fresh one); bytes, the
// peer's FIN and Close from another goroutine each bring it back, with its state intact
// and the right close reason.
func TestIdleSessionWakesForRequestsFINAndClose(t *testing.T) {
	type count struct{ n int }
	closed := make(chan CloseReason, 3)
	srv := startServer(t, Config{Filter: filter.CommandLine()}, Handlers[count]{
		Request: func(s *Session[count], r Request) {
			s.Data().n++
			s.Send([]byte{byte('0' + s.Data().n)}, []byte("\r\n"))
		},
		Closed: func(_ *Session[count], why CloseReason) { closed <- why },
	})
	dial := func() (net.Conn, func(string)) {
		c, err := net.Dial("tcp", addrOf(srv))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(waitLong))
		r := bufio.NewReader(c)
		return c, func(want string) {
			t.Helper()
			c.Write([]byte("N\r\n"))
			if line, err := r.ReadString('\n'); err != nil || line != want {
				t.Fatalf("got %q, %v; want %q", line, err, want)
			}
		}
	}
	a, askA := dial()
	b, askB := dial()
	askA("1\r\n")
	askB("1\r\n")
	waitIdle(t, srv, 2)
	askA("2\r\n") // bytes resume a
	askB("2\r\n")
	waitIdle(t, srv, 2) // and both park again
	askA("3\r\n")

	// The peer's FIN wakes a parked session: ClientClosing.
	waitIdle(t, srv, 2)
	a.(*net.TCPConn).CloseWrite()
	if why := recvWithin(t, closed, "Closed after FIN"); why != CloseClientClosing {
		t.Fatalf("closed with %v, want ClientClosing", why)
	}
	// Close from another goroutine wakes a parked session: ServerClosing, and the peer sees EOF.
	waitIdle(t, srv, 1)
	for s := range srv.Sessions() {
		s.Close(CloseServerClosing)
	}
	if why := recvWithin(t, closed, "Closed after Close"); why != CloseServerClosing {
		t.Fatalf("closed with %v, want ServerClosing", why)
	}
	if n, err := b.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatalf("read after Close: %d, %v; want EOF", n, err)
	}
	if n := srv.parkedCount(); n != 0 {
		t.Fatalf("%d sessions still parked", n)
	}
}

// TestShutdownResumesParkedSessions: a stop closes parked sessions like any other, runs
// their Closed handlers and leaves no goroutine (goleak in TestMain).
func TestShutdownResumesParkedSessions(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("parking needs epoll")
	}
	closed := make(chan CloseReason, 8)
	srv := startServer(t, Config{Filter: filter.CommandLine()}, Handlers[struct{}]{
		Request: func(s *Session[struct{}], r Request) { s.Send([]byte("ok\r\n")) },
		Closed:  func(_ *Session[struct{}], why CloseReason) { closed <- why },
	})
	for range 5 {
		c, err := net.Dial("tcp", addrOf(srv))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(waitLong))
		c.Write([]byte("HI\r\n"))
		if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
			t.Fatal(err)
		}
	}
	waitParked(t, srv, 5)
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if why := recvWithin(t, closed, "Closed at Stop"); why != CloseServerShutdown {
			t.Fatalf("closed with %v, want ServerShutdown", why)
		}
	}
	if srv.parker != nil {
		t.Fatal("the parker outlived the stop")
	}
}

// TestRequestWithFINAfterParkClosesSession: a client that sends its last request and its
// FIN together, to a session that has parked (and is woken by them), must see its reply
// and the session close with ClientClosing: the FIN stops the read short of it, and the
// read loop must still look again (see netread.Reader.Serve).
func TestRequestWithFINAfterParkClosesSession(t *testing.T) {
	const conns = 20
	closed := make(chan CloseReason, conns)
	srv := startServer(t, Config{Filter: filter.CommandLine()}, Handlers[struct{}]{
		Request: func(s *Session[struct{}], r Request) { s.Send([]byte("ok\r\n")) },
		Closed:  func(_ *Session[struct{}], why CloseReason) { closed <- why },
	})
	cs := make([]*net.TCPConn, conns)
	for i := range cs {
		c, err := net.Dial("tcp", addrOf(srv))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(waitLong))
		cs[i] = c.(*net.TCPConn)
		cs[i].Write([]byte("HI\r\n"))
		if _, err := io.ReadFull(c, make([]byte, 4)); err != nil {
			t.Fatal(err)
		}
	}
	waitIdle(t, srv, conns)
	for _, c := range cs {
		c.Write([]byte("BYE\r\n"))
		c.CloseWrite()
	}
	for _, c := range cs {
		if b, err := io.ReadAll(c); err != nil || string(b) != "ok\r\n" {
			t.Fatalf("after the last request: %q, %v; want the reply then EOF", b, err)
		}
	}
	for range conns {
		if why := recvWithin(t, closed, "Closed after the FIN"); why != CloseClientClosing {
			t.Fatalf("closed with %v, want ClientClosing", why)
		}
	}
}
