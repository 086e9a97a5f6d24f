package supersocket

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/supersocket-go/supersocket/filter"
)

// orderState is the per-session record the event-order tests keep in Session.Data. The
// atomics detect overlap and misordering; the plain fields are touched only by the
// session's handlers, so the race detector also flags any two handlers of one session
// running at once.
type orderState struct {
	phase    atomic.Int32 // 0 before Connected, 1 connected, 2 closed
	inFlight atomic.Int32 // Request handlers running
	closes   atomic.Int32 // Closed calls
	next     int          // the request number expected next
	requests int          // Requests handled

	// set by the test goroutine once Close has returned, for the mid-stream test
	closeReturned atomic.Bool
	lateRequests  atomic.Int32 // Requests that started after Close returned
}

// orderHandlers checks, for every session, Connected → Request×N in arrival order, never
// overlapping → Closed once after the last Request returned → Done. Requests are
// "REQ <n>" lines numbered from 0 per session; reply "DONE" after request last (if ≥ 0).
func orderHandlers(t *testing.T, last int, connected chan<- *Session[orderState], closed chan<- closeEvent) Handlers[orderState] {
	return Handlers[orderState]{
		Connected: func(s *Session[orderState]) {
			st := s.Data()
			if !st.phase.CompareAndSwap(0, 1) {
				t.Errorf("session %s: Connected in phase %d", s.ID(), st.phase.Load())
			}
			// Linger so that requests are already buffered when Connected returns.
			for range 50 {
				runtime.Gosched()
			}
			connected <- s
		},
		Request: func(s *Session[orderState], r Request) {
			st := s.Data()
			if n := st.inFlight.Add(1); n != 1 {
				t.Errorf("session %s: %d Request handlers running at once", s.ID(), n)
			}
			defer st.inFlight.Add(-1)
			if st.closeReturned.Load() {
				st.lateRequests.Add(1)
			}
			if p := st.phase.Load(); p != 1 {
				t.Errorf("session %s: Request in phase %d (want after Connected, before Closed)", s.ID(), p)
			}
			n, err := strconv.Atoi(string(r.Body))
			if r.Key != "REQ" || err != nil {
				t.Errorf("session %s: unexpected request %q %q", s.ID(), r.Key, r.Body)
				return
			}
			if n != st.next {
				t.Errorf("session %s: request %d arrived when %d was due", s.ID(), n, st.next)
			}
			st.next = n + 1
			st.requests++
			runtime.Gosched() // widen the window in which an overlap would show
			if n == last {
				s.Send([]byte("DONE\r\n"))
			}
		},
		Closed: func(s *Session[orderState], reason CloseReason) {
			st := s.Data()
			if n := st.inFlight.Load(); n != 0 {
				t.Errorf("session %s: Closed while %d Request handlers run", s.ID(), n)
			}
			if c := st.closes.Add(1); c != 1 {
				t.Errorf("session %s: Closed called %d times", s.ID(), c)
			}
			if !st.phase.CompareAndSwap(1, 2) {
				t.Errorf("session %s: Closed in phase %d", s.ID(), st.phase.Load())
			}
			select {
			case <-s.Done():
				t.Errorf("session %s: Done closed before the Closed handler returned", s.ID())
			default:
			}
			closed <- closeEvent{s.ID(), reason, time.Now()}
		},
	}
}

