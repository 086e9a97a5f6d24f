package faults

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/supersocket-go/supersocket"
)

// loader pipelines ECHO requests on one connection (up to depth unanswered) until the
// connection fails, counting the replies.
type loader struct {
	c       net.Conn
	answers atomic.Int64
	wrong   atomic.Int64
	done    chan struct{}
}

func startLoader(c net.Conn, id, depth int, wg *sync.WaitGroup) *loader {
	l := &loader{c: c, done: make(chan struct{})}
	window := make(chan struct{}, depth)
	wg.Go(func() { // reader
		defer close(l.done)
		r := bufio.NewReader(c)
		for {
			c.SetReadDeadline(time.Now().Add(waitLong))
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			if line != fmt.Sprintf("l%d\r\n", id) {
				l.wrong.Add(1)
			}
			l.answers.Add(1)
			<-window
		}
	})
	wg.Go(func() { // writer
		req := fmt.Appendf(nil, "ECHO l%d\r\n", id)
		for {
			select {
			case window <- struct{}{}:
			case <-l.done:
				return
			}
			c.SetWriteDeadline(time.Now().Add(waitLong))
			if _, err := c.Write(req); err != nil {
				return
			}
		}
	})
	return l
}

// TestShutdownUnderLoad: Shutdown of a server in full swing — plain and TLS clients
// pipelining requests, idle sessions, sessions holding half a request, handlers blocked
// in Send on clients that do not read, TLS handshakes in progress. Every session is
// closed with ServerShutdown (its Closed runs exactly once), blocked Sends return
// ErrSessionClosed, handshakes in progress are cut, Shutdown returns (within CloseLinger
// plus slack), and once the clients hang up no goroutine (goleak) and no file
// descriptor (/proc/self/fd) is left.
func TestShutdownUnderLoad(t *testing.T) {
	base := takeBaseline(t)
	const linger = time.Second
	plainLoad, tlsLoad, idle, half, blocked, handshaking := 20*scale(), 5*scale(), 20*scale(), 5*scale(), 5*scale(), 5*scale()
	sessions := plainLoad + tlsLoad + idle + half + blocked
	serverTLS, clientTLS := tlsPair(t)
	tally := newCloseTally()
	var connected atomic.Int64
	blockedErrs := make(chan error, blocked)
	blockedFull := make(chan struct{}, blocked)
	msg := randomBytes(64<<10, 8)
	srv := startServer(t, supersocket.Config{
		Listeners: []supersocket.ListenerConfig{
			{Addr: "127.0.0.1:0"},
			{Addr: "127.0.0.1:0", TLS: &supersocket.TLSConfig{Config: serverTLS}},
		},
		Filter:            commandLine,
		CloseLinger:       linger,
		HandshakeTimeout:  30 * time.Second, // Shutdown, not the timeout, must end them
		SendQueueBytes:    256 << 10,
		SocketWriteBuffer: 64 << 10,
		SendTimeout:       10 * time.Minute, // blocked Sends must still be waiting at Shutdown
	}, supersocket.Handlers[struct{}]{
		Connected: func(*session) { connected.Add(1) },
		Request: func(s *session, req supersocket.Request) {
			switch req.Key {
			case "ECHO":
				s.Send(req.Body, crlf)
			case "BLOCK": // fill the queue, then block in Send until Shutdown
				for s.TrySend(msg) == nil {
				}
				blockedFull <- struct{}{}
				for {
					if err := s.Send(msg); err != nil {
						blockedErrs <- err
						return
					}
				}
			}
		},
		Closed: tally.closed,
	})
	plainAddr, tlsAddr := srv.Addrs()[0].String(), srv.Addrs()[1].String()

	var conns []net.Conn
	var clients sync.WaitGroup
	defer func() {
		for _, c := range conns {
			c.Close()
		}
		clients.Wait()
	}()
	dial := func(useTLS bool) net.Conn {
		t.Helper()
		var c net.Conn
		var err error
		if useTLS {
			c, err = (&tls.Dialer{NetDialer: &net.Dialer{Timeout: waitLong}, Config: clientTLS}).Dial("tcp", tlsAddr)
		} else {
			c, err = net.DialTimeout("tcp", plainAddr, waitLong)
		}
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		return c
	}
	var loaders []*loader
	for i := range plainLoad + tlsLoad {
		loaders = append(loaders, startLoader(dial(i >= plainLoad), i, 32, &clients))
	}
	for range idle {
		dial(false)
	}
	for range half {
		io.WriteString(dial(false), "ECHO half a req")
	}
	for range blocked {
		io.WriteString(dial(false), "BLOCK\r\n")
	}
	for range blocked {
		recv(t, blockedFull, "a BLOCK handler to fill its queue")
	}
	var hsConns []net.Conn
	for range handshaking {
		c, err := net.DialTimeout("tcp", tlsAddr, waitLong)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		hsConns = append(hsConns, c)
	}
	eventually(t, "every session", func() bool { return connected.Load() == int64(sessions) })
	eventually(t, "every loader to be answered", func() bool {
		for _, l := range loaders {
			if l.answers.Load() < 100 {
				return false
			}
		}
		return true
	})
	st := srv.Stats()
	atShutdown := struct {
		sessions   int
		requests   uint64
		goroutines int
		fds        int
		rss        int64
	}{srv.SessionCount(), st.Requests, runtime.NumGoroutine(), countFDs(t), rssKB()}

	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	// The handshakes in progress must be cut by Shutdown, long before their timeout.
	hsClosed := make(chan time.Duration, handshaking)
	for _, c := range hsConns {
		clients.Go(func() {
			io.Copy(io.Discard, c)
			hsClosed <- time.Since(start)
		})
	}
	err := srv.Shutdown(ctx)
	took := time.Since(start)
	if err != nil {
		t.Errorf("Shutdown: %v after %v", err, took)
	}
	if took > linger+5*time.Second {
		t.Errorf("Shutdown took %v; CloseLinger is %v", took, linger)
	}
	reasons, total := tally.snapshot()
	if total != sessions || reasons[supersocket.CloseServerShutdown] != sessions {
		t.Errorf("when Shutdown returned, %d of %d sessions had closed: %v; want all with ServerShutdown", total, sessions, fmtReasons(reasons))
	}
	if n := srv.SessionCount(); n != 0 {
		t.Errorf("%d sessions left after Shutdown", n)
	}
	if s := srv.State(); s != supersocket.StateNotStarted {
		t.Errorf("state after Shutdown: %v", s)
	}
	for range blocked {
		if err := recv(t, blockedErrs, "a blocked Send to return"); !errors.Is(err, supersocket.ErrSessionClosed) {
			t.Errorf("a Send blocked at Shutdown returned %v, want ErrSessionClosed", err)
		}
	}
	var hsMax time.Duration
	for range handshaking {
		hsMax = max(hsMax, recv(t, hsClosed, "a handshake in progress to be cut"))
	}
	if hsMax > linger+5*time.Second {
		t.Errorf("handshakes in progress were cut %v after Shutdown began", hsMax)
	}
	var answers, wrong int64
	for _, l := range loaders {
		recv(t, l.done, "a loader to see the close")
		answers += l.answers.Load()
		wrong += l.wrong.Load()
	}
	if wrong != 0 {
		t.Errorf("%d wrong replies", wrong)
	}
	for _, c := range conns {
		c.Close()
	}
	clients.Wait()
	conns = nil
	g, fds := base.left(t)
	t.Logf("shutdown under load: SessionCount %d: %d sessions (%d plain + %d TLS pipelining, %d idle, %d half a request, %d blocked in Send) + %d TLS handshakes in progress; %d requests served before",
		atShutdown.sessions, sessions, plainLoad, tlsLoad, idle, half, blocked, handshaking, atShutdown.requests)
	t.Logf("shutdown under load: Shutdown took %v (CloseLinger %v); closes %v; handshakes cut within %v; replies %d, wrong 0",
		took.Round(time.Millisecond), linger, fmtReasons(reasons), hsMax.Round(time.Millisecond), answers)
	t.Logf("shutdown under load: under load %d goroutines, %d fds, RSS %d KiB; after: goroutines left %d, fds left %d (of %d and %d before the server started)",
		atShutdown.goroutines, atShutdown.fds, atShutdown.rss, g, fds, base.goroutines, base.fds)
}

