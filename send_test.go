package supersocket

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"
)

// blockedPayload is what blockedSession queues to jam a session's writer.
const blockedPayload = 4 << 20

// blockedSession starts a server with cfg and a client that does not read, queues
// blockedPayload bytes on the session and waits until the writer has taken them: from then
// on the writer is stuck in a write and whatever is sent stays queued.
func blockedSession(t *testing.T, cfg Config) (*Server[struct{}], *Session[struct{}], *client, chan closeEvent) {
	t.Helper()
	sessions := make(chan *Session[struct{}], 8)
	closed := make(chan closeEvent, 8)
	srv := startServer(t, smallSocketBuffers(cfg), Handlers[struct{}]{
		Connected: sessionsInto(sessions),
		Request:   echoFrame[struct{}],
		Closed:    closedInto[struct{}](closed),
	})
	c := slowReader(t, srv)
	s := recv(t, sessions, "the session")
	if err := s.TrySend(make([]byte, blockedPayload)); err != nil {
		t.Fatalf("TrySend into an empty queue: %v", err)
	}
	writerBusy(t, s)
	return srv, s, c, closed
}

// within runs fn on another goroutine and fails the test if it has not returned within d.
func within[V any](t *testing.T, d time.Duration, what string, fn func() V) V {
	t.Helper()
	ch := make(chan V, 1)
	go func() { ch <- fn() }()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
		t.Fatalf("%s did not return within %v", what, d)
		panic("unreachable")
	}
}

func TestTrySend_FullQueueReturnsErrSendQueueFullWithoutBlocking(t *testing.T) {
	t.Run("message bound", func(t *testing.T) {
		const size = 4
		srv, s, _, _ := blockedSession(t, Config{SendQueueSize: size})
		for i := range size {
			if err := within(t, time.Second, "TrySend", func() error { return s.TrySend([]byte("x")) }); err != nil {
				t.Fatalf("TrySend %d of %d: %v", i+1, size, err)
			}
		}
		if err := within(t, time.Second, "TrySend on a full queue", func() error { return s.TrySend([]byte("x")) }); !errors.Is(err, ErrSendQueueFull) {
			t.Fatalf("TrySend on a full queue: %v, want ErrSendQueueFull", err)
		}
		if n := srv.Stats().SendQueueFull; n != 1 {
			t.Errorf("Stats.SendQueueFull = %d, want 1", n)
		}
	})
	t.Run("byte bound", func(t *testing.T) {
		_, s, _, _ := blockedSession(t, Config{SendQueueBytes: 1000})
		steps := []struct {
			n    int
			want error
		}{
			{5000, nil}, // an empty queue accepts a message over the byte bound
			{1, ErrSendQueueFull},
		}
		for i, st := range steps {
			if err := s.TrySend(make([]byte, st.n)); !errors.Is(err, st.want) {
				t.Fatalf("step %d: TrySend(%d bytes) = %v, want %v", i, st.n, err, st.want)
			}
		}
	})
	t.Run("byte bound, small messages", func(t *testing.T) {
		_, s, _, _ := blockedSession(t, Config{SendQueueBytes: 1000})
		for i, st := range []struct {
			n    int
			want error
		}{{600, nil}, {600, ErrSendQueueFull}, {400, nil}, {1, ErrSendQueueFull}} {
			if err := s.TrySend(make([]byte, st.n)); !errors.Is(err, st.want) {
				t.Fatalf("step %d: TrySend(%d bytes) = %v, want %v", i, st.n, err, st.want)
			}
		}
	})
}

