package faults

import (
	"fmt"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/supersocket-go/supersocket"
)

// panicState marks a session whose Closed handler will panic.
type panicState struct{ panicOnClose bool }

// TestPanickingHandler: Request handlers that panic, a Connected handler that panics and
// Closed handlers that panic are recovered; each panicking session (and only it) is
// closed with ApplicationError — requests pipelined after the panic are not handled —
// while established clients lose nothing and the server keeps accepting.
func TestPanickingHandler(t *testing.T) {
	base := takeBaseline(t)
	inRequest, inConnected, inClosed := 50*scale(), 10*scale(), 10*scale()
	tally := newCloseTally()
	var panicNextConnect atomic.Bool
	var afterPanic, closedPanics atomic.Int64
	srv := startServer(t, supersocket.Config{Filter: commandLine}, supersocket.Handlers[panicState]{
		Connected: func(s *supersocket.Session[panicState]) {
			if panicNextConnect.CompareAndSwap(true, false) {
				panic("a Connected bug")
			}
		},
		Request: func(s *supersocket.Session[panicState], req supersocket.Request) {
			switch req.Key {
			case "ECHO":
				s.Send(req.Body, crlf)
			case "AFTER":
				afterPanic.Add(1) // pipelined behind a PANIC: must never run
			case "PANIC":
				panic("a Request bug")
			case "CLOSEPANIC":
				s.Data().panicOnClose = true
				s.Send([]byte("armed\r\n"))
			}
		},
		Closed: func(s *supersocket.Session[panicState], why supersocket.CloseReason) {
			tally.record(why)
			if s.Data().panicOnClose {
				closedPanics.Add(1)
				panic("a Closed bug")
			}
		},
	})
	addr := addrOf(srv)
	probes := startProbers(t, 5, "during", lineProber(addr))

	// Request panics, with a request pipelined behind each.
	for i := range inRequest {
		c := mustDial(t, addr)
		if err := c.echo(fmt.Sprint("before", i)); err != nil {
			t.Fatal(err)
		}
		c.SetWriteDeadline(time.Now().Add(waitLong))
		if _, err := io.WriteString(c, "PANIC\r\nAFTER\r\nECHO after\r\n"); err != nil {
			t.Fatal(err)
		}
		if n, err := c.readToClose(); err != nil || n != 0 {
			t.Fatalf("a panicking session: %d bytes after the panic, %v; want a close", n, err)
		}
		c.Close()
	}
	afterRequest := tally.waitTotal(t, inRequest)

	// Connected panics: the session closes before any request is handled.
	for range inConnected {
		panicNextConnect.Store(true)
		c := mustDial(t, addr)
		c.SetWriteDeadline(time.Now().Add(waitLong))
		io.WriteString(c, "ECHO unheard\r\n") // may fail: the server may have closed already
		if n, err := c.readToClose(); err != nil || n != 0 {
			t.Fatalf("a session whose Connected panicked: %d bytes, %v; want a close", n, err)
		}
		c.Close()
	}
	afterConnected := tally.waitTotal(t, inRequest+inConnected)

	// Closed panics: the client leaves; the server shrugs.
	for range inClosed {
		c := mustDial(t, addr)
		if got, err := c.roundTrip("CLOSEPANIC"); err != nil || got != "armed" {
			t.Fatalf("CLOSEPANIC: %q, %v", got, err)
		}
		c.Close()
	}
	all := tally.waitTotal(t, inRequest+inConnected+inClosed)

	// The server still serves newcomers.
	late := mustDial(t, addr)
	if err := late.echo("late"); err != nil {
		t.Fatalf("a new client after the panics: %v", err)
	}
	late.Close()
	lat := probes.check(t, time.Second)

	if n := afterRequest[supersocket.CloseApplicationError]; n != inRequest || len(afterRequest) != 1 {
		t.Errorf("Request panics: closes %v, want %d ApplicationError", fmtReasons(afterRequest), inRequest)
	}
	if n := afterConnected[supersocket.CloseApplicationError]; n != inRequest+inConnected {
		t.Errorf("Connected panics: closes %v, want %d ApplicationError in all", fmtReasons(afterConnected), inRequest+inConnected)
	}
	if n := all[supersocket.CloseClientClosing]; n != inClosed {
		t.Errorf("Closed panics: closes %v, want %d ClientClosing", fmtReasons(all), inClosed)
	}
	if n := afterPanic.Load(); n != 0 {
		t.Errorf("%d requests pipelined behind a panic were handled", n)
	}
	if n := closedPanics.Load(); n != int64(inClosed) {
		t.Errorf("%d Closed handlers panicked, want %d", n, inClosed)
	}
	srv.Stop()
	g, fds := base.left(t)
	t.Logf("panics: %d in Request, %d in Connected, %d in Closed → closes %v; pipelined requests handled after a panic %d",
		inRequest, inConnected, inClosed, fmtReasons(all), afterPanic.Load())
	t.Logf("panics: established clients lost %d, %v; goroutines left %d, fds left %d", probes.lostCount(), lat["during"], g, fds)
}
