package supersocket

import (
	"context"
	"crypto/sha256"
	"errors"
	"math/rand/v2"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func echoServer(t *testing.T, cfg Config) *Server[struct{}] {
	return newServer(t, cfg, Handlers[struct{}]{Request: echoFrame[struct{}]})
}

func expectEcho(t *testing.T, addr string) {
	t.Helper()
	c := dialAddr(t, addr)
	c.send("ECHO ping\r\n")
	c.expectLine("ECHO ping\r\n")
	c.Close()
}

func TestStart_BindsAllListenersOrNone(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	first := freeAddr(t)
	srv := echoServer(t, Config{Listeners: []ListenerConfig{{Addr: first}, {Addr: busy.Addr().String()}}})
	t.Cleanup(func() { srv.Stop() })

	err = srv.Start()
	if err == nil {
		t.Fatal("Start succeeded with its second address in use")
	}
	if !errors.Is(err, syscall.EADDRINUSE) || !strings.Contains(err.Error(), busy.Addr().String()) {
		t.Errorf("Start error %q: want EADDRINUSE naming %s", err, busy.Addr())
	}
	if st := srv.State(); st != StateNotStarted {
		t.Errorf("State after a failed Start = %v, want NotStarted", st)
	}
	if a := srv.Addrs(); len(a) != 0 {
		t.Errorf("Addrs after a failed Start = %v, want none", a)
	}
	// The first listener was bound, then released.
	ln, err := net.Listen("tcp", first)
	if err != nil {
		t.Fatalf("the first address is still held after the failed Start: %v", err)
	}
	ln.Close()

	// Once the address is free, the same server starts.
	busy.Close()
	if err := srv.Start(); err != nil {
		t.Fatalf("Start after the address was freed: %v", err)
	}
	for _, a := range srv.Addrs() {
		expectEcho(t, a.String())
	}
}

func TestStart_TwiceReturnsErrServerRunning(t *testing.T) {
	srv := startServer(t, Config{}, Handlers[struct{}]{Request: echoFrame[struct{}]})
	if err := srv.Start(); !errors.Is(err, ErrServerRunning) {
		t.Fatalf("second Start: %v, want ErrServerRunning", err)
	}
	if st := srv.State(); st != StateRunning {
		t.Errorf("State = %v, want Running", st)
	}
	expectEcho(t, addrOf(srv))
}

func TestState_Transitions(t *testing.T) {
	during := make(chan ServerState, 1)
	srv := newServer(t, Config{}, Handlers[struct{}]{
		Request: echoFrame[struct{}],
		Closed:  func(s *Session[struct{}], _ CloseReason) { during <- s.Server().State() },
	})
	t.Cleanup(func() { srv.Stop() })
	if st := srv.State(); st != StateNotStarted {
		t.Fatalf("after New: %v", st)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	if st := srv.State(); st != StateRunning {
		t.Fatalf("after Start: %v", st)
	}
	c := dial(t, srv)
	c.send("ECHO x\r\n")
	c.expectLine("ECHO x\r\n")
	if err := srv.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if st := recv(t, during, "Closed during Shutdown"); st != StateStopping {
		t.Errorf("during Shutdown: %v, want Stopping", st)
	}
	if st := srv.State(); st != StateNotStarted {
		t.Errorf("after Shutdown: %v", st)
	}
	if a := srv.Addrs(); a != nil {
		t.Errorf("Addrs after Shutdown = %v, want nil", a)
	}
	for st, want := range map[ServerState]string{StateNotStarted: "NotStarted", StateStarting: "Starting",
		StateRunning: "Running", StateStopping: "Stopping", ServerState(9): "ServerState(?)"} {
		if st.String() != want {
			t.Errorf("%d.String() = %q, want %q", st, st.String(), want)
		}
	}
}

func TestRestart_AfterStop(t *testing.T) {
	srv := echoServer(t, Config{})
	t.Cleanup(func() { srv.Stop() })
	for round := range 3 {
		if err := srv.Start(); err != nil {
			t.Fatalf("round %d: Start: %v", round, err)
		}
		addr := addrOf(srv)
		expectEcho(t, addr)
		if err := srv.Stop(); err != nil {
			t.Fatalf("round %d: Stop: %v", round, err)
		}
		if st := srv.State(); st != StateNotStarted {
			t.Fatalf("round %d: State after Stop = %v", round, st)
		}
		// The listener was closed: its address can be bound again.
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("round %d: %s still held after Stop: %v", round, addr, err)
		}
		ln.Close()
	}
	// Counters carry over restarts.
	if st := srv.Stats(); st.Accepted != 3 || st.Requests != 3 {
		t.Errorf("Stats after 3 rounds: Accepted %d Requests %d, want 3 and 3", st.Accepted, st.Requests)
	}
}

func TestTwoServersInOneProcess(t *testing.T) {
	reply := func(tag string) Handlers[struct{}] {
		return Handlers[struct{}]{Request: func(s *Session[struct{}], r Request) {
			s.Send([]byte(tag), []byte(" "), r.Frame)
		}}
	}
	a := startServer(t, Config{Name: "a"}, reply("A"))
	b := startServer(t, Config{Name: "b"}, reply("B"))
	ca, cb := dial(t, a), dial(t, b)
	ca.send("HI\r\n")
	cb.send("HI\r\n")
	ca.expectLine("A HI\r\n")
	cb.expectLine("B HI\r\n")
	if err := a.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	ca.expectClosed()
	cb.send("STILL\r\n")
	cb.expectLine("B STILL\r\n")
	if a.Stats().Requests != 1 || b.Stats().Requests != 2 {
		t.Errorf("Requests: a %d b %d, want 1 and 2: servers must not share counters", a.Stats().Requests, b.Stats().Requests)
	}
}

func TestServe_ReturnsErrServerClosedWhenContextEnds(t *testing.T) {
	srv := echoServer(t, Config{})
	t.Cleanup(func() { srv.Stop() })
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ctx) }()
	eventually(t, "Serve to start the server", func() bool { return srv.State() == StateRunning })
	c := dial(t, srv)
	c.send("ECHO served\r\n")
	c.expectLine("ECHO served\r\n")
	cancel()
	if err := recv(t, errc, "Serve to return"); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve returned %v, want ErrServerClosed", err)
	}
	c.expectClosed()
	if st := srv.State(); st != StateNotStarted {
		t.Errorf("State after Serve returned: %v", st)
	}
}