func TestSend_WaitsThenReturnsErrSendTimeout(t *testing.T) {
	t.Parallel()
	const timeout = 200 * time.Millisecond
	srv, s, _, closed := blockedSession(t, Config{SendQueueSize: 1, SendTimeout: timeout})
	if err := s.TrySend([]byte("fills the queue")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err := within(t, waitLong, "Send", func() error { return s.Send([]byte("waits")) })
	d := time.Since(start)
	if !errors.Is(err, ErrSendTimeout) {
		t.Fatalf("Send on a full queue: %v, want ErrSendTimeout", err)
	}
	if d < timeout || d > timeout+5*time.Second {
		t.Errorf("Send returned after %v, want about SendTimeout (%v)", d, timeout)
	}
	// Without CloseOnSendTimeout the session stays open.
	if r := s.CloseReason(); r != CloseUnknown {
		t.Errorf("session closed (%v) after a send timeout without CloseOnSendTimeout", r)
	}
	if err := s.TrySend([]byte("x")); !errors.Is(err, ErrSendQueueFull) {
		t.Errorf("TrySend after the timeout: %v, want ErrSendQueueFull (session still open)", err)
	}
	select {
	case ev := <-closed:
		t.Errorf("session closed: %v", ev.reason)
	default:
	}
	if n := srv.Stats().SendQueueFull; n != 2 {
		t.Errorf("Stats.SendQueueFull = %d, want 2", n)
	}
}

func TestSend_CloseOnSendTimeoutClosesWithTimeOut(t *testing.T) {
	t.Parallel()
	const timeout = 100 * time.Millisecond
	srv, s, _, closed := blockedSession(t, Config{SendQueueSize: 1, SendTimeout: timeout, CloseOnSendTimeout: true, CloseLinger: 100 * time.Millisecond})
	if err := s.TrySend([]byte("fills the queue")); err != nil {
		t.Fatal(err)
	}
	if err := s.Send([]byte("times out")); !errors.Is(err, ErrSendTimeout) {
		t.Fatalf("Send: %v, want ErrSendTimeout", err)
	}
	if ev := recv(t, closed, "the Closed event"); ev.reason != CloseTimeOut {
		t.Errorf("closed with %v, want TimeOut", ev.reason)
	}
	if n := srv.Stats().Closes[CloseTimeOut]; n != 1 {
		t.Errorf("Stats.Closes[TimeOut] = %d, want 1", n)
	}
	if err := s.Send([]byte("late")); !errors.Is(err, ErrSessionClosed) {
		t.Errorf("Send after the close: %v, want ErrSessionClosed", err)
	}
}

// With a negative SendTimeout, Send does not wait: it behaves like TrySend.
func TestSend_NegativeSendTimeoutDoesNotWait(t *testing.T) {
	_, s, _, _ := blockedSession(t, Config{SendQueueSize: 1, SendTimeout: -1})
	if err := s.TrySend([]byte("fills the queue")); err != nil {
		t.Fatal(err)
	}
	if err := within(t, time.Second, "Send", func() error { return s.Send([]byte("x")) }); !errors.Is(err, ErrSendQueueFull) {
		t.Fatalf("Send: %v, want ErrSendQueueFull", err)
	}
}

func TestSend_AfterCloseReturnsErrSessionClosed(t *testing.T) {
	sessions := make(chan *Session[struct{}], 1)
	srv := startServer(t, Config{}, Handlers[struct{}]{Connected: sessionsInto(sessions), Request: echoFrame[struct{}]})
	dial(t, srv)
	s := recv(t, sessions, "the session")
	s.Close(CloseServerClosing)
	for _, send := range []func(...[]byte) error{s.Send, s.TrySend} {
		if err := send([]byte("x")); !errors.Is(err, ErrSessionClosed) {
			t.Errorf("send right after Close: %v, want ErrSessionClosed", err)
		}
	}
	recv(t, s.Done(), "Done")
	srv.Stop()
	for _, send := range []func(...[]byte) error{s.Send, s.TrySend} {
		if err := send([]byte("x")); !errors.Is(err, ErrSessionClosed) {
			t.Errorf("send after the server stopped: %v, want ErrSessionClosed", err)
		}
	}
}

// Many goroutines send while others close: no panic, only the documented errors, and once
// a sender sees ErrSessionClosed every later send does too.
func TestSend_RacingCloseNeverPanics(t *testing.T) {
	for round := range 5 {
		sessions := make(chan *Session[struct{}], 1)
		closed := make(chan closeEvent, 1)
		srv := startServer(t, Config{SendQueueSize: 8, SendTimeout: 50 * time.Millisecond}, Handlers[struct{}]{
			Connected: sessionsInto(sessions),
			Request:   echoFrame[struct{}],
			Closed:    closedInto[struct{}](closed),
		})
		c := dial(t, srv)
		drained := make(chan struct{})
		go func() { io.Copy(io.Discard, c); close(drained) }()
		s := recv(t, sessions, "the session")

		start := make(chan struct{})
		var wg sync.WaitGroup
		for g := range 16 {
			wg.Go(func() {
				<-start
				sawClosed := false
				for i := range 2000 {
					var err error
					if (g+i)%2 == 0 {
						err = s.Send([]byte("abc"), []byte("def\n"))
					} else {
						err = s.TrySend([]byte("abcdef\n"))
					}
					switch {
					case errors.Is(err, ErrSessionClosed):
						sawClosed = true
					case sawClosed:
						t.Errorf("round %d: send after ErrSessionClosed returned %v", round, err)
						return
					case err != nil && !errors.Is(err, ErrSendQueueFull) && !errors.Is(err, ErrSendTimeout):
						t.Errorf("round %d: unexpected send error %v", round, err)
						return
					}
					if sawClosed && i%100 == 0 {
						return
					}
				}
			})
		}
		for r := range 4 {
			wg.Go(func() {
				<-start
				for range round * 50 {
					s.TrySend([]byte("x\n"))
				}
				s.Close([]CloseReason{CloseServerClosing, CloseTimeOut, CloseApplicationError, CloseUnknown}[r])
			})
		}
		close(start)
		wg.Wait()
		ev := recv(t, closed, "the Closed event")
		if ev.reason != s.CloseReason() {
			t.Errorf("round %d: Closed with %v, CloseReason() %v", round, ev.reason, s.CloseReason())
		}
		recv(t, drained, "the client to see the close")
		if err := s.Send([]byte("late")); !errors.Is(err, ErrSessionClosed) {
			t.Errorf("round %d: late Send: %v", round, err)
		}
		srv.Stop()
	}
}

// Send and TrySend copy the caller's bytes: the caller may overwrite its buffer as soon as
// the call returns. The messages are sent while the writer is stuck, so they are still
// queued when the buffer is overwritten.
func TestSend_CopiesTheCallersBytes(t *testing.T) {
	_, s, c, _ := blockedSession(t, Config{})
	buf := make([]byte, 101)
	var want bytes.Buffer
	for i := range 200 {
		for j := range 100 {
			buf[j] = 'a' + byte(i%26)
		}
		buf[100] = '\n'
		want.Write(buf)
		var err error
		if i%2 == 0 {
			err = s.Send(buf[:50], buf[50:])
		} else {
			err = s.TrySend(buf)
		}
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		for j := range buf {
			buf[j] = '#'
		}
	}
	c.SetReadDeadline(time.Now().Add(waitLong))
	if _, err := io.CopyN(io.Discard, c.r, blockedPayload); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, want.Len())
	if _, err := io.ReadFull(c.r, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("the client received overwritten bytes: Send did not copy")
	}
}

