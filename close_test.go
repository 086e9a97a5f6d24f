package supersocket

import (
	"bytes"
	"crypto/sha256"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/supersocket-go/supersocket/filter"
)

// reasonServer starts a server whose Closed handler reports to the returned channel and
// whose Request handler is req (echoFrame when nil).
func reasonServer(t *testing.T, cfg Config, req func(*Session[struct{}], Request)) (*Server[struct{}], chan closeEvent) {
	t.Helper()
	closed := make(chan closeEvent, 16)
	if req == nil {
		req = echoFrame[struct{}]
	}
	srv := startServer(t, cfg, Handlers[struct{}]{Request: req, Closed: closedInto[struct{}](closed)})
	return srv, closed
}

// expectReason waits for one Closed event and checks its reason and that Stats counted
// exactly one close, for that reason.
func expectReason(t *testing.T, srv *Server[struct{}], closed <-chan closeEvent, want CloseReason) closeEvent {
	t.Helper()
	ev := recv(t, closed, "the Closed event")
	if ev.reason != want {
		t.Errorf("Closed reason = %v, want %v", ev.reason, want)
	}
	st := srv.Stats()
	for r, n := range st.Closes {
		wantN := uint64(0)
		if CloseReason(r) == want {
			wantN = 1
		}
		if n != wantN {
			t.Errorf("Stats.Closes[%v] = %d, want %d", CloseReason(r), n, wantN)
		}
	}
	return ev
}

func TestCloseReason_ClientClosing(t *testing.T) {
	srv, closed := reasonServer(t, Config{}, nil)
	c := dial(t, srv)
	if got := c.roundTrip("ECHO hi\r\n"); got != "ECHO hi\r\n" {
		t.Fatalf("echo: %q", got)
	}
	c.Close()
	expectReason(t, srv, closed, CloseClientClosing)
}

// A half-close (FIN while still reading) is ClientClosing too, and the server still
// flushes what it queued before.
func TestCloseReason_ClientClosingHalfClose(t *testing.T) {
	srv, closed := reasonServer(t, Config{}, nil)
	c := dial(t, srv)
	c.send("ECHO one\r\nECHO two\r\n")
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if got := string(c.readToClose()); got != "ECHO one\r\nECHO two\r\n" {
		t.Fatalf("read %q before the close", got)
	}
	expectReason(t, srv, closed, CloseClientClosing)
}

func TestCloseReason_ServerClosing(t *testing.T) {
	srv, closed := reasonServer(t, Config{}, func(s *Session[struct{}], r Request) {
		if r.Key == "QUIT" {
			s.Send([]byte("BYE\r\n"))
			s.Close(CloseServerClosing)
			return
		}
		s.Send(r.Frame)
	})
	c := dial(t, srv)
	c.send("QUIT\r\nECHO never handled\r\n")
	if got := string(c.readToClose()); got != "BYE\r\n" {
		t.Fatalf("read %q before the close, want BYE and nothing after", got)
	}
	expectReason(t, srv, closed, CloseServerClosing)
	if st := srv.Stats(); st.Requests != 1 {
		t.Errorf("Stats.Requests = %d, want 1: requests after Close are dropped", st.Requests)
	}
}

func TestCloseReason_Unknown(t *testing.T) {
	srv, closed := reasonServer(t, Config{}, func(s *Session[struct{}], r Request) { s.Close(CloseUnknown) })
	c := dial(t, srv)
	c.send("ANY\r\n")
	c.expectClosed()
	expectReason(t, srv, closed, CloseUnknown)
}

func TestCloseReason_ApplicationError_RequestPanics(t *testing.T) {
	logger, logs := captureLogger()
	srv, closed := reasonServer(t, Config{Logger: logger}, func(s *Session[struct{}], r Request) {
		if r.Key == "PANIC" {
			panic("boom in request")
		}
		s.Send(r.Frame)
	})
	bystander := dial(t, srv)
	bystander.send("ECHO before\r\n")
	bystander.expectLine("ECHO before\r\n")

	c := dial(t, srv)
	c.send("PANIC\r\nECHO never handled\r\n")
	c.expectClosed()
	expectReason(t, srv, closed, CloseApplicationError)

	// The server keeps serving the others, and new ones.
	bystander.send("ECHO after\r\n")
	bystander.expectLine("ECHO after\r\n")
	late := dial(t, srv)
	late.send("ECHO late\r\n")
	late.expectLine("ECHO late\r\n")
	if l := logs.String(); !strings.Contains(l, "handler panicked") || !strings.Contains(l, "boom in request") {
		t.Errorf("the panic was not logged with its value; log:\n%s", l)
	}
}

