package client_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/supersocket-go/supersocket"
	"github.com/supersocket-go/supersocket/client"
	"github.com/supersocket-go/supersocket/filter"
	"github.com/supersocket-go/supersocket/internal/wstest"
)

// TestMain fails the package if any goroutine outlives the tests: every goroutine a Conn
// starts must have ended once its Close returned.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// waitLong bounds every wait for something that must happen: long enough that a loaded
// machine never fails a correct client, finite so that a broken one fails instead of
// hanging.
const waitLong = 10 * time.Second

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// testCtx returns a context bounded by waitLong and cancelled when the test ends.
func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	t.Cleanup(cancel)
	return ctx
}

type session = supersocket.Session[struct{}]

// startServer runs a supersocket server on 127.0.0.1 with the given filter and request
// handler until the test ends.
func startServer(t testing.TB, f filter.Factory, h func(s *session, req supersocket.Request)) *supersocket.Server[struct{}] {
	t.Helper()
	return startServerT(t, "127.0.0.1:0", f, supersocket.Handlers[struct{}]{Request: h})
}

// startServerT is startServer for any session type, address and handlers.
func startServerT[T any](t testing.TB, addr string, f filter.Factory, h supersocket.Handlers[T]) *supersocket.Server[T] {
	t.Helper()
	return startServerL(t, supersocket.ListenerConfig{Addr: addr}, f, h)
}

// startServerL is startServerT for any listener.
func startServerL[T any](t testing.TB, lc supersocket.ListenerConfig, f filter.Factory, h supersocket.Handlers[T]) *supersocket.Server[T] {
	return startServerE(t, "", lc, f, h)
}

// startServerE is startServerL on the given engine ("": the suite's, SUPERSOCKET_ENGINE).
func startServerE[T any](t testing.TB, engine string, lc supersocket.ListenerConfig, f filter.Factory, h supersocket.Handlers[T]) *supersocket.Server[T] {
	t.Helper()
	srv, err := supersocket.New(supersocket.Config{
		Engine:    engine,
		Listeners: []supersocket.ListenerConfig{lc},
		Filter:    f,
		Logger:    quietLogger(),
	}, h)
	if err != nil {
		t.Fatalf("supersocket.New: %v", err)
	}
	if err := srv.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { srv.Stop() })
	return srv
}

// echoFrame answers every request with its whole frame.
func echoFrame(s *session, req supersocket.Request) { s.Send(req.Frame) }

func addrOf[T any](srv *supersocket.Server[T]) string { return srv.Addrs()[0].String() }

// dial connects with cfg, a quiet logger unless cfg has one, and closes the Conn when the
// test ends (before the servers it started after stop).
func dial(t testing.TB, cfg client.Config) *client.Conn {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	c, err := client.Dial(testCtx(t), cfg)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// rawServer accepts TCP connections on 127.0.0.1 and runs handle for each on its own
// goroutine; when the test ends it closes the listener and every connection and waits for
// the goroutines.
func rawServer(t testing.TB, handle func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveListener(t, ln, handle)
}

func serveListener(t testing.TB, ln net.Listener, handle func(c net.Conn)) string {
	return wstest.ServeListener(t, ln, handle)
}

// watchStates returns an OnStateChange that records each state, and a function that
// checks the next state recorded.
func watchStates(t *testing.T) (onChange func(client.State), expect func(client.State)) {
	states := make(chan client.State, 16)
	return func(s client.State) { states <- s }, func(want client.State) {
		t.Helper()
		if got := recv(t, states, want.String()); got != want {
			t.Fatalf("state %v, want %v", got, want)
		}
	}
}

// recv waits for a value on ch, failing the test after waitLong.
func recv[V any](t testing.TB, ch <-chan V, what string) V {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitLong):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}
