package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/supersocket-go/supersocket"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// start runs the example's server on a free loopback port until the test ends.
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

func TestEchoPipelined(t *testing.T) {
	_, addr := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := dial(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	// Concurrent requests pipeline on one connection; each must get its own reply.
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			id := uint16(1000 + i)
			body := []byte(strings.Repeat(fmt.Sprint(i), i))
			m, err := c.Request(ctx, encode(id, body))
			if err != nil {
				t.Error(err)
				return
			}
			p := decode(m)
			if p.ID != id || p.Reserved != 0 || !bytes.Equal(p.Body, body) {
				t.Errorf("sent id %d body %q; got id %d reserved %d body %q", id, body, p.ID, p.Reserved, p.Body)
			}
		})
	}
	wg.Wait()
}

// TestEchoFraming sends several packets in one write and one packet a byte at a time,
// with a non-zero reserved byte, and expects the exact reply bytes.
func TestEchoFraming(t *testing.T) {
	_, addr := start(t)
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))

	var batch, want []byte
	for i, body := range []string{"", "a", "two", strings.Repeat("x", 3000)} {
		p := encode(uint16(i), []byte(body))
		want = append(want, p...)
		p[4] = 0xAB // the server must answer reserved = 0
		batch = append(batch, p...)
	}
	if _, err := conn.Write(batch); err != nil {
		t.Fatal(err)
	}
	slow := encode(7, []byte("slowly"))
	want = append(want, slow...)
	for i := range slow {
		if _, err := conn.Write(slow[i : i+1]); err != nil {
			t.Fatal(err)
		}
	}
	got := make([]byte, len(want))
	if _, err := io.ReadFull(conn, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("replies differ:\n got %x\nwant %x", got, want)
	}
}

// TestEchoBadTotalSize: a totalSize below the header, or over the limit, closes the
// session with ProtocolError.
func TestEchoBadTotalSize(t *testing.T) {
	srv, addr := start(t)
	for _, total := range []uint16{3, maxRequestLength + 1} {
		conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		h := []byte{byte(total), byte(total >> 8), 1, 0, 0}
		if _, err := conn.Write(h); err != nil {
			t.Fatal(err)
		}
		n, err := conn.Read(make([]byte, 16))
		if n != 0 || !errors.Is(err, io.EOF) {
			t.Errorf("totalSize %d: read %d bytes, %v; want the server to close", total, n, err)
		}
		conn.Close()
	}
	shutdown(t, srv) // every Closed has run once Shutdown returns
	if got := srv.Stats().Closes[supersocket.CloseProtocolError]; got != 2 {
		t.Errorf("ProtocolError closes = %d, want 2", got)
	}
}

func TestRunClient(t *testing.T) {
	_, addr := start(t)
	var out bytes.Buffer
	if err := runClient(context.Background(), addr, []string{"hello", "world"}, &out); err != nil {
		t.Fatal(err)
	}
	want := "packet 1: \"hello\"\npacket 2: \"world\"\n"
	if out.String() != want {
		t.Errorf("client printed %q, want %q", out.String(), want)
	}
}
