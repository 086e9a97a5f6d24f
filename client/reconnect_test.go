package client_test

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/supersocket-go/supersocket"
	"github.com/supersocket-go/supersocket/client"
	"github.com/supersocket-go/supersocket/filter"
)

// freePort returns a loopback address nobody listens on now.
func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestReconnect(t *testing.T) {
	addr := freePort(t)
	srv := startServerT(t, addr, filter.CommandLine(), supersocket.Handlers[struct{}]{
		Request: func(s *session, req supersocket.Request) { s.Send(req.Body, crlf) },
	})
	onChange, expect := watchStates(t)
	c := dial(t, client.Config{
		Addr: addr, Filter: filter.CommandLine(),
		Reconnect: true, MinBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond,
		OnStateChange: onChange,
	})
	expect(client.StateConnected)
	if got := request(t, c, "ECHO before"); got != "before" {
		t.Fatalf("reply %q", got)
	}
	firstLocal := c.LocalAddr().String()

	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	expect(client.StateReconnecting)
	if err := c.Send([]byte("ECHO lost\r\n")); !errors.Is(err, client.ErrNotConnected) {
		t.Fatalf("Send while reconnecting: %v", err)
	}
	if _, err := c.Request(testCtx(t), []byte("ECHO lost\r\n")); !errors.Is(err, client.ErrNotConnected) {
		t.Fatalf("Request while reconnecting: %v", err)
	}
	if c.Err() != nil || c.State() != client.StateReconnecting {
		t.Fatalf("while reconnecting: state %v, Err %v", c.State(), c.Err())
	}

	if err := srv.Start(); err != nil { // rebinds addr
		t.Fatal(err)
	}
	expect(client.StateConnected)
	if got := request(t, c, "ECHO after"); got != "after" {
		t.Fatalf("reply after reconnecting %q", got)
	}
	if c.LocalAddr().String() == firstLocal {
		t.Fatalf("still on the first connection %s", firstLocal)
	}

	// Close while redialling ends the backoff at once.
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	expect(client.StateReconnecting)
	c.Close()
	expect(client.StateClosed)
	if !errors.Is(c.Err(), client.ErrClosed) {
		t.Fatalf("Err: %v", c.Err())
	}
}

// TestReconnectFailsPending: a Request waiting when the connection drops fails with
// ErrConnectionLost, even though the Conn reconnects.
func TestReconnectFailsPending(t *testing.T) {
	ls := startLineServer(t, nil)
	states := make(chan client.State, 16)
	c := lineClient(t, ls, client.Config{
		Reconnect: true, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond,
		OnStateChange: func(s client.State) { states <- s },
	})
	recv(t, states, "Connected")
	if _, err := c.Request(testCtx(t), []byte("HANG\r\n")); !errors.Is(err, client.ErrConnectionLost) {
		t.Fatalf("Request on a dropped connection: %v", err)
	}
	if s := recv(t, states, "Reconnecting"); s != client.StateReconnecting {
		t.Fatalf("state %v", s)
	}
	if s := recv(t, states, "Connected"); s != client.StateConnected {
		t.Fatalf("state %v", s)
	}
	if got := request(t, c, "ECHO again"); got != "again" {
		t.Fatalf("reply %q", got)
	}
}
