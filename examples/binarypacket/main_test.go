package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
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

func TestHandlers(t *testing.T) {
	_, addr := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := dial(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	sum := func(n int32) []byte { return binary.LittleEndian.AppendUint32(nil, uint32(n)) }
	for _, tc := range []struct {
		name     string
		req, rep packet
	}{
		{"echo", packet{ID: idEcho, Value1: -3, Value2: 7, Body: []byte("hello")}, packet{ID: idEcho, Value1: -3, Value2: 7, Body: []byte("hello")}},
		{"echo empty", packet{ID: idEcho}, packet{ID: idEcho, Body: []byte{}}},
		{"reverse", packet{ID: idReverse, Value1: 1, Body: []byte("abc\x00\xff")}, packet{ID: idReverse, Value1: 1, Body: []byte("\xff\x00cba")}},
		{"sum", packet{ID: idSum, Value1: 20, Value2: 22}, packet{ID: idSum, Value1: 20, Value2: 22, Body: sum(42)}},
		{"sum past int16", packet{ID: idSum, Value1: 32767, Value2: 32767}, packet{ID: idSum, Value1: 32767, Value2: 32767, Body: sum(65534)}},
		{"unknown", packet{ID: 42, Body: []byte("x")}, packet{ID: idError, Value1: errUnknownPacket, Body: []byte("unknown packet id 42")}},
		// The session survived the unknown packet.
		{"after unknown", packet{ID: idEcho, Body: []byte("still here")}, packet{ID: idEcho, Body: []byte("still here")}},
	} {
		got, err := call(ctx, c, tc.req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got.ID != tc.rep.ID || got.Value1 != tc.rep.Value1 || got.Value2 != tc.rep.Value2 || !bytes.Equal(got.Body, tc.rep.Body) {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.rep)
		}
	}
}

// TestSplitHeader delivers two packets a byte at a time.
func TestSplitHeader(t *testing.T) {
	_, addr := start(t)
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	a := packet{ID: idEcho, Value1: 5, Body: []byte("one")}.encode()
	b := packet{ID: idReverse, Body: []byte("two")}.encode()
	for _, x := range append(a, b...) {
		if _, err := conn.Write([]byte{x}); err != nil {
			t.Fatal(err)
		}
	}
	want := append(a, packet{ID: idReverse, Body: []byte("owt")}.encode()...)
	got := make([]byte, len(want))
	if _, err := io.ReadFull(conn, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("got %x, want %x", got, want)
	}
}

// TestLyingBodySize: a header declaring a body over the limit, or a negative one, closes
// the session with ProtocolError once the header is in, without waiting for the body.
func TestLyingBodySize(t *testing.T) {
	srv, addr := start(t)
	for _, size := range []int32{maxRequestLength - headerSize + 1, 1 << 30, -1} {
		conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		h := packet{ID: idEcho}.header(0)
		binary.LittleEndian.PutUint32(h[8:], uint32(size))
		// Only the header: the server must not wait for the body.
		if _, err := conn.Write(h); err != nil {
			t.Fatal(err)
		}
		n, err := conn.Read(make([]byte, 64))
		if n != 0 || !errors.Is(err, io.EOF) {
			t.Errorf("body size %d: read %d bytes, %v; want the server to close", size, n, err)
		}
		conn.Close()
	}
	shutdown(t, srv)
	if got := srv.Stats().Closes[supersocket.CloseProtocolError]; got != 3 {
		t.Errorf("ProtocolError closes = %d, want 3", got)
	}
}

func TestRunClient(t *testing.T) {
	_, addr := start(t)
	var out bytes.Buffer
	if err := runClient(context.Background(), addr, &out); err != nil {
		t.Fatal(err)
	}
	want := `packet 1 (1, 2): "hello"
packet 2 (0, 0): "olleh"
sum 20+22 = 42
error 1: unknown packet id 42
`
	if out.String() != want {
		t.Errorf("client printed:\n%s\nwant:\n%s", out.String(), want)
	}
}