func TestCloseReason_ApplicationError_ConnectedPanics(t *testing.T) {
	logger, logs := captureLogger()
	closed := make(chan closeEvent, 4)
	var connects, requestsOfFirst atomic.Int32
	first := make(chan string, 1)
	srv := startServer(t, Config{Logger: logger}, Handlers[struct{}]{
		Connected: func(s *Session[struct{}]) {
			if connects.Add(1) == 1 {
				first <- s.ID()
				panic("boom in connected")
			}
		},
		Request: func(s *Session[struct{}], r Request) {
			if r.Key == "FIRST" {
				requestsOfFirst.Add(1)
			}
			s.Send(r.Frame)
		},
		Closed: closedInto[struct{}](closed),
	})
	c := dial(t, srv)
	c.send("FIRST\r\n")
	id := recv(t, first, "the first Connected")
	c.expectClosed()
	ev := recv(t, closed, "the Closed event")
	if ev.id != id || ev.reason != CloseApplicationError {
		t.Errorf("Closed(%s, %v), want (%s, ApplicationError)", ev.id, ev.reason, id)
	}
	if n := srv.Stats().Closes[CloseApplicationError]; n != 1 {
		t.Errorf("Stats.Closes[ApplicationError] = %d, want 1", n)
	}
	if n := requestsOfFirst.Load(); n != 0 {
		t.Errorf("%d requests handled for a session whose Connected panicked", n)
	}
	other := dial(t, srv)
	other.send("ECHO fine\r\n")
	other.expectLine("ECHO fine\r\n")
	if l := logs.String(); !strings.Contains(l, "boom in connected") {
		t.Errorf("the panic was not logged; log:\n%s", l)
	}
}

// An RST in the middle of a request (the server holds a partial frame) is SocketError.
func TestCloseReason_SocketError_ResetMidFrame(t *testing.T) {
	srv, closed := reasonServer(t, Config{}, nil)
	c := dial(t, srv)
	c.send("HALF A LI")
	eventually(t, "the server to read the partial frame", func() bool { return srv.Stats().BytesIn == 9 })
	c.reset()
	expectReason(t, srv, closed, CloseSocketError)
	if n := srv.Stats().Requests; n != 0 {
		t.Errorf("Stats.Requests = %d, want 0", n)
	}
}

func TestCloseReason_TimeOut_Idle(t *testing.T) {
	srv, closed := reasonServer(t, Config{IdleTimeout: 50 * time.Millisecond}, nil)
	c := dial(t, srv)
	c.expectClosed()
	expectReason(t, srv, closed, CloseTimeOut)
}

func TestCloseReason_ProtocolError(t *testing.T) {
	t.Run("line over MaxRequestLength", func(t *testing.T) {
		srv, closed := reasonServer(t, Config{MaxRequestLength: 64}, nil)
		c := dial(t, srv)
		limitLine := strings.Repeat("x", 62) + "\r\n" // exactly 64 bytes: allowed
		c.send(limitLine)
		c.expectLine(limitLine)
		c.send(strings.Repeat("y", 100))
		c.expectClosed()
		expectReason(t, srv, closed, CloseProtocolError)
		if n := srv.Stats().Requests; n != 1 {
			t.Errorf("Stats.Requests = %d, want 1", n)
		}
	})
	t.Run("malformed length field", func(t *testing.T) {
		// The field counts the whole frame, so a value below the 2-byte header is malformed.
		srv, closed := reasonServer(t, Config{Filter: filter.LengthPrefixed(filter.LengthField{Size: 2, IncludesHeader: true})}, nil)
		c := dial(t, srv)
		c.send("\x00\x01")
		c.expectClosed()
		expectReason(t, srv, closed, CloseProtocolError)
	})
	t.Run("declared body over the limit, header only", func(t *testing.T) {
		srv, closed := reasonServer(t, Config{Filter: filter.Uint16BE(), MaxRequestLength: 100}, nil)
		c := dial(t, srv)
		atLimit := "\x00\x62" + strings.Repeat("b", 98) // 100-byte frame: allowed
		c.send(atLimit)
		got := make([]byte, len(atLimit))
		c.SetReadDeadline(time.Now().Add(waitLong))
		if _, err := io.ReadFull(c.r, got); err != nil || string(got) != atLimit {
			t.Fatalf("echo of a frame at the limit: %q, %v", got, err)
		}
		c.send("\x00\x63") // declares a 101-byte frame; the body is never sent
		c.expectClosed()
		expectReason(t, srv, closed, CloseProtocolError)
		if n := srv.Stats().Requests; n != 1 {
			t.Errorf("Stats.Requests = %d, want 1", n)
		}
	})
}

// panicFilter is a receive filter with a bug.
type panicFilter struct{}

func (panicFilter) Filter([]byte) (Request, int, error) { panic("filter bug") }

