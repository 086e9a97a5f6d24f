package faults

import (
	"context"
	"errors"
	"io"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/supersocket-go/supersocket"
)

// TestStopWithBlockedHandlers: handlers blocked in application code (a channel, a lock, a
// slow database) when the server stops. Stop must close every other session at once, in
// parallel, shut the blocked sessions' connections too (their clients see the end while
// the handlers still run), and return without waiting for the handlers; each blocked
// session finishes, with ServerShutdown, when its handler returns, and then nothing is
// left behind. The same for a Shutdown whose context ends.
func TestStopWithBlockedHandlers(t *testing.T) {
	for _, how := range []string{"Stop", "Shutdown past its deadline"} {
		t.Run(how, func(t *testing.T) { stopWithBlockedHandlers(t, how) })
	}
}

func stopWithBlockedHandlers(t *testing.T, how string) {
	base := takeBaseline(t)
	idle, blocked := 100*scale(), 5*scale()
	gate := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(gate) }) }
	defer release()
	entered := make(chan struct{}, blocked)
	handled := make(chan struct{}, idle)
	tally := newCloseTally()
	srv := startServer(t, supersocket.Config{
		Filter: commandLine,
		// Told after a handler returned: the idle sessions must be idle at the stop, not
		// in their handler's last instructions (a session in a handler is not waited for).
		ObserveRequest: func(key string, _ time.Duration) {
			if key == "ECHO" {
				handled <- struct{}{}
			}
		},
	}, supersocket.Handlers[struct{}]{
		Request: func(s *session, req supersocket.Request) {
			if req.Key == "BLOCK" {
				entered <- struct{}{}
				<-gate
				return
			}
			lineHandler(s, req)
		},
		Closed: tally.closed,
	})
	var conns []*lineConn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range idle {
		c := mustDial(t, addrOf(srv))
		if err := c.echo("up"); err != nil {
			t.Fatal(err)
		}
		recv(t, handled, "the ECHO handler to return")
		conns = append(conns, c)
	}
	for range blocked {
		c := mustDial(t, addrOf(srv))
		if _, err := io.WriteString(c, "BLOCK\r\n"); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	for range blocked {
		recv(t, entered, "a handler to block")
	}

	// Every client reads until its connection ends; eofAt records when.
	eofAt := make([]time.Duration, len(conns))
	var readers sync.WaitGroup
	start := time.Now()
	for i, c := range conns {
		readers.Go(func() {
			c.SetReadDeadline(time.Now().Add(waitLong))
			buf := make([]byte, 512)
			for {
				if _, err := c.Read(buf); err != nil {
					if errors.Is(err, os.ErrDeadlineExceeded) {
						eofAt[i] = -1
						return
					}
					eofAt[i] = time.Since(start)
					return
				}
			}
		})
	}
	stopErr := make(chan error, 1)
	go func() {
		if how == "Stop" {
			stopErr <- srv.Stop()
			return
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // already past its deadline: the forced close at once
		stopErr <- srv.Shutdown(ctx)
	}()
	err := recv(t, stopErr, how+" to return while handlers are blocked")
	returned := time.Since(start)
	switch {
	case how == "Stop" && err != nil:
		t.Fatalf("Stop: %v", err)
	case how != "Stop" && !errors.Is(err, context.Canceled):
		t.Fatalf("Shutdown: %v, want context.Canceled", err)
	}
	reasons, total := tally.snapshot()
	if total != idle || reasons[supersocket.CloseServerShutdown] != idle {
		t.Errorf("when %s returned, %d sessions had closed (%v); want the %d idle ones with ServerShutdown", how, total, fmtReasons(reasons), idle)
	}
	readers.Wait()
	var others, stuck latencies
	for i, d := range eofAt {
		if d < 0 {
			t.Fatalf("client %d never saw its connection end", i)
		}
		if i < idle {
			others = append(others, d)
		} else {
			stuck = append(stuck, d)
		}
	}
	// The handlers are still blocked: the ends the clients saw came from the stop.
	select {
	case <-gate:
		t.Fatal("the handlers were released before the clients were checked")
	default:
	}
	release()
	final := tally.waitTotal(t, idle+blocked)
	if final[supersocket.CloseServerShutdown] != idle+blocked {
		t.Errorf("closes %v; want every session with ServerShutdown", fmtReasons(final))
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	if err := srv.Wait(ctx); err != nil {
		t.Errorf("Wait after the handlers returned: %v", err)
	}
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	g, fds := base.left(t)
	t.Logf("stop with blocked handlers (%s): %d idle sessions, %d handlers blocked; the idle clients saw EOF within p50 %v / max %v, the blocked ones' within max %v; %s returned after %v; goroutines left %d, fds left %d",
		how, idle, blocked, others.pct(50).Round(time.Microsecond), slices.Max(others).Round(time.Microsecond),
		slices.Max(stuck).Round(time.Microsecond), how, returned.Round(time.Microsecond), g, fds)
}