func TestServe_ReturnsErrServerClosedAfterShutdownElsewhere(t *testing.T) {
	srv := echoServer(t, Config{})
	t.Cleanup(func() { srv.Stop() })
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(context.Background()) }()
	eventually(t, "Serve to start the server", func() bool { return srv.State() == StateRunning })
	expectEcho(t, addrOf(srv))
	if err := srv.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := recv(t, errc, "Serve to return"); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve returned %v, want ErrServerClosed", err)
	}
}

func TestServe_ReturnsTheStartError(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	srv := echoServer(t, Config{Listeners: []ListenerConfig{{Addr: busy.Addr().String()}}})
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(t.Context()) }()
	if err := recv(t, errc, "Serve to fail"); !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("Serve returned %v, want EADDRINUSE", err)
	}
}

func TestListeners_IPv4AndIPv6InOneServer(t *testing.T) {
	probe, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("cannot bind [::1]: %v", err)
	}
	probe.Close()
	local := make(chan net.Addr, 2)
	srv := startServer(t, Config{Listeners: []ListenerConfig{{Addr: "127.0.0.1:0"}, {Network: "tcp6", Addr: "[::1]:0"}}},
		Handlers[struct{}]{
			Connected: func(s *Session[struct{}]) { local <- s.LocalAddr() },
			Request:   echoFrame[struct{}],
		})
	addrs := srv.Addrs()
	if len(addrs) != 2 {
		t.Fatalf("Addrs = %v, want 2", addrs)
	}
	for i, want := range []string{"127.0.0.1", "::1"} {
		ip := addrs[i].(*net.TCPAddr).IP.String()
		if ip != want {
			t.Errorf("Addrs[%d] = %v, want on %s", i, addrs[i], want)
		}
		expectEcho(t, addrs[i].String())
		if got := recv(t, local, "Connected"); got.String() != addrs[i].String() {
			t.Errorf("session LocalAddr %v, want %v", got, addrs[i])
		}
	}
}

