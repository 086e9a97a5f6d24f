package apps

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/supersocket-go/supersocket"
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
