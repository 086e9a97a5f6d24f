package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/supersocket-go/supersocket"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func start(t *testing.T) (*supersocket.Server[struct{}], string) {
	t.Helper()
	srv, err := newServer("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shutdown(t, srv) })
	return srv, srv.Addrs()[0].String()
}

func shutdown(t *testing.T, srv *supersocket.Server[struct{}]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

// TestBothFramingsOneConnection interleaves the two framings on one connection, first
// all in one write, then a byte at a time, and expects the exact replies.
func TestBothFramingsOneConnection(t *testing.T) {
	_, addr := start(t)
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))

	// '*' inside an A frame and 'Y' inside a B frame are just text.
	reqs := "YECHO hi\x00\xff" + "*ADD 1 2#" + "*ECHO Y*\x00#" + "YMULT 6 7\x00\xff" + "YECHO #*\x00\xff" + "*JUMP#"
	want := "YA: hi\x00\xff" + "*B: 3#" + "*B: Y*\x00#" + "YA: 42\x00\xff" + "YA: #*\x00\xff" + "*B: ERR unknown command: JUMP#"
	if _, err := io.WriteString(conn, reqs); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(want))
	if _, err := io.ReadFull(conn, got); err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("one write: got %q, want %q", got, want)
	}

	for i := range len(reqs) {
		if _, err := io.WriteString(conn, reqs[i:i+1]); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := io.ReadFull(conn, got); err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("byte by byte: got %q, want %q", got, want)
	}
}

// TestBadFrames: an unknown first byte, or a frame over the limit, closes the session
// with ProtocolError; the replies to the requests before it still arrive.
func TestBadFrames(t *testing.T) {
	srv, addr := start(t)
	for _, tc := range []struct{ name, send, reply string }{
		{"unknown first byte", "*ECHO ok#XECHO no#", "*B: ok#"},
		{"too long", "YECHO ok\x00\xff*ECHO " + strings.Repeat("z", maxRequestLength-len("*ECHO ")), "YA: ok\x00\xff"},
	} {
		conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(conn, tc.send); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(conn) // until the server closes
		if err != nil || string(got) != tc.reply {
			t.Errorf("%s: read %q, %v; want %q then the close", tc.name, got, err, tc.reply)
		}
		conn.Close()
	}
	shutdown(t, srv)
	if got := srv.Stats().Closes[supersocket.CloseProtocolError]; got != 2 {
		t.Errorf("ProtocolError closes = %d, want 2", got)
	}
}

func TestGoClient(t *testing.T) {
	_, addr := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := dial(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, tc := range []struct {
		first byte
		text  string
		want  string
	}{
		{'*', "ADD 40 2", "B: 42"},
		{'Y', "ADD 40 2", "A: 42"},
		{'Y', "MULT 2 x", "A: ERR not a number: x"},
	} {
		first, reply, err := call(ctx, c, tc.first, tc.text)
		if err != nil {
			t.Fatal(err)
		}
		if first != tc.first || reply != tc.want {
			t.Errorf("%c%s: got %c %q, want %c %q", tc.first, tc.text, first, reply, tc.first, tc.want)
		}
	}
}

func TestRunClient(t *testing.T) {
	_, addr := start(t)
	var out bytes.Buffer
	if err := runClient(context.Background(), addr, &out); err != nil {
		t.Fatal(err)
	}
	want := "Y ECHO hello → Y A: hello\n* ADD 1 2    → * B: 3\n* MULT 6 7   → * B: 42\nY JUMP       → Y A: ERR unknown command: JUMP\n"
	if out.String() != want {
		t.Errorf("client printed %q, want %q", out.String(), want)
	}
}
