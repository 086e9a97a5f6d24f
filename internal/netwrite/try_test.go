package netwrite

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/supersocket-go/supersocket/internal/sendq"
)

func tcpPair(t *testing.T) (w *net.TCPConn, r net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		done <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	r = <-done
	if r == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { c.Close(); r.Close() })
	return c.(*net.TCPConn), r
}

func TestTryWritesAndNeverBlocks(t *testing.T) {
	w, r := tcpPair(t)
	tr := New(w)
	if tr == nil {
		t.Skip("no non-blocking write on this platform")
	}
	if n, err := tr.Try([]byte("hello")); n != 5 || err != nil {
		t.Fatalf("Try = %d, %v", n, err)
	}
	r.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, 5)
	if _, err := io.ReadFull(r, got); err != nil || string(got) != "hello" {
		t.Fatalf("read %q, %v", got, err)
	}
	// The peer stops reading: Try fills the socket and then reports ErrWouldBlock at once.
	w.SetWriteBuffer(4096)
	chunk := bytes.Repeat([]byte("x"), 64<<10)
	for i := 0; ; i++ {
		if i == 10000 {
			t.Fatal("the socket never filled")
		}
		start := time.Now()
		n, err := tr.Try(chunk)
		if time.Since(start) > time.Second {
			t.Fatalf("Try blocked for %v", time.Since(start))
		}
		if errors.Is(err, sendq.ErrWouldBlock) {
			if n >= len(chunk) {
				t.Fatalf("ErrWouldBlock with the whole chunk written")
			}
			break
		}
		if err != nil {
			t.Fatalf("Try: %v", err)
		}
	}
}

func TestTryReportsAClosedPeer(t *testing.T) {
	w, r := tcpPair(t)
	tr := New(w)
	if tr == nil {
		t.Skip("no non-blocking write on this platform")
	}
	r.(*net.TCPConn).SetLinger(0)
	r.Close() // a reset
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := tr.Try([]byte("x")); err != nil && !errors.Is(err, sendq.ErrWouldBlock) {
			return // EPIPE or ECONNRESET, as a *net.OpError
		}
		time.Sleep(time.Millisecond) // the reset needs a moment to arrive; no event to wait on
	}
	t.Fatal("Try never reported the reset")
}

func TestNewOnlyForTCP(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if New(a) != nil {
		t.Fatal("a pipe has no non-blocking write")
	}
}
