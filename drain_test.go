package supersocket

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/supersocket-go/supersocket/filter"
	"github.com/supersocket-go/supersocket/internal/websocket"
)

// drainServer serves ECHO lines; "SLOW x" waits for release before it answers.
func drainServer(t *testing.T, cfg Config, release <-chan struct{}) (*Server[struct{}], chan closeEvent, chan *Session[struct{}]) {
	t.Helper()
	closed := make(chan closeEvent, 256)
	sessions := make(chan *Session[struct{}], 256)
	cfg.Filter = filter.CommandLine()
	srv := startServer(t, cfg, Handlers[struct{}]{
		Connected: sessionsInto(sessions),
		Request: func(s *Session[struct{}], r Request) {
			if r.Key == "SLOW" {
				<-release
			}
			s.Send(r.Body, []byte("\r\n"))
		},
		Closed: closedInto[struct{}](closed),
	})
	return srv, closed, sessions
}

// drainAsync runs Drain with a bound and returns its result on a channel.
func drainAsync[T any](srv *Server[T], d time.Duration) <-chan error {
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		done <- srv.Drain(ctx)
	}()
	return done
}

// TestDrainAnswersWhatItReceived: a drain stops accepting at once, answers the request a
// handler is working on and the requests pipelined behind it, closes each session once it
// is quiet (CloseServerShutdown, the client sees EOF after its last reply), and returns.
func TestDrainAnswersWhatItReceived(t *testing.T) {
	release := make(chan struct{})
	srv, closed, sessions := drainServer(t, Config{}, release)
	addr := addrOf(srv)
	busy := dialAddr(t, addr)
	busy.send("SLOW one\r\nECHO two\r\nECHO three\r\n")
	idle := dialAddr(t, addr)
	idle.echoLine("idle")
	recv(t, sessions, "a session")
	recv(t, sessions, "a session")
	start := time.Now()
	done := drainAsync(srv, waitLong)
	// The idle session closes once quiet; the listener refuses newcomers.
	idle.expectClosed()
	if d := time.Since(start); d > 5*drainQuiet+time.Second {
		t.Errorf("the idle session closed %v into the drain", d)
	}
	eventually(t, "the listener to close", func() bool {
		c, err := net.DialTimeout("tcp", addr, waitLong)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	noRecv(t, done, 2*drainQuiet, "Drain's return while a handler works")
	close(release)
	busy.expectLine("one\r\n")
	busy.expectLine("two\r\n")
	busy.expectLine("three\r\n")
	busy.expectClosed()
	if err := recv(t, done, "Drain"); err != nil {
		t.Fatalf("Drain: %v", err)
	}
	for range 2 {
		if ev := recv(t, closed, "a close"); ev.reason != CloseServerShutdown {
			t.Errorf("closed with %v", ev.reason)
		}
	}
	if srv.State() != StateNotStarted {
		t.Fatalf("state %v after Drain", srv.State())
	}
}

// echoLine sends "ECHO text" to a drainServer and expects text back.
func (c *client) echoLine(text string) {
	c.t.Helper()
	if got := c.roundTrip("ECHO " + text + "\r\n"); got != text+"\r\n" {
		c.t.Fatalf("ECHO %s: %q", text, got)
	}
}

// TestDrainWaitsForPartialRequests: a session with half a request is not closed; once the
// rest comes, the request is answered, and then the session closes.
func TestDrainWaitsForPartialRequests(t *testing.T) {
	srv, _, sessions := drainServer(t, Config{}, nil)
	c := dial(t, srv)
	c.send("ECHO par")
	recv(t, sessions, "the session")
	done := drainAsync(srv, waitLong)
	noRecv(t, done, 5*drainQuiet, "Drain's return with a request half read")
	c.send("tial\r\n")
	c.expectLine("partial\r\n")
	c.expectClosed()
	if err := recv(t, done, "Drain"); err != nil {
		t.Fatal(err)
	}
}

// TestDrainGraceForNewConnections: a client that connected just before the drain and
// sends its request a little later (after the quiet time, within the grace) is answered.
func TestDrainGraceForNewConnections(t *testing.T) {
	srv, _, sessions := drainServer(t, Config{}, nil)
	c := dial(t, srv)
	recv(t, sessions, "the session")
	done := drainAsync(srv, waitLong)
	slow := time.NewTimer(3 * drainQuiet) // the scenario: a client slow to send
	<-slow.C
	c.echoLine("late")
	c.expectClosed()
	if err := recv(t, done, "Drain"); err != nil {
		t.Fatal(err)
	}
}

// TestDrainKeepsBusySessions: a client sending requests more often than the quiet time is
// not cut between a reply and its next request; once it pauses, it is closed.
func TestDrainKeepsBusySessions(t *testing.T) {
	srv, closed, sessions := drainServer(t, Config{}, nil)
	c := dial(t, srv)
	c.echoLine("first")
	recv(t, sessions, "the session")
	done := drainAsync(srv, waitLong)
	tick := time.NewTicker(drainQuiet / 4)
	defer tick.Stop()
	for i := range 20 { // 20 × 25 ms: past the quiet time many times over
		<-tick.C
		c.echoLine(strings.Repeat("x", i+1))
	}
	tick.Stop()
	c.expectClosed()
	if ev := recv(t, closed, "the close"); ev.reason != CloseServerShutdown {
		t.Fatalf("closed with %v", ev.reason)
	}
	if err := recv(t, done, "Drain"); err != nil {
		t.Fatal(err)
	}
}

// TestDrainDeadline: when the context ends, what is left closes as Shutdown closes it,
// and Drain returns the context's error.
func TestDrainDeadline(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	srv, closed, sessions := drainServer(t, Config{CloseLinger: 100 * time.Millisecond}, release)
	c := dial(t, srv)
	c.send("SLOW forever\r\n")
	recv(t, sessions, "the session")
	start := time.Now()
	err := srv.Drain(contextFor(t, 300*time.Millisecond))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Drain: %v", err)
	}
	if d := time.Since(start); d > 300*time.Millisecond+time.Second {
		t.Errorf("Drain returned after %v", d)
	}
	c.readToClose()
	if st := srv.Stats(); st.Requests != 1 {
		t.Fatalf("the request was not handled: %+v", st)
	}
	release <- struct{}{}
	if ev := recv(t, closed, "the close"); ev.reason != CloseServerShutdown {
		t.Fatalf("closed with %v", ev.reason)
	}
}

func contextFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// TestDrainUDPAndWebSocket: a UDP session is drained once its datagrams are handled; a
// WebSocket session gets the 1001 close frame.
func TestDrainUDPAndWebSocket(t *testing.T) {
	closed := make(chan closeEvent, 8)
	srv := startServer(t, Config{
		Listeners: []ListenerConfig{{Network: "udp", Addr: "127.0.0.1:0"}, {Network: "ws", Addr: "127.0.0.1:0"}},
		Filter:    filter.Whole(0),
	}, Handlers[struct{}]{Request: echoFrame[struct{}], Closed: closedInto[struct{}](closed)})
	u := newUDPClient(t, srv.Addrs()[0].String())
	u.send([]byte("dgram"))
	if got := string(u.recv()); got != "dgram" {
		t.Fatalf("udp: %q", got)
	}
	ws := dialWS(t, srv.Addrs()[1].String())
	ws.binary([]byte("msg"))
	ws.expect(websocket.OpBinary, "msg")
	done := drainAsync(srv, waitLong)
	ws.expectClose(websocket.CloseGoingAway)
	ws.closeWith(websocket.CloseGoingAway, "") // the client's answer
	ws.expectEOF()
	if err := recv(t, done, "Drain"); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if ev := recv(t, closed, "a close"); ev.reason != CloseServerShutdown {
			t.Errorf("closed with %v", ev.reason)
		}
	}
}

