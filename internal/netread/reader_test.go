package netread

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

const waitLong = 10 * time.Second

// tcpPair returns the server and client ends of a loopback TCP connection.
func tcpPair(t *testing.T) (srv, cli *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-accepted
	if s == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return s.(*net.TCPConn), c.(*net.TCPConn)
}

// readUntil reads into pending until it holds want bytes or an error comes.
func readUntil(t *testing.T, r *Reader, pending []byte, want int) ([]byte, error) {
	t.Helper()
	for len(pending) < want {
		var err error
		pending, err = r.Read(pending, 64)
		if err != nil {
			return pending, err
		}
	}
	return pending, nil
}

func TestRead_TCPReturnsBytesThenEOFOnFIN(t *testing.T) {
	srv, cli := tcpPair(t)
	srv.SetReadDeadline(time.Now().Add(waitLong))
	r := New(srv)
	if _, err := cli.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	pending, err := readUntil(t, r, nil, 5)
	if err != nil || string(pending) != "hello" {
		t.Fatalf("Read = %q, %v; want hello", pending, err)
	}
	if cap(pending) < 64 {
		t.Fatalf("the buffer has capacity %d, less than the size asked", cap(pending))
	}
	cli.CloseWrite() // FIN
	pending, err = r.Read(pending, 64)
	if !errors.Is(err, io.EOF) {
		t.Fatalf("Read after the peer's FIN: %v, want io.EOF", err)
	}
	if string(pending) != "hello" {
		t.Fatalf("pending bytes lost on EOF: %q", pending)
	}
	// With nothing pending, EOF returns no buffer.
	if p, err := r.Read(nil, 64); !errors.Is(err, io.EOF) || p != nil {
		t.Fatalf("Read(nil) at EOF = %q (cap %d), %v; want nil, io.EOF", p, cap(p), err)
	}
}

// New bytes land after the pending ones, in the pending slice's spare capacity.
func TestRead_AppendsAfterPending(t *testing.T) {
	srv, cli := tcpPair(t)
	srv.SetReadDeadline(time.Now().Add(waitLong))
	r := New(srv)
	pending := make([]byte, 3, 100)
	copy(pending, "abc")
	cli.Write([]byte("def"))
	got, err := readUntil(t, r, pending, 6)
	if err != nil || string(got) != "abcdef" {
		t.Fatalf("Read = %q, %v; want abcdef", got, err)
	}
	if &got[0] != &pending[0] {
		t.Fatal("Read moved the pending bytes to another buffer instead of appending in place")
	}
}

// A read that fails with nothing pending hands back no buffer; with bytes pending, it
// returns them untouched.
func TestRead_ErrorKeepsPendingAndHoldsNoBufferOtherwise(t *testing.T) {
	srv, _ := tcpPair(t)
	r := New(srv)
	srv.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	p, err := r.Read(nil, 64)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read past the deadline: %v", err)
	}
	if p != nil {
		t.Fatalf("Read with nothing pending returned a buffer (cap %d) with its error", cap(p))
	}
	pending := append(make([]byte, 0, 64), "xyz"...)
	srv.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	p, err = r.Read(pending, 64)
	if !errors.Is(err, os.ErrDeadlineExceeded) || string(p) != "xyz" {
		t.Fatalf("Read with pending bytes past the deadline = %q, %v; want xyz and the timeout", p, err)
	}
}

// A reset is an error, not an orderly EOF: the server tells SocketError from ClientClosing
// by it.
func TestRead_ResetIsNotEOF(t *testing.T) {
	srv, cli := tcpPair(t)
	srv.SetReadDeadline(time.Now().Add(waitLong))
	r := New(srv)
	cli.Write([]byte("partial"))
	pending, err := readUntil(t, r, nil, 7)
	if err != nil {
		t.Fatal(err)
	}
	cli.SetLinger(0)
	cli.Close()
	_, err = r.Read(pending, 64)
	if err == nil || errors.Is(err, io.EOF) {
		t.Fatalf("Read after a reset: %v, want a non-EOF error", err)
	}
}

// A connection without a RawConn (net.Pipe) falls back to Read and keeps the contract.
func TestRead_PipeFallback(t *testing.T) {
	srv, cli := net.Pipe()
	defer srv.Close()
	r := New(srv)
	if r.raw != nil {
		t.Fatal("net.Pipe has no RawConn, yet a raw reader was chosen")
	}
	go func() {
		cli.Write([]byte("over a pipe"))
		cli.Close()
	}()
	srv.SetReadDeadline(time.Now().Add(waitLong))
	pending, err := readUntil(t, r, nil, 11)
	if err != nil || string(pending) != "over a pipe" {
		t.Fatalf("Read = %q, %v", pending, err)
	}
	pending, err = r.Read(pending, 64)
	if !errors.Is(err, io.EOF) || string(pending) != "over a pipe" {
		t.Fatalf("Read after the writer closed = %q, %v; want the pending bytes and io.EOF", pending, err)
	}
	if p, err := r.Read(nil, 64); !errors.Is(err, io.EOF) || p != nil {
		t.Fatalf("Read(nil) at EOF = %q, %v; want nil, io.EOF", p, err)
	}
}