func TestEventOrder_ConnectedRequestsInOrderClosedOnceThenDone(t *testing.T) {
	const sessions, perSession = 32, 200
	connected := make(chan *Session[orderState], sessions)
	closed := make(chan closeEvent, sessions)
	srv := startServer(t, Config{}, orderHandlers(t, perSession-1, connected, closed))

	// Every client writes its requests in chunks of random size, so requests are split
	// across reads and several arrive in one read; then it waits for DONE and closes.
	var payload []byte
	for i := range perSession {
		payload = fmt.Appendf(payload, "REQ %d\r\n", i)
	}
	errs := make(chan error, sessions)
	var wg sync.WaitGroup
	for range sessions {
		wg.Go(func() {
			errs <- func() error {
				c, err := net.DialTimeout("tcp", addrOf(srv), waitLong)
				if err != nil {
					return err
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(waitLong))
				for p := payload; len(p) > 0; {
					n := min(len(p), 1+rand.IntN(40))
					if _, err := c.Write(p[:n]); err != nil {
						return err
					}
					p = p[n:]
				}
				line, err := bufio.NewReader(c).ReadString('\n')
				if err != nil || line != "DONE\r\n" {
					return fmt.Errorf("read %q, %v; want DONE", line, err)
				}
				return nil
			}()
		})
	}
	wg.Wait()
	for range sessions {
		if err := recv(t, errs, "a client"); err != nil {
			t.Fatalf("client: %v", err)
		}
	}

	seen := map[string]bool{}
	for range sessions {
		ev := recv(t, closed, "a Closed event")
		if seen[ev.id] {
			t.Fatalf("session %s closed twice", ev.id)
		}
		seen[ev.id] = true
		if ev.reason != CloseClientClosing {
			t.Errorf("session %s closed with %v, want ClientClosing", ev.id, ev.reason)
		}
	}
	for range sessions {
		s := recv(t, connected, "a Connected event")
		recv(t, s.Done(), "Session.Done")
		st := s.Data()
		if !seen[s.ID()] {
			t.Errorf("session %s connected but never closed", s.ID())
		}
		if st.requests != perSession || st.phase.Load() != 2 || st.closes.Load() != 1 {
			t.Errorf("session %s: %d requests, phase %d, %d closes; want %d, 2, 1",
				s.ID(), st.requests, st.phase.Load(), st.closes.Load(), perSession)
		}
	}
	st := srv.Stats()
	if st.Requests != sessions*perSession {
		t.Errorf("Stats.Requests = %d, want %d", st.Requests, sessions*perSession)
	}
	if st.Closes[CloseClientClosing] != sessions {
		t.Errorf("Stats.Closes[ClientClosing] = %d, want %d", st.Closes[CloseClientClosing], sessions)
	}
}

// TestEventOrder_CloseFromAnotherGoroutineMidStream closes sessions from the test
// goroutine while their clients flood requests: Closed still comes once, after the last
// Request returned, and at most the request already being dispatched runs after Close
// returned.
func TestEventOrder_CloseFromAnotherGoroutineMidStream(t *testing.T) {
	const sessions, before = 16, 20
	connected := make(chan *Session[orderState], sessions)
	closed := make(chan closeEvent, sessions)
	h := orderHandlers(t, -1, connected, closed)
	busy := make(chan *Session[orderState], sessions)
	inner := h.Request
	h.Request = func(s *Session[orderState], r Request) {
		inner(s, r)
		if s.Data().requests == before {
			busy <- s
		}
	}
	srv := startServer(t, Config{}, h)

	conns := make([]net.Conn, sessions)
	for i := range conns {
		c, err := net.DialTimeout("tcp", addrOf(srv), waitLong)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		conns[i] = c
	}
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() {
			// Flood until the server closes the connection (or the bound passes).
			c.SetWriteDeadline(time.Now().Add(waitLong))
			var buf []byte
			for i := 0; ; {
				buf = buf[:0]
				for range 16 {
					buf = fmt.Appendf(buf, "REQ %d\r\n", i)
					i++
				}
				if _, err := c.Write(buf); err != nil {
					return
				}
			}
		})
	}
	for range sessions {
		s := recv(t, busy, "a session that handled requests")
		s.Close(CloseServerClosing)
		s.Data().closeReturned.Store(true)
	}
	for range sessions {
		if ev := recv(t, closed, "a Closed event"); ev.reason != CloseServerClosing {
			t.Errorf("session %s closed with %v, want ServerClosing", ev.id, ev.reason)
		}
	}
	for range sessions {
		s := recv(t, connected, "a Connected event")
		recv(t, s.Done(), "Session.Done")
		if late := s.Data().lateRequests.Load(); late > 1 {
			t.Errorf("session %s: %d requests dispatched after Close returned, want at most the one in progress", s.ID(), late)
		}
	}
	// Close the clients' sockets so that their floods end, then wait for them.
	srv.Stop()
	wg.Wait()
}