// greedyFilter claims more bytes than it was given.
type greedyFilter struct{}

func (greedyFilter) Filter(data []byte) (Request, int, error) { return Request{}, len(data) + 1, nil }

func TestCloseReason_InternalError(t *testing.T) {
	cases := []struct {
		name    string
		factory filter.Factory
		send    string
		log     string
	}{
		{"filter panics", func(int) filter.Filter { return panicFilter{} }, "x\r\n", "filter bug"},
		{"factory returns nil", func(int) filter.Filter { return nil }, "", "filter factory returned nil"},
		{"factory panics", func(int) filter.Filter { panic("factory bug") }, "", "factory bug"},
		{"filter consumes more than it was given", func(int) filter.Filter { return greedyFilter{} }, "abc", "consumed more bytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			logger, logs := captureLogger()
			var requests atomic.Int32
			srv, closed := reasonServer(t, Config{Filter: tc.factory, Logger: logger}, func(s *Session[struct{}], r Request) { requests.Add(1) })
			c := dial(t, srv)
			if tc.send != "" {
				c.send(tc.send)
			}
			c.expectClosed()
			expectReason(t, srv, closed, CloseInternalError)
			if n := requests.Load(); n != 0 {
				t.Errorf("%d requests handled", n)
			}
			if l := logs.String(); !strings.Contains(l, tc.log) {
				t.Errorf("log lacks %q:\n%s", tc.log, l)
			}
		})
	}
}