// Shutdown closes every session with ServerShutdown, and bytes queued before it still
// reach their client, intact, before the socket closes.
func TestShutdown_FlushesQueuedBytesAndClosesEverySession(t *testing.T) {
	payload := make([]byte, 4<<20)
	rand.NewChaCha8([32]byte{1}).Read(payload)
	queued := make(chan *Session[struct{}], 1)
	closed := make(chan closeEvent, 3)
	srv := startServer(t, smallSocketBuffers(Config{CloseLinger: waitLong}), Handlers[struct{}]{
		Request: func(s *Session[struct{}], r Request) {
			if r.Key == "BIG" {
				if err := s.Send(payload); err != nil {
					t.Errorf("Send: %v", err)
				}
				queued <- s
				return
			}
			s.Send(r.Frame)
		},
		Closed: closedInto[struct{}](closed),
	})
	others := []*client{dial(t, srv), dial(t, srv)}
	for _, c := range others {
		c.send("ECHO up\r\n")
		c.expectLine("ECHO up\r\n")
	}
	big := slowReader(t, srv)
	big.send("BIG\r\n")
	s := recv(t, queued, "the payload to be queued")
	writerBusy(t, s)

	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(context.Background()) }()
	eventually(t, "Shutdown to close the session", func() bool { return s.CloseReason() == CloseServerShutdown })
	if out := srv.Stats().BytesOut; out >= uint64(len(payload)) {
		t.Fatalf("the payload was written (%d bytes) before Shutdown closed the session; the test proves nothing", out)
	}

	got := big.readToClose()
	if sha256.Sum256(got) != sha256.Sum256(payload) {
		t.Fatalf("client received %d bytes, want the %d queued before Shutdown, intact", len(got), len(payload))
	}
	if err := recv(t, shut, "Shutdown to return"); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for range 3 {
		if ev := recv(t, closed, "a Closed event"); ev.reason != CloseServerShutdown {
			t.Errorf("session %s closed with %v, want ServerShutdown", ev.id, ev.reason)
		}
	}
	for _, c := range others {
		c.expectClosed()
	}
	if st := srv.State(); st != StateNotStarted {
		t.Errorf("State after Shutdown: %v", st)
	}
}

// Shutdown waits for running handlers: it returns only after the handler has returned and
// the session's Closed ran.
func TestShutdown_WaitsForRunningHandler(t *testing.T) {
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	closed := make(chan closeEvent, 1)
	srv := startServer(t, Config{}, Handlers[struct{}]{
		Request: func(s *Session[struct{}], r Request) {
			entered <- struct{}{}
			<-release
		},
		Closed: closedInto[struct{}](closed),
	})
	c := dial(t, srv)
	c.send("WORK\r\n")
	recv(t, entered, "the handler to start")
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(context.Background()) }()
	noRecv(t, shut, 100*time.Millisecond, "Shutdown returning while a handler runs")
	close(release)
	if err := recv(t, shut, "Shutdown to return"); err != nil {
		t.Fatal(err)
	}
	closedAlready(t, closed, CloseServerShutdown, "Shutdown")
}

