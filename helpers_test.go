package supersocket

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"
)

// waitLong bounds every wait for an event that must happen. It is long so that a loaded
// machine never fails a correct server, and finite so that a broken one fails the test
// instead of hanging it.
const waitLong = 10 * time.Second

// quietLogger discards everything; tests that assert on logs use captureLogger.
func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a logger.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// captureLogger logs every level into the returned buffer.
func captureLogger() (*slog.Logger, *syncBuffer) {
	buf := &syncBuffer{}
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

func loopback() []ListenerConfig { return []ListenerConfig{{Addr: "127.0.0.1:0"}} }

// newServer fills in a loopback listener and a quiet logger where cfg has none.
func newServer[T any](t testing.TB, cfg Config, h Handlers[T]) *Server[T] {
	t.Helper()
	if len(cfg.Listeners) == 0 {
		cfg.Listeners = loopback()
	}
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	srv, err := New(cfg, h)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return srv
}

// startServer is newServer, started, and stopped when the test ends.
func startServer[T any](t testing.TB, cfg Config, h Handlers[T]) *Server[T] {
	t.Helper()
	srv := newServer(t, cfg, h)
	if err := srv.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { srv.Stop() })
	return srv
}

func addrOf[T any](srv *Server[T]) string { return srv.Addrs()[0].String() }

// echoFrame answers every request with its whole frame, line ending included.
func echoFrame[T any](s *Session[T], r Request) { s.Send(r.Frame) }

// recv waits for one value from ch, failing the test after waitLong.
func recv[V any](t testing.TB, ch <-chan V, what string) V {
	t.Helper()
	timer := time.NewTimer(waitLong)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
		t.Fatalf("timed out after %v waiting for %s", waitLong, what)
		panic("unreachable")
	}
}

// noRecv asserts that nothing arrives on ch within d (used only where the absence of an
// event is the claim, never as synchronisation).
func noRecv[V any](t testing.TB, ch <-chan V, d time.Duration, what string) {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case v := <-ch:
		t.Fatalf("unexpected %s: %v", what, v)
	case <-timer.C:
	}
}

// eventually polls cond until it holds, failing the test after waitLong. It is for state
// that has no event to wait on (a counter, a server state).
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", waitLong, what)
		}
		time.Sleep(time.Millisecond)
	}
}

// closeEvent is what a Closed handler saw.
type closeEvent struct {
	id     string
	reason CloseReason
	at     time.Time
}

// closedInto returns a Closed handler that reports to ch, which must have room.
func closedInto[T any](ch chan<- closeEvent) func(*Session[T], CloseReason) {
	return func(s *Session[T], r CloseReason) { ch <- closeEvent{s.ID(), r, time.Now()} }
}

// sessionsInto returns a Connected handler that reports each session to ch.
func sessionsInto[T any](ch chan<- *Session[T]) func(*Session[T]) {
	return func(s *Session[T]) { ch <- s }
}

// client is a test client over loopback.
type client struct {
	t testing.TB
	*net.TCPConn
	r *bufio.Reader
}

func dial[T any](t testing.TB, srv *Server[T]) *client { return dialAddr(t, addrOf(srv)) }

func dialAddr(t testing.TB, addr string) *client {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, waitLong)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	tc := c.(*net.TCPConn)
	return &client{t: t, TCPConn: tc, r: bufio.NewReader(tc)}
}

// slowReader returns a client for tests that need a session's writer to block: as long as
// it does not read, the server can push no more than the client's initial receive window
// (128 KiB on Linux) plus the server's small socket send buffer (see smallSocketBuffers),
// far below the 4 MiB those tests queue. (Shrinking SO_RCVBUF on a connected socket is no
// better: Linux then stalls the transfer for seconds once the client does read.)
func slowReader[T any](t testing.TB, srv *Server[T]) *client {
	t.Helper()
	return dial(t, srv)
}

// send writes s; it must be called from the test goroutine.
func (c *client) send(s string) {
	c.t.Helper()
	c.SetWriteDeadline(time.Now().Add(waitLong))
	if _, err := io.WriteString(c, s); err != nil {
		c.t.Fatalf("write %q: %v", s, err)
	}
}

// line reads one line, ending included.
func (c *client) line() string {
	c.t.Helper()
	c.SetReadDeadline(time.Now().Add(waitLong))
	l, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read line: got %q, %v", l, err)
	}
	return l
}

// roundTrip sends one line and returns the reply line.
func (c *client) roundTrip(s string) string {
	c.t.Helper()
	c.send(s)
	return c.line()
}

// expectLine reads a line and compares it.
func (c *client) expectLine(want string) {
	c.t.Helper()
	if got := c.line(); got != want {
		c.t.Fatalf("read %q, want %q", got, want)
	}
}

// readToClose reads until the server closes the connection and returns what arrived. The
// close must be orderly (EOF) or a reset (a server closing with unread input resets); a
// timeout fails the test.
func (c *client) readToClose() []byte {
	c.t.Helper()
	c.SetReadDeadline(time.Now().Add(waitLong))
	b, err := io.ReadAll(c.r)
	if err != nil && !isReset(err) {
		c.t.Fatalf("reading until the server closes: %v (after %d bytes)", err, len(b))
	}
	return b
}

// expectClosed asserts that the server closed the connection with nothing more sent.
func (c *client) expectClosed() {
	c.t.Helper()
	if b := c.readToClose(); len(b) > 0 {
		c.t.Fatalf("read %q before the close, want nothing", b)
	}
}

// reset closes the connection with an RST instead of a FIN.
func (c *client) reset() {
	c.t.Helper()
	if err := c.SetLinger(0); err != nil {
		c.t.Fatalf("SetLinger: %v", err)
	}
	c.Close()
}

func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// smallSocketBuffers makes the server's socket send buffers small, for tests that need a
// session's writer to block on a client that does not read (see slowReader).
func smallSocketBuffers(cfg Config) Config {
	cfg.SocketWriteBuffer = 64 << 10 // still quick to drain once the client reads
	return cfg
}
