package supersocket

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/supersocket-go/supersocket/filter"
)

// Stopping never waits behind application code: a handler that is blocked when the server
// stops delays neither the other sessions' close nor the return of Stop, and a Shutdown
// whose context ends returns then, whatever the handlers do. These tests block handlers
// on channels that they release only after asserting, so a server that waits for the
// handler fails them by timing out.

// blockScene is a server whose BLOCK request blocks its handler until release, and whose
// other requests are echoed.
type blockScene struct {
	srv     *Server[struct{}]
	handled chan struct{} // a Request handler other than BLOCK's has returned
	entered chan *Session[struct{}]
	closed  chan closeEvent
	release func() // unblocks every BLOCK handler; safe to call more than once
}

func newBlockScene(t *testing.T, cfg Config, sessions int, extra func(*Session[struct{}], Request) bool) *blockScene {
	t.Helper()
	gate := make(chan struct{})
	var once sync.Once
	sc := &blockScene{
		handled: make(chan struct{}, 64),
		entered: make(chan *Session[struct{}], sessions),
		closed:  make(chan closeEvent, sessions),
		release: func() { once.Do(func() { close(gate) }) },
	}
	// ObserveRequest runs once the handler has returned: a test that needs idle sessions
	// (not a handler's last instructions racing the stop) waits for it.
	cfg.ObserveRequest = func(key string, _ time.Duration) {
		if key == "ECHO" {
			sc.handled <- struct{}{}
		}
	}
	sc.srv = startServer(t, cfg, Handlers[struct{}]{
		Request: func(s *Session[struct{}], r Request) {
			if extra != nil && extra(s, r) {
				return
			}
			if r.Key == "BLOCK" {
				sc.entered <- s
				<-gate
				return
			}
			s.Send(r.Frame)
		},
		Closed: closedInto[struct{}](sc.closed),
	})
	// Registered after startServer's Stop: cleanups run last-in first-out, so the handlers
	// are released first, and then everything the server started must have ended.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitLong)
		defer cancel()
		if err := sc.srv.Wait(ctx); err != nil {
			t.Errorf("Wait after the handlers were released: %v", err)
		}
	})
	t.Cleanup(sc.release)
	return sc
}

// idleClients dials n clients and completes one request on each, so each is a live,
// idle session: its handler has returned.
func (sc *blockScene) idleClients(t *testing.T, n int) []*client {
	t.Helper()
	cs := make([]*client, n)
	for i := range cs {
		cs[i] = dial(t, sc.srv)
		if got := cs[i].roundTrip("ECHO up\r\n"); got != "ECHO up\r\n" {
			t.Fatalf("echo: %q", got)
		}
		recv(t, sc.handled, "the ECHO handler to return")
	}
	sc.waitIdle(t)
	return cs
}

// waitIdle waits until no session is dispatching: ObserveRequest runs inside the dispatch
// batch, and a session is idle once the batch has ended too (the mark a stop reads).
func (sc *blockScene) waitIdle(t *testing.T) {
	t.Helper()
	eventually(t, "the sessions to be idle", func() bool {
		for s := range sc.srv.Sessions() {
			if s.handling.Load() {
				return false
			}
		}
		return true
	})
}

// blockOne dials a client whose request blocks its handler, and returns it with its
// session once the handler runs.
func (sc *blockScene) blockOne(t *testing.T) (*client, *Session[struct{}]) {
	t.Helper()
	c := dial(t, sc.srv)
	c.send("BLOCK\r\n")
	return c, recv(t, sc.entered, "a BLOCK handler to start")
}

// drainClosed returns the Closed events that have already happened.
func drainClosed(ch <-chan closeEvent) []closeEvent {
	var evs []closeEvent
	for {
		select {
		case ev := <-ch:
			evs = append(evs, ev)
		default:
			return evs
		}
	}
}

