package faults

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/supersocket-go/supersocket"
	"github.com/supersocket-go/supersocket/filter"
)

// The tests of this file serve a length-prefixed protocol (filter.Uint32BE: a 4-byte
// big-endian body length, then the body), so a cut can fall in the header or in a body
// whose length the server already knows.

// lenFrame appends a Uint32BE frame of body to dst.
func lenFrame(dst, body []byte) []byte {
	return append(binary.BigEndian.AppendUint32(dst, uint32(len(body))), body...)
}

// bigReply is what the length-prefixed server answers to a request whose body is "BIG".
var bigReply = sync.OnceValue(func() []byte { return randomBytes(4<<20, 3) })

// startLenServer serves the length-prefixed echo: every frame comes back as it came,
// except "BIG", answered with bigReply. big counts requests with a body of bigBody bytes
// (a frame no well-behaved client of these tests completes).
func startLenServer(t *testing.T, tally *closeTally, bigBody int, big *atomic.Int64) *supersocket.Server[struct{}] {
	return startServer(t, supersocket.Config{Filter: filter.Uint32BE()}, supersocket.Handlers[struct{}]{
		Request: func(s *session, req supersocket.Request) {
			switch {
			case len(req.Body) == bigBody:
				big.Add(1)
			case string(req.Body) == "BIG":
				s.Send(bigReply())
			default:
				s.Send(req.Frame)
			}
		},
		Closed: tally.closed,
	})
}

// lenConn is a raw client of the length-prefixed echo.
type lenConn struct {
	net.Conn
	r *bufio.Reader
}

func dialLen(addr string) (*lenConn, error) {
	c, err := net.DialTimeout("tcp", addr, waitLong)
	if err != nil {
		return nil, err
	}
	return &lenConn{Conn: c, r: bufio.NewReader(c)}, nil
}

func (c *lenConn) echo(word string) error {
	c.SetDeadline(time.Now().Add(waitLong))
	if _, err := c.Write(lenFrame(nil, []byte(word))); err != nil {
		return err
	}
	var h [4]byte
	if _, err := io.ReadFull(c.r, h[:]); err != nil {
		return err
	}
	body := make([]byte, binary.BigEndian.Uint32(h[:]))
	if _, err := io.ReadFull(c.r, body); err != nil {
		return err
	}
	if string(body) != word {
		return fmt.Errorf("echo %q answered %q", word, body)
	}
	return nil
}

func lenProber(addr string) func() (echoer, error) {
	return func() (echoer, error) { return dialLen(addr) }
}

// TestRSTMidFrame: clients reset their connection (RST, not FIN) in the middle of a
// request frame the server holds half of, and in the middle of a 4 MiB reply the server
// is writing. Each such session closes with SocketError, no half request reaches the
// handler, established clients lose nothing, and nothing is left behind.
func TestRSTMidFrame(t *testing.T) {
	base := takeBaseline(t)
	const declared = 32 << 10 // the body length the cut frames declare (under MaxRequestLength)
	inbound, outbound := 20*scale(), 10*scale()
	tally := newCloseTally()
	var halfHandled atomic.Int64
	srv := startLenServer(t, tally, declared, &halfHandled)
	addr := addrOf(srv)
	probes := startProbers(t, 5, "during", lenProber(addr))

	// Inbound: a header declaring 64 KiB and half the body, then RST, once the server
	// has read the half (so the reset lands on a session holding a partial frame).
	var conns []*lenConn
	half := lenFrame(nil, randomBytes(declared, 1))[:4+declared/2]
	in0 := srv.Stats().BytesIn
	for range inbound {
		c, err := dialLen(addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		if _, err := c.Write(half); err != nil {
			t.Fatal(err)
		}
	}
	want := uint64(inbound * len(half))
	eventually(t, "the server to read every half frame", func() bool { return srv.Stats().BytesIn-in0 >= want })
	for _, c := range conns {
		if err := rst(c.Conn); err != nil {
			t.Fatal(err)
		}
	}
	reasons := tally.waitTotal(t, inbound)
	if reasons[supersocket.CloseSocketError] != inbound {
		t.Errorf("inbound RST: sessions closed %v, want %d SocketError", fmtReasons(reasons), inbound)
	}

	// Outbound: ask for 4 MiB, read 64 KiB of it, then RST while the server writes.
	out0 := srv.Stats().BytesOut
	var read int64
	for range outbound {
		c, err := dialLen(addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(waitLong))
		if _, err := c.Write(lenFrame(nil, []byte("BIG"))); err != nil {
			t.Fatal(err)
		}
		n, err := io.ReadFull(c.r, make([]byte, 64<<10))
		if err != nil {
			t.Fatalf("reading the start of the big reply: %v", err)
		}
		read += int64(n)
		if err := rst(c.Conn); err != nil {
			t.Fatal(err)
		}
	}
	all := tally.waitTotal(t, inbound+outbound)
	if all[supersocket.CloseSocketError] != inbound+outbound {
		t.Errorf("outbound RST: sessions closed %v, want %d SocketError in all", fmtReasons(all), inbound+outbound)
	}
	written := srv.Stats().BytesOut - out0

	lat := probes.check(t, time.Second)
	if n := halfHandled.Load(); n != 0 {
		t.Errorf("%d cut frames reached the Request handler", n)
	}
	eventually(t, "only the probers' sessions to be gone too", func() bool { return srv.SessionCount() == 0 })
	srv.Stop()
	g, fds := base.left(t)
	t.Logf("RST mid-frame: %d inbound (cut at %d of %d bytes) + %d outbound (cut after %d of %d bytes; server wrote %s before the reset) → closes %v",
		inbound, len(half), 4+declared, outbound, read/int64(outbound), len(bigReply()), mib(written), fmtReasons(all))
	t.Logf("RST mid-frame: half frames handled %d; established clients: lost %d, %v; goroutines left %d, fds left %d",
		halfHandled.Load(), probes.lostCount(), lat["during"], g, fds)
}

// TestHalfFrameThenClose: 100 clients send half a frame — half of them cut in the length
// header, half in the body — and close (FIN). Each session closes with ClientClosing
// once, the partial frames never reach the handler, the buffers they held are released
// (heap back where it was), established clients are untouched, and nothing is left.
func TestHalfFrameThenClose(t *testing.T) {
	base := takeBaseline(t)
	const declared = 1000
	n := 100 * scale()
	tally := newCloseTally()
	var halfHandled atomic.Int64
	srv := startLenServer(t, tally, declared, &halfHandled)
	addr := addrOf(srv)
	probes := startProbers(t, 5, "during", lenProber(addr))
	heap0, rss0 := heapInuse(), rssKB()

	conns := make([]*lenConn, n)
	for i := range conns {
		c, err := dialLen(addr)
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = c
	}
	frame := lenFrame(nil, randomBytes(declared, 2))
	in0 := srv.Stats().BytesIn
	var sent int
	for i, c := range conns {
		part := frame[:2] // in the header
		if i%2 == 1 {
			part = frame[:4+declared/2] // in the body
		}
		if _, err := c.Write(part); err != nil {
			t.Fatal(err)
		}
		sent += len(part)
	}
	eventually(t, "the server to read every half frame", func() bool { return srv.Stats().BytesIn-in0 >= uint64(sent) })
	heapHeld := heapInuse()
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() { c.Close() })
	}
	wg.Wait()
	reasons := tally.waitTotal(t, n)
	if reasons[supersocket.CloseClientClosing] != n || len(reasons) != 1 {
		t.Errorf("sessions closed %v, want %d ClientClosing and nothing else", fmtReasons(reasons), n)
	}
	eventually(t, "the cut sessions to leave the registry", func() bool { return srv.SessionCount() == 5 })
	heap1, rss1 := heapInuse(), rssKB()
	if heap1 > heap0+4<<20 {
		t.Errorf("heap grew from %s to %s after the cut sessions closed", mib(heap0), mib(heap1))
	}

	lat := probes.check(t, time.Second)
	if h := halfHandled.Load(); h != 0 {
		t.Errorf("%d half frames reached the Request handler", h)
	}
	srv.Stop()
	g, fds := base.left(t)
	t.Logf("half frame then FIN: %d clients (%d bytes held by the server) → closes %v; half frames handled %d",
		n, sent, fmtReasons(reasons), halfHandled.Load())
	t.Logf("half frame then FIN: heap %s before, %s while held, %s after; RSS %d → %d KiB; established clients lost %d, %v; goroutines left %d, fds left %d",
		mib(heap0), mib(heapHeld), mib(heap1), rss0, rss1, probes.lostCount(), lat["during"], g, fds)
}

