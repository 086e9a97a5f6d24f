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
	tr := trierOrSkip(t, w)
	if n, err := tr.Try([]byte("hello")); n != 5 || err != nil {
		t.Fatalf("Try = %d, %v", n, err)
	}
	expectRead(t, r, "hello")
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
	tr := trierOrSkip(t, w)
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

// TryVec writes several buffers in order with one vectored write; when the peer stops
// reading it reports ErrWouldBlock with the count written, and what it wrote arrives
// whole and in order, empty buffers skipped.
func TestTryVecWritesInOrderAndNeverBlocks(t *testing.T) {
	w, r := tcpPair(t)
	tr := trierOrSkip(t, w)
	if n, err := tr.TryVec([][]byte{[]byte("he"), nil, []byte("llo"), []byte(" world")}); n != 11 || err != nil {
		t.Fatalf("TryVec = %d, %v", n, err)
	}
	expectRead(t, r, "hello world")

	// Fill the socket with numbered bytes; count what was accepted.
	w.SetWriteBuffer(4096)
	var sent int64
	var next byte
	for i := 0; ; i++ {
		if i == 10000 {
			t.Fatal("the socket never filled")
		}
		bufs := make([][]byte, 5)
		for j := range bufs {
			bufs[j] = make([]byte, 10000+j)
			for k := range bufs[j] {
				bufs[j][k] = next
				next++
			}
		}
		n, err := tr.TryVec(bufs)
		sent += n
		// Bytes that were not written are numbered again next time round.
		next -= byte(int64(5*10000+10) - n)
		if errors.Is(err, sendq.ErrWouldBlock) {
			if n >= 5*10000+10 {
				t.Fatal("ErrWouldBlock with everything written")
			}
			break
		}
		if err != nil {
			t.Fatalf("TryVec: %v", err)
		}
	}
	// Everything accepted arrives, in order.
	buf := make([]byte, sent)
	if _, err := io.ReadFull(r, buf); err != nil {
		t.Fatal(err)
	}
	for i, b := range buf {
		if b != byte(i) {
			t.Fatalf("byte %d is %d, want %d", i, b, byte(i))
		}
	}
}

// trierOrSkip returns a Trier for w, or skips the test where the platform has none.
func trierOrSkip(t *testing.T, w net.Conn) *Trier {
	t.Helper()
	tr := New(w)
	if tr == nil {
		t.Skip("no non-blocking write on this platform")
	}
	return tr
}

// expectRead reads len(want) bytes from r and fails the test unless they are want.
func expectRead(t *testing.T, r net.Conn, want string) {
	t.Helper()
	r.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, len(want))
	if _, err := io.ReadFull(r, got); err != nil || string(got) != want {
		t.Fatalf("read %q, %v; want %q", got, err, want)
	}
}