// TestDrainNotRunning: Drain on a stopped server returns at once.
func TestDrainNotRunning(t *testing.T) {
	srv := newServer(t, Config{}, Handlers[struct{}]{Request: echoFrame[struct{}]})
	if err := srv.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// drainFromHandler serves ECHO lines; "DRAIN" calls Drain from the handler (on a new
// goroutine when async), bounded by grace, and reports its result.
func drainFromHandler(t *testing.T, grace time.Duration, async bool) (*Server[struct{}], chan error, chan closeEvent) {
	t.Helper()
	results := make(chan error, 1)
	closed := make(chan closeEvent, 16)
	srv := startServer(t, Config{Filter: filter.CommandLine(), CloseLinger: 100 * time.Millisecond}, Handlers[struct{}]{
		Request: func(s *Session[struct{}], r Request) {
			if r.Key == "DRAIN" {
				drain := func() {
					ctx, cancel := context.WithTimeout(context.Background(), grace)
					defer cancel()
					results <- s.Server().Drain(ctx)
				}
				if async {
					go drain()
				} else {
					drain()
				}
			}
			s.Send(r.Body, []byte("\r\n"))
		},
		Closed: closedInto[struct{}](closed),
	})
	return srv, results, closed
}

// TestDrainFromAHandler: Drain called in a handler cannot wait for its own session: it
// returns the context's error once the context ends, the other sessions drained (closed
// with ServerShutdown) long before; the caller's session is closed too.
func TestDrainFromAHandler(t *testing.T) {
	const grace = 400 * time.Millisecond
	srv, results, closed := drainFromHandler(t, grace, false)
	other := dial(t, srv)
	other.echoLine("other")
	admin := dial(t, srv)
	start := time.Now()
	admin.send("DRAIN x\r\n")
	other.expectClosed() // drained while Drain waits for its caller
	if ev := recv(t, closed, "the other session's close"); ev.reason != CloseServerShutdown {
		t.Errorf("closed with %v", ev.reason)
	}
	err := recv(t, results, "Drain from a handler to return")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Drain from a handler = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d < grace {
		t.Errorf("Drain returned after %v, before its context ended", d)
	}
	admin.readToClose()
	if ev := recv(t, closed, "the caller's close"); ev.reason != CloseServerShutdown {
		t.Errorf("closed with %v", ev.reason)
	}
}

// TestDrainFromAHandlerGoroutine: Drain started on a new goroutine from a handler drains
// the caller's session too: its reply arrives, then the end, and Drain returns nil.
func TestDrainFromAHandlerGoroutine(t *testing.T) {
	srv, results, _ := drainFromHandler(t, waitLong, true)
	admin := dial(t, srv)
	admin.echoLine("before")
	if got := admin.roundTrip("DRAIN done\r\n"); got != "done\r\n" {
		t.Fatalf("DRAIN: %q", got)
	}
	admin.expectClosed()
	if err := recv(t, results, "Drain"); err != nil {
		t.Fatal(err)
	}
	if srv.State() != StateNotStarted {
		t.Fatalf("state %v after Drain", srv.State())
	}
}

// TestDrainLongLivedPipelined: a client that keeps writing requests without waiting for
// replies gets a reply to every request the server read before it closed the session —
// the server's count of requests equals the client's count of replies — and the end
// comes after the last of them, never in the middle of one.
func TestDrainLongLivedPipelined(t *testing.T) {
	srv, _, sessions := drainServer(t, Config{}, nil)
	c := dial(t, srv)
	recv(t, sessions, "the session")
	stopWriting := make(chan struct{})
	wrote := make(chan int, 1)
	go func() { // writes until told, or until the server ends the connection
		n := 0
		defer func() { wrote <- n }()
		for {
			select {
			case <-stopWriting:
				return
			default:
			}
			c.SetWriteDeadline(time.Now().Add(waitLong))
			if _, err := c.Write([]byte("ECHO ping\r\n")); err != nil {
				return
			}
			n++
			if n%50 == 0 {
				time.Sleep(drainQuiet / 2) // a pause, shorter than the quiet time (pacing, not synchronisation)
			}
		}
	}()
	replies := 0
	for replies < 200 {
		c.expectLine("ping\r\n")
		replies++
	}
	done := drainAsync(srv, waitLong)
	// The writer keeps going: the session is never quiet, so the drain waits.
	noRecv(t, done, 3*drainQuiet, "Drain's return while the client keeps sending")
	close(stopWriting)
	sent := recv(t, wrote, "the writer")
	// Every reply, then the end.
	for {
		c.SetReadDeadline(time.Now().Add(waitLong))
		line, err := c.r.ReadString('\n')
		if err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("after %d replies: %v", replies, err)
			}
			break
		}
		if line != "ping\r\n" {
			t.Fatalf("reply %d: %q", replies, line)
		}
		replies++
	}
	if err := recv(t, done, "Drain"); err != nil {
		t.Fatal(err)
	}
	if st := srv.Stats(); uint64(replies) != st.Requests {
		t.Fatalf("%d replies for %d requests read by the server (%d sent)", replies, st.Requests, sent)
	}
	if replies != sent {
		t.Fatalf("%d replies for %d requests sent: the drain closed a session with requests in its socket", replies, sent)
	}
	t.Logf("%d requests, %d replies", sent, replies)
}