// TestStatsDuringShutdown: Stats (and Addrs) are what a monitor reads; they must answer
// while a graceful Shutdown waits for a session to flush (up to CloseLinger), not only
// after it. (At commit dc36473 they took the lock Shutdown holds throughout.)
func TestStatsDuringShutdown(t *testing.T) {
	const linger = 2 * time.Second
	sessions := make(chan *session, 1)
	queued := make(chan struct{}, 1)
	srv := startServer(t, supersocket.Config{
		Filter:            commandLine,
		CloseLinger:       linger,
		SocketWriteBuffer: 64 << 10,
	}, supersocket.Handlers[struct{}]{
		Connected: func(s *session) { sessions <- s },
		Request: func(s *session, req supersocket.Request) {
			lineHandler(s, req)
			queued <- struct{}{}
		},
	})
	c := mustDial(t, addrOf(srv))
	s := recv(t, sessions, "the session")
	// 4 MiB for a client that does not read: the session's flush lasts until CloseLinger.
	if _, err := io.WriteString(c, "BIG 4194304\r\n"); err != nil {
		t.Fatal(err)
	}
	recv(t, queued, "the reply to be queued")
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(context.Background()) }()
	eventually(t, "Shutdown to close the session", func() bool { return s.CloseReason() == supersocket.CloseServerShutdown })
	start := time.Now()
	got := make(chan supersocket.Stats, 1)
	go func() {
		srv.Addrs() // the other accessor of the running state
		got <- srv.Stats()
	}()
	timer := time.NewTimer(linger / 4)
	defer timer.Stop()
	select {
	case <-got:
	case <-timer.C:
		t.Errorf("Stats or Addrs blocked for over %v while Shutdown drained a session", linger/4)
		<-got
	}
	blocked := time.Since(start)
	c.Close()
	if err := recv(t, shut, "Shutdown"); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	t.Logf("Stats during Shutdown: answered after %v (CloseLinger %v)", blocked.Round(time.Millisecond), linger)
}
