package supersocket

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/supersocket-go/supersocket/filter"
)

func dialFrom(t *testing.T, local, addr string) (net.Conn, error) {
	t.Helper()
	d := net.Dialer{Timeout: waitLong, LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	c, err := d.Dial("tcp", addr)
	if err == nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, err
}

func TestMaxConnectionsPerIP(t *testing.T) {
	refused := make(chan error, 4)
	connected := make(chan string, 8)
	srv := startServer(t, Config{
		MaxConnectionsPerIP: 2,
		OnRefused:           func(_ net.Addr, why error) { refused <- why },
	}, Handlers[struct{}]{
		Connected: func(s *Session[struct{}]) { connected <- s.RemoteAddr().String() },
		Request:   func(s *Session[struct{}], r Request) { s.Send(r.Frame) },
	})
	for range 2 {
		if _, err := dialFrom(t, "127.0.0.1", addrOf(srv)); err != nil {
			t.Fatal(err)
		}
		recvWithin(t, connected, "Connected")
	}
	third, err := dialFrom(t, "127.0.0.1", addrOf(srv))
	if err != nil {
		t.Fatal(err)
	}
	if why := recvWithin(t, refused, "refusal"); !errors.Is(why, ErrTooManyFromIP) {
		t.Fatalf("refused for %v", why)
	}
	third.SetReadDeadline(time.Now().Add(waitLong))
	if _, err := third.Read(make([]byte, 1)); err == nil {
		t.Fatal("the third connection from one IP was served")
	}
	// Another address of the loopback range is another IP.
	other, err := dialFrom(t, "127.0.0.2", addrOf(srv))
	if err != nil {
		t.Skipf("cannot bind 127.0.0.2: %v", err)
	}
	recvWithin(t, connected, "Connected from 127.0.0.2")
	other.Write([]byte("ECHO x\r\n"))
	other.SetReadDeadline(time.Now().Add(waitLong))
	if _, err := other.Read(make([]byte, 8)); err != nil {
		t.Fatalf("127.0.0.2 not served: %v", err)
	}
}

// TestAcceptRatePacesAccepting: with AcceptRate 20/s and a burst of 2, six connections
// take at least (6-2)/20 s to be accepted; none is refused.
func TestAcceptRatePacesAccepting(t *testing.T) {
	connected := make(chan time.Time, 8)
	srv := startServer(t, Config{AcceptRate: 20, AcceptBurst: 2}, Handlers[struct{}]{
		Connected: func(*Session[struct{}]) { connected <- time.Now() },
		Request:   func(*Session[struct{}], Request) {},
	})
	start := time.Now()
	for range 6 {
		if _, err := dialFrom(t, "127.0.0.1", addrOf(srv)); err != nil {
			t.Fatal(err)
		}
	}
	var last time.Time
	for range 6 {
		last = recvWithin(t, connected, "Connected")
	}
	if el := last.Sub(start); el < 190*time.Millisecond {
		t.Fatalf("6 connections accepted in %v; the rate allows no faster than 200ms", el)
	}
	if st := srv.Stats(); st.Refused != 0 {
		t.Fatalf("%d refused; pacing must not refuse", st.Refused)
	}
}

// TestFirstRequestTimeoutCutsSlowloris: a silent client and one trickling half a line are
// closed with TimeOut; a client that completed a request is not, though it then idles.
func TestFirstRequestTimeoutCutsSlowloris(t *testing.T) {
	closed := make(chan CloseReason, 4)
	srv := startServer(t, Config{
		Filter:              filter.CommandLine(),
		FirstRequestTimeout: 200 * time.Millisecond,
		IdleCheckInterval:   20 * time.Millisecond,
	}, Handlers[struct{}]{
		Request: func(s *Session[struct{}], r Request) { s.Send([]byte("ok\r\n")) },
		Closed:  func(_ *Session[struct{}], why CloseReason) { closed <- why },
	})
	good, _ := dialFrom(t, "127.0.0.1", addrOf(srv))
	good.Write([]byte("HELLO\r\n"))
	good.SetReadDeadline(time.Now().Add(waitLong))
	if _, err := io.ReadFull(good, make([]byte, 4)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	dialFrom(t, "127.0.0.1", addrOf(srv)) // silent
	slow, _ := dialFrom(t, "127.0.0.1", addrOf(srv))
	stopTrickle := make(chan struct{})
	trickled := make(chan struct{})
	go func() { // one byte every 20ms, never a whole line
		defer close(trickled)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopTrickle:
				return
			case <-tick.C:
				if _, err := slow.Write([]byte("x")); err != nil {
					return
				}
			}
		}
	}()
	defer func() { close(stopTrickle); <-trickled }()
	for range 2 {
		if why := recvWithin(t, closed, "a slow client closed"); why != CloseTimeOut {
			t.Fatalf("closed with %v, want TimeOut", why)
		}
	}
	if el := time.Since(start); el < 200*time.Millisecond {
		t.Fatalf("closed after %v, before FirstRequestTimeout", el)
	}
	good.Write([]byte("AGAIN\r\n"))
	if _, err := io.ReadFull(good, make([]byte, 4)); err != nil {
		t.Fatalf("the client that made a request was cut too: %v", err)
	}
}
