package apps

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/supersocket-go/supersocket"
	"github.com/supersocket-go/supersocket/cluster"
	"github.com/supersocket-go/supersocket/cluster/natsd"
)

// The chat app on one node behaves as examples/chat documents: a taken name is an
// error, rooms are local, TELL reaches a local user.
func TestChatSingleNode(t *testing.T) {
	srv, err := Chat(supersocket.Config{Listeners: []supersocket.ListenerConfig{{Addr: "127.0.0.1:0"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop() })
	dial := func() (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", srv.Addrs()[0].String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(5 * time.Second))
		return c, bufio.NewReader(c)
	}
	say := func(c net.Conn, r *bufio.Reader, line, want string) {
		t.Helper()
		c.Write([]byte(line + "\r\n"))
		if got, _ := r.ReadString('\n'); strings.TrimRight(got, "\r\n") != want {
			t.Fatalf("%s: got %q, want %q", line, got, want)
		}
	}
	read := func(r *bufio.Reader, want string) {
		t.Helper()
		if got, _ := r.ReadString('\n'); strings.TrimRight(got, "\r\n") != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	a, ar := dial()
	b, br := dial()
	say(a, ar, "SAY hi", "ERR login first")
	say(a, ar, "LOGIN ada", "OK welcome ada")
	say(b, br, "LOGIN ada", "ERR name ada is taken")
	say(b, br, "LOGIN bob", "OK welcome bob")
	say(a, ar, "ENTER lobby", "OK entered lobby")
	say(b, br, "ENTER lobby", "OK entered lobby")
	read(ar, "* JOIN bob")
	say(b, br, "SAY hello", "OK")
	read(ar, "* MSG bob hello")
	say(a, ar, "WHO", "OK ada bob")
	say(a, ar, "ROOMS", "OK lobby(2)")
	say(a, ar, "TELL bob psst", "OK")
	read(br, "* TELL ada psst")
	say(a, ar, "TELL nobody x", "ERR no such user: nobody")
	say(b, br, "QUIT", "OK bye")
	read(ar, "* QUIT bob ServerClosing")
	say(a, ar, "LEAVE", "OK left lobby")
	say(a, ar, "ROOMS", "OK")
}

// chatLine is a client of the chat app: replies start with OK or ERR, pushed lines
// with "*".
type chatLine struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dialChat(t *testing.T, srv Server) *chatLine {
	t.Helper()
	c, err := net.Dial("tcp", srv.Addrs()[0].String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &chatLine{t, c, bufio.NewReader(c)}
}

func (l *chatLine) read() string {
	l.t.Helper()
	l.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := l.r.ReadString('\n')
	if err != nil {
		l.t.Fatalf("read: %v (got %q)", err, got)
	}
	return strings.TrimRight(got, "\r\n")
}

// do sends line and returns its reply, skipping pushed lines.
func (l *chatLine) do(line string) string {
	l.t.Helper()
	l.c.Write([]byte(line + "\r\n"))
	for {
		if got := l.read(); !strings.HasPrefix(got, "* ") {
			return got
		}
	}
}

// The clustered chat: when a node goes down without closing its sessions (here: cut
// off from NATS), the other node tells its members of each room which members it lost,
// once, and WHO no longer lists them.
func TestChatCluster_NodeDown(t *testing.T) {
	ns, err := natsd.Start(natsd.Options{Addr: "127.0.0.1:0", StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	start := func(id string, conn *nats.Conn) Server {
		cc := cluster.Config{NodeID: id, HeartbeatInterval: 100 * time.Millisecond, UserTTL: time.Second, Logger: quiet}
		if conn != nil {
			cc.Conn = conn
		} else {
			cc.URL = ns.ClientURL()
		}
		srv, err := ChatCluster(supersocket.Config{Listeners: []supersocket.ListenerConfig{{Addr: "127.0.0.1:0"}}, Logger: quiet}, cc)
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Stop() })
		return srv
	}
	bconn, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bconn.Close)
	a, b := start("a", nil), start("b", bconn)

	ada, cy := dialChat(t, a), dialChat(t, a)
	bob, bea := dialChat(t, b), dialChat(t, b)
	for _, step := range []struct {
		c   *chatLine
		cmd string
	}{
		{ada, "LOGIN ada"}, {ada, "ENTER lobby"}, {cy, "LOGIN cy"}, {cy, "ENTER hall"},
		{bob, "LOGIN bob"}, {bob, "ENTER lobby"}, {bea, "LOGIN bea"}, {bea, "ENTER lobby"},
	} {
		if got := step.c.do(step.cmd); !strings.HasPrefix(got, "OK") {
			t.Fatalf("%s: %q", step.cmd, got)
		}
	}
	// A node announces a member to the others before its ENTER returns, so once ada
	// has heard of bob and bea, node a knows them.
	for _, want := range []string{"* JOIN bob", "* JOIN bea"} {
		if got := ada.read(); got != want {
			t.Fatalf("ada got %q, want %q", got, want)
		}
	}
	if got := ada.do("WHO"); got != "OK ada bea bob" {
		t.Fatalf("WHO: %q", got)
	}

	bconn.Close() // b stops hearing and being heard: a reports it down after NodeTimeout
	if got := ada.read(); got != "* QUIT bea NodeDown" {
		t.Fatalf("ada got %q", got)
	}
	if got := ada.read(); got != "* QUIT bob NodeDown" {
		t.Fatalf("ada got %q", got)
	}
	if got := ada.do("WHO"); got != "OK ada" {
		t.Fatalf("WHO after b went down: %q", got)
	}
	// cy's room had no member on b: nothing for cy.
	if got := cy.do("WHO"); got != "OK cy" {
		t.Fatalf("cy: %q", got)
	}
}
