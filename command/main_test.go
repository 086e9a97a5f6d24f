package command_test

import (
	"bufio"
	"bytes"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/supersocket-go/supersocket"
	"github.com/supersocket-go/supersocket/filter"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitLong bounds every wait for something that must happen: long enough for a loaded
// machine, finite so a broken router fails instead of hanging.
const waitLong = 10 * time.Second

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// syncBuffer is a bytes.Buffer safe for a logger's concurrent writes.
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

// serve starts a command-line server on loopback with h, stopped when the test ends, and
// returns its address. logger may be nil (quiet).
func serve[T any](t *testing.T, h supersocket.Handlers[T], logger *slog.Logger) string {
	t.Helper()
	if logger == nil {
		logger = quietLogger()
	}
	srv, err := supersocket.New(supersocket.Config{
		Listeners: []supersocket.ListenerConfig{{Addr: "127.0.0.1:0"}},
		Filter:    filter.CommandLine(),
		Logger:    logger,
	}, h)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := srv.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { srv.Stop() })
	return srv.Addrs()[0].String()
}

// client is a line-oriented test client.
type client struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, waitLong)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(waitLong))
	t.Cleanup(func() { c.Close() })
	return &client{t: t, c: c, r: bufio.NewReader(c)}
}

func (c *client) send(lines ...string) {
	c.t.Helper()
	if _, err := io.WriteString(c.c, strings.Join(lines, "\r\n")+"\r\n"); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// expect reads one reply line per want, "\r\n" stripped.
func (c *client) expect(want ...string) {
	c.t.Helper()
	for _, w := range want {
		line, err := c.r.ReadString('\n')
		if err != nil {
			c.t.Fatalf("read: %v (got %q, want %q)", err, line, w)
		}
		if got := strings.TrimSuffix(line, "\r\n"); got != w {
			c.t.Fatalf("got %q, want %q", got, w)
		}
	}
}

// expectEOF reads until the server closes the connection and fails on any reply.
func (c *client) expectEOF() {
	c.t.Helper()
	rest, err := io.ReadAll(c.r)
	if err != nil && !isReset(err) {
		c.t.Fatalf("read: %v", err)
	}
	if len(rest) > 0 {
		c.t.Fatalf("unexpected reply %q before close", rest)
	}
}

func isReset(err error) bool { return strings.Contains(err.Error(), "reset") }

// req makes a command-line request as filter.CommandLine would.
func req(key, body string) supersocket.Request {
	return supersocket.Request{Key: key, Body: []byte(body), Frame: []byte(key + " " + body + "\r\n")}
}

// mustPanic runs fn and returns what it panicked with, failing if it did not.
func mustPanic(t *testing.T, fn func()) (p any) {
	t.Helper()
	defer func() {
		p = recover()
		if p == nil {
			t.Fatal("did not panic")
		}
	}()
	fn()
	return nil
}
