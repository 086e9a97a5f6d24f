package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/supersocket-go/supersocket"
	"github.com/supersocket-go/supersocket/client"
	"github.com/supersocket-go/supersocket/filter"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// start runs both servers on free loopback ports and returns their addresses.
func start(t *testing.T) (a *app, clientAddr, adminAddr string) {
	t.Helper()
	a, err := newApp("127.0.0.1:0", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := a.shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return a, a.clients.Addrs()[0].String(), a.admin.Addrs()[0].String()
}

func dialAdmin(t *testing.T, addr string) *client.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, client.Config{Addr: addr, Filter: filter.CommandLine()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func admin(t *testing.T, c *client.Conn, line string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m, err := c.Request(ctx, []byte(line+"\r\n"))
	if err != nil {
		t.Fatalf("%s: %v", line, err)
	}
	return strings.TrimRight(string(m.Frame), "\r\n")
}

// eventually polls cond, within a bounded time: for state the framework changes after
// the event the test can see (a session's count drops after its socket has closed).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

func TestAdminSeesClientSide(t *testing.T) {
	_, clientAddr, adminAddr := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	adm := dialAdmin(t, adminAddr)
	if got := admin(t, adm, "COUNT"); got != "SESSIONS 0" {
		t.Fatalf("COUNT with no clients: %q", got)
	}

	var cs []*client.Conn
	for i := range 3 {
		c, err := dialClientSide(ctx, clientAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		body := fmt.Sprintf("client %d", i)
		m, err := c.Request(ctx, encode(uint16(i), []byte(body)))
		if err != nil || packetID(m) != uint16(i) || string(m.Body) != body || m.Header[4] != 0 {
			t.Fatalf("echo: %v %x %q", err, m.Header, m.Body)
		}
		cs = append(cs, c)
	}
	// Each client's echo came back, so each session exists.
	if got := admin(t, adm, "COUNT"); got != "SESSIONS 3" {
		t.Errorf("COUNT: %q", got)
	}
	if got := admin(t, adm, "STATS"); !strings.HasPrefix(got, "requests=3 ") {
		t.Errorf("STATS: %q", got)
	}
	if got := admin(t, adm, "BROADCAST server restarts at noon"); got != "SENT 3" {
		t.Errorf("BROADCAST: %q", got)
	}
	for i, c := range cs {
		m, err := c.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if packetID(m) != noticeID || string(m.Body) != "server restarts at noon" {
			t.Errorf("client %d: notice %d %q", i, packetID(m), m.Body)
		}
	}
	// The admin session is not a client session: it got no notice, and is not counted.
	if got := admin(t, adm, "BROADCAST"); got != "ERR usage: BROADCAST text" {
		t.Errorf("BROADCAST without text: %q", got)
	}

	cs[0].Close()
	eventually(t, "the count to drop", func() bool { return admin(t, adm, "COUNT") == "SESSIONS 2" })
	if got := admin(t, adm, "BROADCAST again"); got != "SENT 2" {
		t.Errorf("BROADCAST after a close: %q", got)
	}
	if got := admin(t, adm, "NOPE"); got != "ERR unknown command: NOPE" {
		t.Errorf("unknown: %q", got)
	}
	if got := admin(t, adm, "QUIT"); got != "BYE" {
		t.Errorf("QUIT: %q", got)
	}
}

// TestStartAllOrNothing: if the admin port is taken, the client side does not stay up.
func TestStartAllOrNothing(t *testing.T) {
	_, _, adminAddr := start(t)
	b, err := newApp("127.0.0.1:0", adminAddr)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.start(); err == nil {
		b.shutdown(context.Background())
		t.Fatal("started with the admin port taken")
	}
	if st := b.clients.State(); st != supersocket.StateNotStarted {
		t.Errorf("client side left %v", st)
	}
}

// lineWriter hands each Write to a channel: runClient's output, line by line.
type lineWriter chan string

func (w lineWriter) Write(p []byte) (int, error) {
	w <- string(p)
	return len(p), nil
}

func TestRunClient(t *testing.T) {
	_, clientAddr, adminAddr := start(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := make(lineWriter, 10)
	done := make(chan error, 1)
	go func() { done <- runClient(ctx, clientAddr, out) }()

	next := func() string {
		select {
		case l := <-out:
			return l
		case err := <-done:
			t.Fatalf("client ended: %v", err)
		case <-time.After(5 * time.Second):
			t.Fatal("timed out waiting for the client's output")
		}
		return ""
	}
	if l := next(); l != "packet 1: hello\n" {
		t.Fatalf("client printed %q", l)
	}
	adm := dialAdmin(t, adminAddr)
	if got := admin(t, adm, "BROADCAST hi there"); got != "SENT 1" {
		t.Fatalf("BROADCAST: %q", got)
	}
	if l := next(); l != "notice: hi there\n" {
		t.Fatalf("client printed %q", l)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("client did not stop")
	}
}