// The parts of one Send leave together and in order, whatever other goroutines send at the
// same time, and each goroutine's messages keep their order.
func TestSend_MultiPartMessagesStayWholeUnderConcurrentSenders(t *testing.T) {
	const senders, each = 8, 300
	sessions := make(chan *Session[struct{}], 1)
	srv := startServer(t, Config{SendQueueSize: 16}, Handlers[struct{}]{Connected: sessionsInto(sessions), Request: echoFrame[struct{}]})
	c := dial(t, srv)
	s := recv(t, sessions, "the session")
	bodyLen := func(i int) int { return 1 + (i*37)%300 }

	errs := make(chan error, senders)
	for g := range senders {
		go func() {
			letter := []byte{'A' + byte(g)}
			for i := range each {
				head := fmt.Appendf(nil, "%d:%04d:", g, i)
				body := bytes.Repeat(letter, bodyLen(i))
				if err := s.Send(head, body, []byte("\n")); err != nil {
					errs <- fmt.Errorf("sender %d, message %d: %w", g, i, err)
					return
				}
			}
			errs <- nil
		}()
	}

	next := make([]int, senders)
	br := bufio.NewReader(c)
	c.SetReadDeadline(time.Now().Add(waitLong))
	for range senders * each {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		var g, i int
		var body string
		if _, err := fmt.Sscanf(line, "%d:%d:%s\n", &g, &i, &body); err != nil || g < 0 || g >= senders {
			t.Fatalf("garbled message %q", line)
		}
		if i != next[g] {
			t.Fatalf("sender %d: message %d arrived when %d was due", g, i, next[g])
		}
		next[g]++
		if want := string(bytes.Repeat([]byte{'A' + byte(g)}, bodyLen(i))); body != want {
			t.Fatalf("sender %d message %d: parts split or interleaved: %q", g, i, line)
		}
	}
	for range senders {
		if err := recv(t, errs, "a sender"); err != nil {
			t.Fatal(err)
		}
	}
}

// A reply sent by a Request handler leaves while the handler is still running: a handler
// may send a prompt and then wait (for another session, a back end, a timer) without
// holding its own reply back.
func TestSend_FromARunningHandlerLeavesBeforeItReturns(t *testing.T) {
	received := make(chan struct{})
	srv := startServer(t, Config{}, Handlers[struct{}]{
		Request: func(s *Session[struct{}], r Request) {
			s.Send([]byte("PROMPT\r\n"))
			select {
			case <-received:
			case <-time.After(waitLong):
				t.Errorf("the client never got the reply sent before the handler blocked")
			}
			s.Send([]byte("DONE\r\n"))
		},
	})
	c := dial(t, srv)
	c.send("GO\r\n")
	c.expectLine("PROMPT\r\n")
	close(received)
	c.expectLine("DONE\r\n")
}

// A handler may send more than the queue holds in one request: Send waits for the writer
// to make room, it does not time out while the handler runs.
func TestSend_FromAHandlerBeyondTheQueueBound(t *testing.T) {
	const msgs = 64
	srv := startServer(t, Config{SendQueueSize: 4, SendQueueBytes: 4096, SendTimeout: waitLong}, Handlers[struct{}]{
		Request: func(s *Session[struct{}], r Request) {
			for i := range msgs {
				if err := s.Send(fmt.Appendf(nil, "%04d", i), make([]byte, 1000), []byte("\n")); err != nil {
					t.Errorf("Send %d: %v", i, err)
					return
				}
			}
		},
	})
	c := dial(t, srv)
	c.send("GO\r\n")
	c.SetReadDeadline(time.Now().Add(waitLong))
	got := make([]byte, msgs*1005)
	if _, err := io.ReadFull(c.r, got); err != nil {
		t.Fatalf("read %v", err)
	}
	for i := range msgs {
		if want := fmt.Sprintf("%04d", i); string(got[i*1005:i*1005+4]) != want {
			t.Fatalf("message %d starts %q", i, got[i*1005:i*1005+4])
		}
	}
}