// TestLenFrameHelper is a sanity check of the framing helpers, so a broken helper cannot make
// the tests above pass vacuously.
func TestLenFrameHelper(t *testing.T) {
	f := lenFrame(nil, []byte("abc"))
	if !bytes.Equal(f, []byte{0, 0, 0, 3, 'a', 'b', 'c'}) {
		t.Fatalf("lenFrame = %v", f)
	}
}

// TestHalfCloseGetsEveryReply: clients that pipeline requests and then half-close (FIN
// after the last request, still reading — netcat -N, HTTP/1.0 style) get a reply to every
// request they sent before the FIN, then EOF; each session closes with ClientClosing.
func TestHalfCloseGetsEveryReply(t *testing.T) {
	base := takeBaseline(t)
	clients, requests := 50*scale(), 200
	tally := newCloseTally()
	srv := startServer(t, supersocket.Config{Filter: commandLine}, supersocket.Handlers[struct{}]{
		Request: lineHandler,
		Closed:  tally.closed,
	})
	addr := addrOf(srv)
	var wg sync.WaitGroup
	var lost, got atomic.Int64
	errs := make(chan error, clients)
	for i := range clients {
		wg.Go(func() {
			c, err := net.DialTimeout("tcp", addr, waitLong)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			var req, want bytes.Buffer
			for k := range requests {
				fmt.Fprintf(&req, "ECHO c%d-%d\r\n", i, k)
				fmt.Fprintf(&want, "c%d-%d\r\n", i, k)
			}
			c.SetDeadline(time.Now().Add(waitLong))
			if _, err := c.Write(req.Bytes()); err != nil {
				errs <- err
				return
			}
			if err := c.(*net.TCPConn).CloseWrite(); err != nil {
				errs <- err
				return
			}
			reply, err := readAllUntilClose(c)
			if err != nil {
				errs <- err
			}
			n := int64(bytes.Count(reply, crlf))
			got.Add(n)
			if !bytes.Equal(reply, want.Bytes()) {
				lost.Add(int64(requests) - n)
				errs <- fmt.Errorf("client %d: %d of %d replies (%d bytes of %d), or not in order", i, n, requests, len(reply), want.Len())
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	reasons := tally.waitTotal(t, clients)
	if reasons[supersocket.CloseClientClosing] != clients {
		t.Errorf("sessions closed %v, want %d ClientClosing", fmtReasons(reasons), clients)
	}
	srv.Stop()
	g, fds := base.left(t)
	t.Logf("half-close: %d clients × %d pipelined requests then FIN → replies %d of %d (lost %d); closes %v; goroutines left %d, fds left %d",
		clients, requests, got.Load(), clients*requests, lost.Load(), fmtReasons(reasons), g, fds)
}
