package supersocket

import (
	"bufio"
	"net"
	"testing"
	"time"

	"github.com/supersocket-go/supersocket/filter"
)

// TestIdleSessionKeepsServingAfterItsHop: a session idle past idleHop moves its wait to a
// fresh goroutine (a smaller stack); it must then serve requests, flush replies and close
// exactly as before, with its state intact.
func TestIdleSessionKeepsServingAfterItsHop(t *testing.T) {
	type count struct{ n int }
	closed := make(chan CloseReason, 1)
	srv := startServer(t, Config{Filter: filter.CommandLine()}, Handlers[count]{
		Request: func(s *Session[count], r Request) {
			s.Data().n++
			s.Send([]byte{byte('0' + s.Data().n)}, []byte("\r\n"))
		},
		Closed: func(_ *Session[count], why CloseReason) { closed <- why },
	})
	c, err := net.Dial("tcp", addrOf(srv))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(waitLong))
	r := bufio.NewReader(c)
	ask := func(want string) {
		t.Helper()
		c.Write([]byte("N\r\n"))
		if line, err := r.ReadString('\n'); err != nil || line != want {
			t.Fatalf("got %q, %v; want %q", line, err, want)
		}
	}
	ask("1\r\n")
	// Outwait the hop: there is no event for it, so wait out its interval (bounded).
	time.Sleep(idleHop + idleHop/2)
	ask("2\r\n")
	time.Sleep(idleHop + idleHop/2)
	ask("3\r\n")
	c.Close()
	if why := recvWithin(t, closed, "Closed after the hops"); why != CloseClientClosing {
		t.Fatalf("closed with %v", why)
	}
}