// TestDrainWaitsForHalfAFrame: a WebSocket session with half a frame received is not
// closed; once the rest comes, the message is answered, then the 1001 close comes.
func TestDrainWaitsForHalfAFrame(t *testing.T) {
	srv := startServer(t, Config{
		Listeners: []ListenerConfig{{Network: "ws", Addr: "127.0.0.1:0"}},
		Filter:    filter.Whole(0),
	}, Handlers[struct{}]{Request: echoFrame[struct{}]})
	ws := dialWS(t, srv.Addrs()[0].String())
	ws.binary([]byte("before"))
	ws.expect(websocket.OpBinary, "before")
	frame := encodeFrame(true, 0, websocket.OpBinary, []byte("half and half"), &ws.key)
	ws.write(frame[:len(frame)/2], 0)
	done := drainAsync(srv, waitLong)
	noRecv(t, done, 5*drainQuiet, "Drain's return with half a frame received")
	ws.write(frame[len(frame)/2:], 0)
	ws.expect(websocket.OpBinary, "half and half")
	ws.expectClose(websocket.CloseGoingAway)
	ws.closeWith(websocket.CloseGoingAway, "")
	ws.expectEOF()
	if err := recv(t, done, "Drain"); err != nil {
		t.Fatal(err)
	}
}
