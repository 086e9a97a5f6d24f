//go:build unix

package netread

import (
	"testing"
	"time"

	"github.com/supersocket-go/supersocket/internal/pool"
)

// On Unix a TCP connection is read through its RawConn, and a read that must wait with
// nothing pending gives its buffer back first: an idle connection holds no buffer.
func TestRawReader_IdleConnectionHoldsNoBuffer(t *testing.T) {
	srv, cli := tcpPair(t)
	r := New(srv)
	u, ok := r.raw.(*unixReader)
	if !ok {
		t.Fatalf("a TCP connection on Unix is read with %T, want the raw reader", r.raw)
	}
	u.size = 4096

	// Nothing to read: one attempt takes a buffer, meets EAGAIN and releases it.
	var done bool
	if err := u.rc.Control(func(fd uintptr) { done = u.tryRead(fd) }); err != nil {
		t.Fatal(err)
	}
	if done {
		t.Fatal("tryRead reported a finished read on an idle connection")
	}
	if u.pending != nil {
		t.Fatalf("an idle wait holds a %d-byte buffer", cap(u.pending))
	}

	// Pending bytes are kept across the wait: they are the unfinished request.
	u.pending = append(pool.Get(4096)[:0], "abc"...)
	if err := u.rc.Control(func(fd uintptr) { done = u.tryRead(fd) }); err != nil {
		t.Fatal(err)
	}
	if done || string(u.pending) != "abc" {
		t.Fatalf("tryRead with pending bytes: done %v, pending %q; want false, abc", done, u.pending)
	}
	u.pending = nil

	// The same reader then reads normally.
	cli.Write([]byte("data"))
	srv.SetReadDeadline(time.Now().Add(waitLong))
	got, err := readUntil(t, r, nil, 4)
	if err != nil || string(got) != "data" {
		t.Fatalf("Read = %q, %v", got, err)
	}
}
