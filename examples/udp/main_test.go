package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/supersocket-go/supersocket"
	"github.com/supersocket-go/supersocket/client"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func start(t *testing.T) (*supersocket.Server[state], string) {
	t.Helper()
	srv, err := newServer("127.0.0.1:0", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return srv, srv.Addrs()[0].String()
}

func udpClient(t *testing.T, addr string) *client.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := dial(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// expect sends key+id+data from c and checks the reply's key, ID and data.
func expect(t *testing.T, c *client.Conn, key, id, data, wantKey, wantData string) {
	t.Helper()
	m, err := call(context.Background(), c, key, id, data)
	if err != nil {
		t.Fatalf("%s from %v: %v", key, c.LocalAddr(), err)
	}
	if string(m.Header[:keySize]) != wantKey || string(m.Header[keySize:]) != id || string(m.Body) != wantData {
		t.Fatalf("%s from %v: got %q, want %q", key, c.LocalAddr(), m.Frame, wantKey+id+wantData)
	}
}

func stat(requests int, from *client.Conn) string {
	return fmt.Sprintf("requests=%d remote=%s", requests, from.LocalAddr())
}

// TestSessionFollowsClient: a second socket, from another port, that sends the same ID
// is the same session; replies go to wherever the latest datagram came from.
func TestSessionFollowsClient(t *testing.T) {
	srv, addr := start(t)
	id := newID()
	first, second := udpClient(t, addr), udpClient(t, addr)
	if first.LocalAddr().String() == second.LocalAddr().String() {
		t.Fatal("the two sockets share an address")
	}
	expect(t, first, "ECHO", id, "héllo", "ECHO", "héllo")
	expect(t, first, "STAT", id, "?", "STAT", stat(2, first))
	expect(t, second, "STAT", id, "?", "STAT", stat(3, second))
	expect(t, first, "ECHO", id, "back", "ECHO", "back")
	expect(t, first, "STAT", id, "?", "STAT", stat(5, first))
	if n := srv.SessionCount(); n != 1 {
		t.Errorf("%d sessions, want 1", n)
	}
	s, ok := srv.Session(id)
	if !ok || s.RemoteAddr().String() != first.LocalAddr().String() {
		t.Errorf("session %q: found %v, remote %v", id, ok, s.RemoteAddr())
	}

	// Another ID is another session, even from the same socket.
	other := newID()
	expect(t, first, "STAT", other, "?", "STAT", stat(1, first))
	expect(t, first, "HUH?", other, "x", "ERR ", `unknown key "HUH?"`)
	if n := srv.SessionCount(); n != 2 {
		t.Errorf("%d sessions, want 2", n)
	}
}

// TestShortDatagramsIgnored: 40 bytes or fewer, or an ID that is not GUID text, and the
// datagram is dropped before any session sees it.
func TestShortDatagramsIgnored(t *testing.T) {
	srv, addr := start(t)
	id := newID()
	c := udpClient(t, addr)
	expect(t, c, "ECHO", id, "x", "ECHO", "x")
	bad := []string{
		"ECHO" + id,      // 40 bytes: no data
		"ECHO" + id[:35], // shorter
		"ECHO" + strings.Replace(id, "-", "+", 1) + "data", // not GUID text
		"ECHO",
	}
	for _, d := range bad {
		if err := c.Send([]byte(d)); err != nil {
			t.Fatal(err)
		}
	}
	// The socket is read in order: by the time this reply comes, the bad datagrams have
	// been dropped, and the session has counted only its two good ones.
	expect(t, c, "STAT", id, "?", "STAT", stat(2, c))
	if got := srv.Stats().DatagramsDropped; got != uint64(len(bad)) {
		t.Errorf("DatagramsDropped = %d, want %d", got, len(bad))
	}
	if n := srv.SessionCount(); n != 1 {
		t.Errorf("%d sessions, want 1", n)
	}
}

func TestRunClient(t *testing.T) {
	_, addr := start(t)
	id := newID()
	if !validID([]byte(id)) {
		t.Fatalf("newID made %q", id)
	}
	var out bytes.Buffer
	if err := runClient(context.Background(), addr, id, []string{"hello", "", "world"}, &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(out.String(), "\n")
	if len(lines) != 4 || lines[0] != "ECHO hello" || lines[1] != "ECHO world" || !strings.HasPrefix(lines[2], "STAT requests=3 remote=127.0.0.1:") {
		t.Errorf("client printed %q", out.String())
	}
	// The session ID is in the reply's header, not printed; check it by asking the
	// server directly with a plain UDP socket.
	conn, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write([]byte("STAT" + id + "?")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 200)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	want := "STAT" + id + "requests=4 remote=" + conn.LocalAddr().String()
	if string(buf[:n]) != want {
		t.Errorf("raw reply %q, want %q", buf[:n], want)
	}
}