func TestCloseReason_ServerShutdown(t *testing.T) {
	srv, closed := reasonServer(t, Config{}, nil)
	clients := []*client{dial(t, srv), dial(t, srv)}
	for _, c := range clients {
		c.send("ECHO up\r\n")
		c.expectLine("ECHO up\r\n")
	}
	if err := srv.Shutdown(t.Context()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for range clients {
		if ev := recv(t, closed, "a Closed event"); ev.reason != CloseServerShutdown {
			t.Errorf("session %s closed with %v, want ServerShutdown", ev.id, ev.reason)
		}
	}
	for _, c := range clients {
		c.expectClosed()
	}
	if n := srv.Stats().Closes[CloseServerShutdown]; n != 2 {
		t.Errorf("Stats.Closes[ServerShutdown] = %d, want 2", n)
	}
}

func TestCloseReason_String(t *testing.T) {
	want := []string{"Unknown", "ServerShutdown", "ClientClosing", "ServerClosing", "ApplicationError",
		"SocketError", "TimeOut", "ProtocolError", "InternalError"}
	for i, w := range want {
		if got := CloseReason(i).String(); got != w {
			t.Errorf("CloseReason(%d).String() = %q, want %q", i, got, w)
		}
	}
	if got := CloseReason(200).String(); got != "CloseReason(200)" {
		t.Errorf("CloseReason(200).String() = %q", got)
	}
}

// Close is idempotent: the first reason wins, from a handler or from racing goroutines,
// and Closed runs once.
func TestClose_IdempotentFirstReasonWins(t *testing.T) {
	t.Run("same goroutine", func(t *testing.T) {
		srv, closed := reasonServer(t, Config{}, func(s *Session[struct{}], r Request) {
			s.Close(CloseServerClosing)
			s.Close(CloseApplicationError)
			s.Close(CloseTimeOut)
			if got := s.CloseReason(); got != CloseServerClosing {
				t.Errorf("CloseReason() = %v right after Close, want ServerClosing", got)
			}
		})
		c := dial(t, srv)
		c.send("X\r\n")
		c.expectClosed()
		expectReason(t, srv, closed, CloseServerClosing)
		noRecv(t, closed, 50*time.Millisecond, "second Closed event")
	})
	t.Run("racing goroutines", func(t *testing.T) {
		sessions := make(chan *Session[struct{}], 1)
		closed := make(chan closeEvent, 4)
		srv := startServer(t, Config{}, Handlers[struct{}]{
			Connected: sessionsInto(sessions),
			Request:   echoFrame[struct{}],
			Closed:    closedInto[struct{}](closed),
		})
		dial(t, srv)
		s := recv(t, sessions, "the session")
		reasons := []CloseReason{CloseServerClosing, CloseApplicationError, CloseTimeOut, CloseProtocolError,
			CloseServerClosing, CloseApplicationError, CloseTimeOut, CloseProtocolError}
		start := make(chan struct{})
		done := make(chan struct{}, len(reasons))
		for _, r := range reasons {
			go func() {
				<-start
				s.Close(r)
				done <- struct{}{}
			}()
		}
		close(start)
		for range reasons {
			recv(t, done, "a Close call to return")
		}
		ev := recv(t, closed, "the Closed event")
		if ev.reason != s.CloseReason() {
			t.Errorf("Closed got %v, CloseReason() says %v", ev.reason, s.CloseReason())
		}
		recv(t, s.Done(), "Done")
		var total uint64
		for _, n := range srv.Stats().Closes {
			total += n
		}
		if total != 1 {
			t.Errorf("Stats.Closes sum to %d, want 1", total)
		}
	})
}

// Bytes queued before Close reach the client before the socket closes.
func TestClose_FlushesQueuedBytesBeforeClosing(t *testing.T) {
	blob := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	var want bytes.Buffer
	for i := range 500 {
		want.WriteString(strings.Repeat("z", i%50) + "\n")
	}
	want.Write(blob)
	srv, closed := reasonServer(t, Config{}, func(s *Session[struct{}], r Request) {
		for i := range 500 {
			if err := s.Send([]byte(strings.Repeat("z", i%50)), []byte("\n")); err != nil {
				t.Errorf("Send: %v", err)
			}
		}
		if err := s.Send(blob); err != nil {
			t.Errorf("Send blob: %v", err)
		}
		s.Close(CloseServerClosing)
	})
	c := dial(t, srv)
	c.send("GO\r\n")
	got := c.readToClose()
	if sha256.Sum256(got) != sha256.Sum256(want.Bytes()) {
		t.Fatalf("received %d bytes, want the %d queued before Close, intact", len(got), want.Len())
	}
	expectReason(t, srv, closed, CloseServerClosing)
	if n := srv.Stats().BytesOut; n != uint64(want.Len()) {
		t.Errorf("Stats.BytesOut = %d, want %d", n, want.Len())
	}
}

// CloseLinger bounds the flush: a client that never reads does not hold a closing session
// past it, and the reason stays the one Close gave.
func TestClose_LingerBoundsFlushToNonReadingClient(t *testing.T) {
	const linger = 200 * time.Millisecond
	sessions := make(chan *Session[struct{}], 1)
	closed := make(chan closeEvent, 1)
	srv := startServer(t, smallSocketBuffers(Config{CloseLinger: linger}), Handlers[struct{}]{
		Connected: sessionsInto(sessions),
		Request:   echoFrame[struct{}],
		Closed:    closedInto[struct{}](closed),
	})
	c := slowReader(t, srv)
	s := recv(t, sessions, "the session")
	if err := s.Send(make([]byte, 4<<20)); err != nil {
		t.Fatal(err)
	}
	writerBusy(t, s)
	start := time.Now()
	s.Close(CloseServerClosing)
	ev := recv(t, closed, "the Closed event")
	if ev.reason != CloseServerClosing {
		t.Errorf("reason %v, want ServerClosing", ev.reason)
	}
	if d := ev.at.Sub(start); d < linger/2 || d > linger+5*time.Second {
		t.Errorf("closed %v after Close, want about the linger of %v", d, linger)
	}
	if got := len(c.readToClose()); got >= 4<<20 {
		t.Errorf("the client got all %d bytes though it did not read within the linger", got)
	}
}

// With a negative CloseLinger, queued bytes are dropped at Close, and a writer blocked on
// a client that never reads does not keep the session open.
func TestClose_NegativeLingerDropsQueuedBytes(t *testing.T) {
	sessions := make(chan *Session[struct{}], 1)
	closed := make(chan closeEvent, 1)
	srv := startServer(t, smallSocketBuffers(Config{CloseLinger: -1}), Handlers[struct{}]{
		Connected: sessionsInto(sessions),
		Request:   echoFrame[struct{}],
		Closed:    closedInto[struct{}](closed),
	})
	c := slowReader(t, srv)
	s := recv(t, sessions, "the session")
	if err := s.Send(make([]byte, 4<<20)); err != nil {
		t.Fatal(err)
	}
	writerBusy(t, s)
	s.Close(CloseServerClosing)
	if ev := recv(t, closed, "the Closed event"); ev.reason != CloseServerClosing {
		t.Errorf("reason %v, want ServerClosing", ev.reason)
	}
	if got := len(c.readToClose()); got >= 4<<20 {
		t.Errorf("the client got all %d queued bytes; a negative linger drops them", got)
	}
}

// writerBusy waits until s's writer has taken everything queued: with a client that does
// not read, it is then blocked writing. On the epoll engine, until the socket was found
// full and the rest of the queue waits for the loop to see it writable.
func writerBusy[T any](t *testing.T, s *Session[T]) {
	t.Helper()
	eventually(t, "the writer to take the queue", func() bool {
		if st, ok := s.tr.(*stream[T]); ok {
			msgs, _ := st.queue.Len()
			return msgs == 0
		}
		return loopWriterParked(s)
	})
}