// eofAll reads every client to its close in parallel and returns when the last one saw
// it; each must see it within waitLong.
func eofAll(t *testing.T, cs []*client) time.Time {
	t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var last time.Time
	errs := make(chan error, len(cs))
	for _, c := range cs {
		wg.Go(func() {
			c.SetReadDeadline(time.Now().Add(waitLong))
			var buf [256]byte
			for {
				_, err := c.Read(buf[:])
				if err == nil {
					continue
				}
				if !isEOFOrReset(err) {
					errs <- err
				}
				mu.Lock()
				if now := time.Now(); now.After(last) {
					last = now
				}
				mu.Unlock()
				return
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("a client did not see its connection close: %v", err)
	}
	return last
}

func isEOFOrReset(err error) bool { return errors.Is(err, io.EOF) || isReset(err) }

// One blocked Request handler delays neither the close of the other sessions nor Stop:
// the idle clients see their connection close at once, the blocked session's client too
// (its socket is shut down while the handler runs), Stop returns with every other
// session's Closed handler run, and the blocked session finishes when its handler returns.
func TestStop_BlockedHandlerDelaysNoOtherSession(t *testing.T) {
	const idle = 20
	sc := newBlockScene(t, Config{}, idle+1, nil)
	cs := sc.idleClients(t, idle)
	blocked, bs := sc.blockOne(t)

	start := time.Now()
	stopped := make(chan error, 1)
	go func() { stopped <- sc.srv.Stop() }()
	lastEOF := eofAll(t, append(cs, blocked))
	if err := recv(t, stopped, "Stop to return while a handler is blocked"); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	returned := time.Since(start)
	evs := drainClosed(sc.closed)
	if len(evs) != idle {
		t.Fatalf("%d Closed events when Stop returned, want the %d idle sessions'", len(evs), idle)
	}
	for _, ev := range evs {
		if ev.reason != CloseServerShutdown || ev.id == bs.ID() {
			t.Fatalf("Closed(%s, %v) before the blocked handler returned", ev.id, ev.reason)
		}
	}
	if st := sc.srv.State(); st != StateNotStarted {
		t.Errorf("State after Stop: %v", st)
	}
	t.Logf("stop with a blocked handler: every client saw EOF %v after Stop was called; Stop returned after %v",
		lastEOF.Sub(start).Round(time.Microsecond), returned.Round(time.Microsecond))

	select {
	case <-bs.Done():
		t.Fatal("the blocked session finished while its handler still ran")
	default:
	}
	sc.release()
	if ev := recv(t, sc.closed, "the blocked session's Closed"); ev.id != bs.ID() || ev.reason != CloseServerShutdown {
		t.Fatalf("Closed(%s, %v), want (%s, ServerShutdown)", ev.id, ev.reason, bs.ID())
	}
}

// Shutdown called from a Request handler returns ctx.Err() once its context ends (its own
// handler cannot finish while it waits), with every other session closed and its Closed
// handler run; the calling session finishes when the handler returns.
func TestShutdown_FromAHandlerReturnsWhenItsContextEnds(t *testing.T) {
	const grace = 300 * time.Millisecond
	type result struct {
		err     error
		took    time.Duration
		closedN int
	}
	results := make(chan result, 1)
	var sc *blockScene
	sc = newBlockScene(t, Config{}, 4, func(s *Session[struct{}], r Request) bool {
		if r.Key != "SHUTDOWN" {
			return false
		}
		ctx, cancel := context.WithTimeout(context.Background(), grace)
		defer cancel()
		start := time.Now()
		err := s.Server().Shutdown(ctx)
		results <- result{err, time.Since(start), len(sc.closed)}
		return true
	})
	cs := sc.idleClients(t, 3)
	admin := dial(t, sc.srv)
	admin.send("SHUTDOWN\r\n")
	res := recv(t, results, "Shutdown called from a handler to return")
	if !errors.Is(res.err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown from a handler = %v, want context.DeadlineExceeded", res.err)
	}
	if res.took < grace {
		t.Errorf("Shutdown returned after %v, before its context ended (%v)", res.took, grace)
	}
	if res.closedN != 3 {
		t.Errorf("%d Closed events had run when Shutdown returned, want the 3 other sessions'", res.closedN)
	}
	eofAll(t, append(cs, admin))
	evs := drainClosed(sc.closed)
	for len(evs) < 4 {
		evs = append(evs, recv(t, sc.closed, "the admin session's Closed"))
	}
	for _, ev := range evs {
		if ev.reason != CloseServerShutdown {
			t.Errorf("Closed(%s, %v), want ServerShutdown", ev.id, ev.reason)
		}
	}
	t.Logf("Shutdown from a handler returned %v after it was called (context: %v)", res.took.Round(time.Microsecond), grace)
}

// Stop called from a Request handler returns once every other session has closed (their
// Closed handlers have run); the caller's session finishes after the handler returns.
func TestStop_FromAHandlerReturnsOnceTheOthersClosed(t *testing.T) {
	type result struct {
		err     error
		closedN int
	}
	results := make(chan result, 1)
	var sc *blockScene
	sc = newBlockScene(t, Config{}, 6, func(s *Session[struct{}], r Request) bool {
		if r.Key != "STOP" {
			return false
		}
		err := s.Server().Stop()
		results <- result{err, len(sc.closed)}
		return true
	})
	cs := sc.idleClients(t, 5)
	admin := dial(t, sc.srv)
	admin.send("STOP\r\n")
	res := recv(t, results, "Stop called from a handler to return")
	if res.err != nil || res.closedN != 5 {
		t.Fatalf("Stop from a handler = %v with %d Closed events run, want nil and the 5 other sessions'", res.err, res.closedN)
	}
	eofAll(t, append(cs, admin))
	if ev := recv(t, sc.closed, "the admin session's Closed"); ev.reason != CloseServerShutdown {
		t.Errorf("the admin session closed with %v", ev.reason)
	}
}

// A Shutdown whose context ends forces the rest closed without serialising behind
// blocked handlers: sessions that could not flush (their clients never read) and idle
// ones close at once, each blocked session's client sees the end too, and Shutdown
// returns ctx.Err() soon after the context ended.
func TestShutdown_ExpiredContextForcesTheRestClosedInParallel(t *testing.T) {
	const (
		blockedN = 3
		stuckN   = 5 // clients that never read, with a queue to flush
		idleN    = 10
		grace    = 200 * time.Millisecond
	)
	sessions := make(chan *Session[struct{}], stuckN)
	sc := newBlockScene(t, smallSocketBuffers(Config{CloseLinger: time.Hour}), blockedN+stuckN+idleN, func(s *Session[struct{}], r Request) bool {
		if r.Key != "FILL" {
			return false
		}
		s.Send(make([]byte, 4<<20))
		sessions <- s
		return true
	})
	var all []*client
	for range stuckN {
		c := slowReader(t, sc.srv)
		c.send("FILL\r\n")
		writerBusy(t, recv(t, sessions, "a queue to fill"))
		all = append(all, c)
	}
	all = append(all, sc.idleClients(t, idleN)...)
	var blocked []*Session[struct{}]
	for range blockedN {
		c, s := sc.blockOne(t)
		all = append(all, c)
		blocked = append(blocked, s)
	}

	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	start := time.Now()
	err := sc.srv.Shutdown(ctx)
	took := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want context.DeadlineExceeded", err)
	}
	if took < grace || took > grace+waitLong/2 {
		t.Errorf("Shutdown took %v, want a little over %v", took, grace)
	}
	if evs := drainClosed(sc.closed); len(evs) != stuckN+idleN {
		t.Fatalf("%d Closed events when Shutdown returned, want %d (every session but the blocked ones)", len(evs), stuckN+idleN)
	}
	eofAll(t, all)
	for _, s := range blocked {
		if s.CloseReason() != CloseServerShutdown {
			t.Errorf("blocked session %s: CloseReason %v", s.ID(), s.CloseReason())
		}
	}
	t.Logf("Shutdown(ctx %v) with %d blocked handlers and %d clients that never read returned after %v",
		grace, blockedN, stuckN, took.Round(time.Microsecond))

	// Wait is bounded by its own context while a handler is still blocked.
	wctx, wcancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer wcancel()
	if err := sc.srv.Wait(wctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait with blocked handlers = %v, want context.DeadlineExceeded", err)
	}
	sc.release()
	for range blockedN {
		if ev := recv(t, sc.closed, "a blocked session's Closed"); ev.reason != CloseServerShutdown {
			t.Errorf("Closed(%s, %v)", ev.id, ev.reason)
		}
	}
}

// A server stopped while a handler is blocked can start again at once; the old session
// finishes on its own when its handler returns, and Wait waits for it.
func TestRestart_WhileAnOldHandlerIsBlocked(t *testing.T) {
	sc := newBlockScene(t, Config{}, 2, nil)
	sc.blockOne(t)
	if err := sc.srv.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := sc.srv.Start(); err != nil {
		t.Fatalf("Start after a Stop that left a handler blocked: %v", err)
	}
	c := dial(t, sc.srv)
	if got := c.roundTrip("ECHO again\r\n"); got != "ECHO again\r\n" {
		t.Fatalf("echo after the restart: %q", got)
	}
	sc.release()
	recv(t, sc.closed, "the old session's Closed")
	if err := sc.srv.Stop(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	if err := sc.srv.Wait(ctx); err != nil {
		t.Fatalf("Wait: %v", err)
	}
}

// A Closed handler that calls Stop (the last client left) does not deadlock: its stop
// returns, the other sessions closed.
func TestStop_FromAClosedHandler(t *testing.T) {
	stopped := make(chan error, 1)
	closed := make(chan closeEvent, 3)
	srv := startServer(t, Config{}, Handlers[struct{}]{
		Request: echoFrame[struct{}],
		Closed: func(s *Session[struct{}], r CloseReason) {
			closed <- closeEvent{s.ID(), r, time.Now()}
			if r == CloseClientClosing {
				stopped <- s.Server().Stop()
			}
		},
	})
	others := []*client{dial(t, srv), dial(t, srv)}
	for _, c := range others {
		if got := c.roundTrip("ECHO up\r\n"); got != "ECHO up\r\n" {
			t.Fatalf("echo: %q", got)
		}
	}
	leaver := dial(t, srv)
	if got := leaver.roundTrip("ECHO bye\r\n"); got != "ECHO bye\r\n" {
		t.Fatalf("echo: %q", got)
	}
	leaver.Close()
	if err := recv(t, stopped, "Stop called from a Closed handler to return"); err != nil {
		t.Fatal(err)
	}
	eofAll(t, others)
	for range 3 {
		recv(t, closed, "a Closed event")
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	if err := srv.Wait(ctx); err != nil {
		t.Fatalf("Wait: %v", err)
	}
}

// Over UDP too a blocked handler holds only its own session: Stop returns with every
// other UDP session's Closed handler run.
func TestStop_BlockedUDPHandler(t *testing.T) {
	sc := newBlockScene(t, Config{Listeners: udpLoopback(), Filter: filter.CommandLine()}, 4, nil)
	var idle []*udpClient
	for range 3 {
		c := newUDPClient(t, addrOf(sc.srv))
		c.send([]byte("ECHO up\r\n"))
		if got := string(c.recv()); got != "ECHO up\r\n" {
			t.Fatalf("udp echo: %q", got)
		}
		idle = append(idle, c)
	}
	sc.waitIdle(t)
	blocker := newUDPClient(t, addrOf(sc.srv))
	blocker.send([]byte("BLOCK\r\n"))
	bs := recv(t, sc.entered, "the UDP handler to block")
	if err := sc.srv.Stop(); err != nil {
		t.Fatal(err)
	}
	evs := drainClosed(sc.closed)
	if len(evs) != len(idle) {
		t.Fatalf("%d Closed events when Stop returned, want %d", len(evs), len(idle))
	}
	sc.release()
	if ev := recv(t, sc.closed, "the blocked UDP session's Closed"); ev.id != bs.ID() || ev.reason != CloseServerShutdown {
		t.Fatalf("Closed(%s, %v)", ev.id, ev.reason)
	}
}

// A TLS session whose handler is blocked is shut down under its TLS layer: the client
// sees the connection end at once, and Stop returns.
func TestStop_BlockedTLSHandler(t *testing.T) {
	ca := newTestCA(t)
	cert, _, _ := ca.issue(t, "127.0.0.1", false)
	spec := TLSConfig{Config: &tls.Config{Certificates: []tls.Certificate{cert}}}
	sc := newBlockScene(t, Config{Listeners: []ListenerConfig{{Addr: "127.0.0.1:0", TLS: &spec}}}, 2, nil)
	c, err := tls.Dial("tcp", addrOf(sc.srv), &tls.Config{RootCAs: ca.pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "BLOCK\r\n"); err != nil {
		t.Fatal(err)
	}
	recv(t, sc.entered, "the TLS handler to block")
	if err := sc.srv.Stop(); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(waitLong))
	if _, err := c.Read(make([]byte, 16)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read from the TLS client after Stop: %v, want the connection's end", err)
	}
}

// Stop during a graceful Shutdown that waits for a blocked handler forces that Shutdown:
// both return at once, Shutdown with nil; a second Shutdown with a short context returns
// when that context ends rather than waiting for the first.
func TestStop_DuringAShutdownForcesIt(t *testing.T) {
	sc := newBlockScene(t, Config{}, 2, nil)
	sc.blockOne(t)
	shut := make(chan error, 1)
	go func() { shut <- sc.srv.Shutdown(context.Background()) }()
	eventually(t, "the Shutdown to begin", func() bool { return sc.srv.State() == StateStopping })

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := sc.srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a second Shutdown during the first = %v, want context.DeadlineExceeded", err)
	}
	noRecv(t, shut, 50*time.Millisecond, "the graceful Shutdown returning while its handler is blocked")

	if err := sc.srv.Stop(); err != nil {
		t.Fatalf("Stop during Shutdown: %v", err)
	}
	if err := recv(t, shut, "the forced Shutdown to return"); err != nil {
		t.Fatalf("Shutdown forced by Stop = %v, want nil", err)
	}
	if st := sc.srv.State(); st != StateNotStarted {
		t.Fatalf("State = %v after Stop returned", st)
	}
}
