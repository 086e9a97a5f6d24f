package main

import (
	"bufio"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// startDemo starts the example's NATS server and two nodes on free loopback ports, shut
// down when the test ends; it returns the nodes' addresses.
func startDemo(t *testing.T) (a, b string) {
	t.Helper()
	d, err := start("127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		d.shutdown(ctx)
	})
	return d.nodes[0].Addrs()[0].String(), d.nodes[1].Addrs()[0].String()
}

// member is a client of one node. Replies start with OK or ERR; lines the server pushes
// start with "*".
type member struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

func connect(t *testing.T, addr string) *member {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &member{t: t, conn: conn, r: bufio.NewReader(conn)}
}

func (m *member) line() (string, error) {
	m.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	s, err := m.r.ReadString('\n')
	return strings.TrimRight(s, "\r\n"), err
}

// expect sends line and checks its reply: no line may be pushed before it.
func (m *member) expect(line, want string) {
	m.t.Helper()
	if _, err := m.conn.Write([]byte(line + "\r\n")); err != nil {
		m.t.Fatal(err)
	}
	if got, err := m.line(); err != nil || got != want {
		m.t.Fatalf("%s: got %q, %v; want %q", line, got, err, want)
	}
}

// eventually sends line until its reply is want, for at most 3 s.
func (m *member) eventually(line, want string) {
	m.t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		if _, err := m.conn.Write([]byte(line + "\r\n")); err != nil {
			m.t.Fatal(err)
		}
		got, err := m.line()
		if err == nil && got == want {
			return
		}
		if err != nil || time.Now().After(deadline) {
			m.t.Fatalf("%s: got %q, %v; want %q within 3 s", line, got, err, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pushed checks the next line the server pushed.
func (m *member) pushed(want string) {
	m.t.Helper()
	if got, err := m.line(); err != nil || got != want {
		m.t.Fatalf("got %q, %v; want pushed %q", got, err, want)
	}
}

// Two nodes of one cluster: rooms, TELL and the node list span both, and a second
// login of a user on the other node kicks the first.
func TestTwoNodes(t *testing.T) {
	addrA, addrB := startDemo(t)
	ada, bob := connect(t, addrA), connect(t, addrB)
	ada.expect("LOGIN ada", "OK")
	bob.expect("LOGIN bob", "OK")
	ada.expect("JOIN lobby", "OK")
	bob.expect("JOIN lobby", "OK")

	// A publish reaches the room's members on the other node, not its sender.
	bob.expect("PUB lobby hi", "OK")
	ada.pushed("* lobby bob: hi")
	ada.expect("PUB lobby hello", "OK")
	bob.pushed("* lobby ada: hello")

	// TELL across nodes, and to nobody.
	bob.expect("TELL ada psst", "OK")
	ada.pushed("* bob: psst")
	bob.expect("TELL nobody x", "ERR cluster: no such user: nobody")

	// Each node lists both (a joining node says hello and is answered at once), with
	// the session counts of their latest heartbeats (one a second).
	for _, m := range []*member{ada, bob} {
		m.eventually("NODES", "OK a(1) b(1)")
	}

	// ada logs in again on node b: the first ada is told and closed, the new one is
	// reachable from a.
	ada2 := connect(t, addrB)
	ada2.expect("LOGIN ada", "OK")
	ada.pushed("* KICKED")
	if got, err := ada.line(); err == nil {
		t.Fatalf("the kicked session is still open: %q", got)
	}
	bob.expect("TELL ada again", "OK")
	ada2.pushed("* bob: again")
	ada2.expect("DANCE", "ERR unknown command")
}