// TestEventOrder_SessionsRunInParallel: one session's blocked handler blocks neither
// another session's requests nor new connections, and holds back its own next request.
func TestEventOrder_SessionsRunInParallel(t *testing.T) {
	entered := make(chan string, 1)
	release := make(chan struct{})
	var released atomic.Bool
	srv := startServer(t, Config{}, Handlers[struct{}]{
		Request: func(s *Session[struct{}], r Request) {
			switch r.Key {
			case "BLOCK":
				entered <- s.ID()
				select {
				case <-release:
				case <-time.After(waitLong):
					t.Errorf("BLOCK was never released")
				}
			case "AFTER":
				if !released.Load() {
					t.Errorf("AFTER ran while BLOCK, the request before it, was still running")
				}
			}
			s.Send(r.Frame)
		},
	})

	a := dial(t, srv)
	a.send("BLOCK\r\nAFTER\r\n")
	recv(t, entered, "the BLOCK handler to start")

	b := dial(t, srv)
	b.send("ECHO from b\r\n")
	b.expectLine("ECHO from b\r\n")
	c := dial(t, srv)
	c.send("ECHO from c\r\n")
	c.expectLine("ECHO from c\r\n")

	released.Store(true)
	close(release)
	a.expectLine("BLOCK\r\n")
	a.expectLine("AFTER\r\n")
}

// handover frames one command line, then hands the stream to next (filter.Switcher).
type handover struct {
	first, next filter.Filter
	done        bool
}

func (h *handover) Filter(data []byte) (Request, int, error) { return h.first.Filter(data) }

func (h *handover) Next() filter.Filter {
	if h.done {
		return nil
	}
	h.done = true
	return h.next
}

func lineThenFixed(size int) filter.Factory {
	return func(limit int) filter.Filter {
		return &handover{first: filter.CommandLine()(limit), next: filter.FixedSize(size)(limit)}
	}
}

// keyBody replies "<key>|<body>\n" to every request.
func keyBody[T any](s *Session[T], r Request) {
	s.Send([]byte(r.Key), []byte("|"), r.Body, []byte("\n"))
}

func TestFilterSwitch_SwitcherHandsOverAfterRequest(t *testing.T) {
	srv := startServer(t, Config{Filter: lineThenFixed(4)}, Handlers[struct{}]{Request: keyBody[struct{}]})
	c := dial(t, srv)
	c.send("HELLO there\r\nabcdefgh")
	c.expectLine("HELLO|there\n")
	c.expectLine("|abcd\n")
	c.expectLine("|efgh\n")
	// The handover lasts: later bytes are still framed by the new filter.
	c.send("ij\r\n")
	c.expectLine("|ij\r\n")
}

func TestFilterSwitch_SetFilterReframesBufferedBytes(t *testing.T) {
	const payload = "BIN\r\nabcdef"
	var buffered atomic.Bool
	srv := startServer(t, Config{}, Handlers[struct{}]{
		Request: func(s *Session[struct{}], r Request) {
			if r.Key == "BIN" {
				// Bytes after this request were read with it: they are buffered already.
				buffered.Store(s.Server().Stats().BytesIn == uint64(len(payload)))
				s.SetFilter(filter.FixedSize(3)(s.Server().Config().MaxRequestLength))
			}
			keyBody(s, r)
		},
	})
	c := dial(t, srv)
	c.send(payload)
	c.expectLine("BIN|\n")
	c.expectLine("|abc\n")
	c.expectLine("|def\n")
	if !buffered.Load() {
		t.Log("the bytes after BIN arrived in a later read; the buffered path was not exercised this run")
	}
}

// SetFilter from a handler wins over the filter's own Switcher choice.
func TestFilterSwitch_SetFilterOverridesSwitcher(t *testing.T) {
	srv := startServer(t, Config{Filter: lineThenFixed(4)}, Handlers[struct{}]{
		Request: func(s *Session[struct{}], r Request) {
			if r.Key == "TWO" {
				s.SetFilter(filter.FixedSize(2)(s.Server().Config().MaxRequestLength))
			}
			keyBody(s, r)
		},
	})
	c := dial(t, srv)
	c.send("TWO\r\nabcd")
	c.expectLine("TWO|\n")
	c.expectLine("|ab\n")
	c.expectLine("|cd\n")
}

// Request slices alias the receive buffer, and the buffer is reused: a handler that
// echoes req.Body directly (Send copies) must still see each request's own bytes, even
// when many requests share one read.
func TestRequest_BodyValidDuringHandler(t *testing.T) {
	srv := startServer(t, Config{}, Handlers[struct{}]{Request: keyBody[struct{}]})
	c := dial(t, srv)
	var want, in []byte
	for i := range 500 {
		in = fmt.Appendf(in, "K%d body-%d\r\n", i%7, i)
		want = fmt.Appendf(want, "K%d|body-%d\n", i%7, i)
	}
	c.send(string(in))
	got := make([]byte, len(want))
	c.SetReadDeadline(time.Now().Add(waitLong))
	if _, err := io.ReadFull(c.r, got); err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatalf("echoed requests differ from those sent")
	}
}
