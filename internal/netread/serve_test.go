package netread

import (
	"errors"
	"io"
	"os"
	"testing"
	"time"
)

// lineHandler collects bytes into got and stops once it holds want bytes; bounded is
// what BeforeRead reports.
type lineHandler struct {
	got      []byte
	want     int
	bounded  bool
	received int // Received calls
}

func (h *lineHandler) BeforeRead(int) (stop, bounded bool) { return len(h.got) >= h.want, h.bounded }
func (h *lineHandler) ReadSize() int                       { return 64 }
func (h *lineHandler) Received(pending []byte, n, room int) ([]byte, bool) {
	h.received++
	h.got = append(h.got, pending...)
	return pending[:0], len(h.got) >= h.want
}

// Serve hands every read's bytes to the handler, in order, and returns with no error
// when the handler stops it; with a connection that is not raw it does the same through
// Read.
func TestServe_DeliversBytesUntilTheHandlerStops(t *testing.T) {
	for _, raw := range []bool{true, false} {
		srv, cli := tcpPair(t)
		r := New(srv)
		if !raw {
			r.raw = nil
		}
		srv.SetReadDeadline(time.Now().Add(10 * time.Second))
		h := &lineHandler{want: 10}
		go func() {
			// Two writes: one read or two, the bytes must arrive whole and in order.
			cli.Write([]byte("01234"))
			cli.Write([]byte("56789"))
		}()
		rest, err := r.Serve(h, nil)
		if err != nil || string(h.got) != "0123456789" {
			t.Fatalf("raw=%v: got %q, %v", raw, h.got, err)
		}
		if len(rest) != 0 {
			t.Fatalf("raw=%v: %d bytes left pending", raw, len(rest))
		}
	}
}

// A FIN that arrives with the last bytes stops that read short of it. Without a deadline
// bounding the wait, Serve must read again and report io.EOF, never wait for a readiness
// that will not come; with one, it may wait, and the deadline ends the wait.
func TestServe_ShortReadBeforeFIN(t *testing.T) {
	for _, bounded := range []bool{false, true} {
		srv, cli := tcpPair(t)
		r := New(srv)
		limit := 10 * time.Second
		if bounded {
			limit = 200 * time.Millisecond
		}
		srv.SetReadDeadline(time.Now().Add(limit))
		cli.Write([]byte("last"))
		cli.CloseWrite()
		h := &lineHandler{want: 100, bounded: bounded}
		start := time.Now()
		_, err := r.Serve(h, nil)
		if string(h.got) != "last" {
			t.Fatalf("bounded=%v: got %q", bounded, h.got)
		}
		switch {
		case errors.Is(err, io.EOF):
		case bounded && errors.Is(err, os.ErrDeadlineExceeded):
			// Allowed: the owner looks again when its deadline fires.
		default:
			t.Fatalf("bounded=%v: Serve returned %v after %v, want io.EOF", bounded, err, time.Since(start))
		}
	}
}