// A Shutdown whose context ends while a client never reads returns ctx.Err(), and still
// every goroutine of the server has ended when it returns.
func TestShutdown_ContextExpiresWhileClientNeverReads(t *testing.T) {
	before := goleak.IgnoreCurrent()                   // the goroutines that ran before this test
	t.Cleanup(func() { goleak.VerifyNone(t, before) }) // runs last
	closed := make(chan closeEvent, 1)
	sessions := make(chan *Session[struct{}], 1)
	srv := startServer(t, smallSocketBuffers(Config{CloseLinger: time.Hour}), Handlers[struct{}]{
		Connected: sessionsInto(sessions),
		Request:   echoFrame[struct{}],
		Closed:    closedInto[struct{}](closed),
	})
	slowReader(t, srv)
	s := recv(t, sessions, "the session")
	if err := s.Send(make([]byte, 4<<20)); err != nil {
		t.Fatal(err)
	}
	writerBusy(t, s)
	// A Send blocked on the full queue is woken by the shutdown.
	blocked := make(chan error, 1)
	go func() {
		for {
			if err := s.Send([]byte("more")); err != nil {
				blocked <- err
				return
			}
		}
	}()

	const grace = 200 * time.Millisecond
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	err := srv.Shutdown(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d < grace || d > grace+waitLong/2 {
		t.Errorf("Shutdown took %v, want a little over %v", d, grace)
	}
	if ev := recv(t, closed, "the Closed event"); ev.reason != CloseServerShutdown {
		t.Errorf("reason %v, want ServerShutdown", ev.reason)
	}
	if err := recv(t, blocked, "the blocked Send"); !errors.Is(err, ErrSessionClosed) {
		t.Errorf("blocked Send returned %v, want ErrSessionClosed", err)
	}
	if st := srv.State(); st != StateNotStarted {
		t.Errorf("State = %v", st)
	}
	goleak.VerifyNone(t, before) // nothing the server started is left running
}

func TestShutdownAndStop_OnAServerNotRunning(t *testing.T) {
	srv := echoServer(t, Config{})
	if err := srv.Shutdown(t.Context()); err != nil {
		t.Errorf("Shutdown before Start: %v", err)
	}
	if err := srv.Stop(); err != nil {
		t.Errorf("Stop before Start: %v", err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

// Stop drops queued bytes rather than waiting on a client that does not read, and the
// Closed handlers have run when it returns.
func TestStop_DoesNotWaitForNonReadingClient(t *testing.T) {
	closed := make(chan closeEvent, 1)
	sessions := make(chan *Session[struct{}], 1)
	srv := startServer(t, smallSocketBuffers(Config{CloseLinger: time.Hour}), Handlers[struct{}]{
		Connected: sessionsInto(sessions),
		Request:   echoFrame[struct{}],
		Closed:    closedInto[struct{}](closed),
	})
	slowReader(t, srv)
	s := recv(t, sessions, "the session")
	if err := s.Send(make([]byte, 4<<20)); err != nil {
		t.Fatal(err)
	}
	writerBusy(t, s)
	stopped := make(chan error, 1)
	go func() { stopped <- srv.Stop() }()
	if err := recv(t, stopped, "Stop to return"); err != nil {
		t.Fatal(err)
	}
	closedAlready(t, closed, CloseServerShutdown, "Stop")
}

// closedAlready checks that the Closed handler has already run, with want, by the time
// the call named by who returned.
func closedAlready(t *testing.T, closed <-chan closeEvent, want CloseReason, who string) {
	t.Helper()
	select {
	case ev := <-closed:
		if ev.reason != want {
			t.Errorf("reason %v, want %v", ev.reason, want)
		}
	default:
		t.Fatalf("%s returned before the session's Closed handler ran", who)
	}
}

// The server's read-only methods are safe from any goroutine, handlers included, at any
// time: a Closed handler that reads them while Shutdown waits for it must not deadlock.
func TestShutdown_HandlersMayReadTheServer(t *testing.T) {
	seen := make(chan Stats, 1)
	srv := startServer(t, Config{}, Handlers[struct{}]{
		Request: echoFrame[struct{}],
		Closed: func(s *Session[struct{}], _ CloseReason) {
			srv := s.Server()
			srv.Addrs()
			srv.State()
			srv.SessionCount()
			seen <- srv.Stats()
		},
	})
	c := dial(t, srv)
	c.send("ECHO x\r\n")
	c.expectLine("ECHO x\r\n")
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(context.Background()) }()
	if err := recv(t, shut, "Shutdown to return"); err != nil {
		t.Fatal(err)
	}
	if st := recv(t, seen, "the Closed handler"); st.Requests != 1 {
		t.Errorf("Stats from the Closed handler: Requests %d, want 1", st.Requests)
	}
}
