package supersocket

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/supersocket-go/supersocket/filter"
)

// The engines' shared contract, tested on each engine this platform has, whatever
// SUPERSOCKET_ENGINE says (the rest of the suite runs on that one).

// engines lists the engines to test: the goroutine engine, and epoll on Linux.
func engines() []string {
	if runtime.GOOS == "linux" {
		return []string{EngineGoroutine, EngineEpoll}
	}
	return []string{EngineGoroutine}
}

// TestBlockedHandlerStallsOnlyItsSession: while one session's Request handler is blocked
// — on a channel, or spinning on the CPU for a second — other sessions, those of the same
// event loop included, keep their latency, and the blocked session's next requests wait
// for it, in order.
func TestBlockedHandlerStallsOnlyItsSession(t *testing.T) {
	for _, engine := range engines() {
		for _, how := range []string{"channel", "spin"} {
			t.Run(engine+"/"+how, func(t *testing.T) {
				if how == "spin" && runtime.GOMAXPROCS(0) == 1 {
					// The spinning handler and this test's client share the only P: the
					// client waits for the scheduler's time slices, whatever the engine.
					t.Skip("GOMAXPROCS=1")
				}
				testBlockedHandler(t, engine, how)
			})
		}
	}
}

func testBlockedHandler(t *testing.T, engine, how string) {
	gate := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(gate) }) }
	t.Cleanup(release)
	entered := make(chan struct{}, 1)
	srv := startServer(t, Config{Engine: engine, Filter: filter.CommandLine()}, Handlers[struct{}]{
		Request: func(s *Session[struct{}], r Request) {
			if r.Key == "BLOCK" {
				entered <- struct{}{}
				if how == "channel" {
					<-gate
				} else {
					for start := time.Now(); time.Since(start) < time.Second; {
					}
				}
			}
			s.Send(r.Frame)
		},
	})
	// Clients until two share a loop (where the epoll engine puts a new session is its
	// own business: the loop that accepted it, mostly); on the goroutine engine the first
	// two will do. a's handler blocks, b is served by the same loop.
	var a, b *client
	var clients []*client
	for i := 0; b == nil; i++ {
		if i == 16 {
			t.Fatal("no two sessions on one loop")
		}
		c := dial(t, srv)
		c.send("ECHO b0\r\n")
		c.expectLine("ECHO b0\r\n")
		for _, o := range clients {
			if sameLoop(srv, o, c) {
				a, b = o, c
				break
			}
		}
		clients = append(clients, c)
	}
	a.send("BLOCK\r\nECHO a1\r\n")
	recv(t, entered, "the BLOCK handler to run")
	var worst time.Duration
	const trips = 50
	start := time.Now()
	for i := range trips {
		t0 := time.Now()
		msg := fmt.Sprintf("ECHO b%d\r\n", i+1)
		if got := b.roundTrip(msg); got != msg {
			t.Fatalf("b: %q, want %q", got, msg)
		}
		worst = max(worst, time.Since(t0))
	}
	total := time.Since(start)
	t.Logf("%s, handler blocked by %s: %d round trips of another session on its loop in %v, the slowest %v", engine, how, trips, total, worst)
	// A blocked loop would hold a round trip until the handler returns: for good, or a
	// second for the spinning one. Bounds with room for a loaded machine.
	if worst > 300*time.Millisecond {
		t.Errorf("the slowest round trip took %v while another session's handler was blocked", worst)
	}
	if n := srv.Stats().LoopHandoffs; engine == EngineEpoll && how == "channel" && n == 0 {
		t.Error("Stats.LoopHandoffs = 0: the blocked handler's loop was not handed over")
	}
	release()
	a.expectLine("BLOCK\r\n")
	a.expectLine("ECHO a1\r\n")
}

// TestIdleSessionsHoldNoGoroutine: idle sessions cost no goroutine each — on the epoll
// engine at once, on the goroutine engine once they have parked (Linux).
func TestIdleSessionsHoldNoGoroutine(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("off Linux an idle session of the goroutine engine keeps a goroutine")
	}
	for _, engine := range engines() {
		t.Run(engine, func(t *testing.T) {
			srv := startServer(t, Config{Engine: engine, Filter: filter.CommandLine()}, Handlers[struct{}]{Request: echoFrame[struct{}]})
			// A first session makes the engine start what it keeps for all (the parker).
			if got := dial(t, srv).roundTrip("ECHO x\r\n"); got != "ECHO x\r\n" {
				t.Fatalf("echo: %q", got)
			}
			waitIdle(t, srv, 1)
			before := runtime.NumGoroutine()
			const n = 200
			for range n {
				c := dial(t, srv)
				if got := c.roundTrip("ECHO x\r\n"); got != "ECHO x\r\n" {
					t.Fatalf("echo: %q", got)
				}
			}
			waitIdle(t, srv, n+1)
			// Finished helpers (a handshake's, a resumed session's) may take a moment to
			// exit: bounded.
			eventually(t, "the goroutine count to settle", func() bool { return runtime.NumGoroutine() <= before+2 })
			t.Logf("%s: %d goroutines with 1 idle session, %d with %d", engine, before, runtime.NumGoroutine(), n+1)
		})
	}
}

// TestEngineServesPlainTCPOnly: the epoll engine serves plain TCP listeners; TLS,
// WebSocket and UDP listeners of the same server, and Connect's sessions, are the
// goroutine engine's.
func TestEngineServesPlainTCPOnly(t *testing.T) {
	ca := newTestCA(t)
	pair, _, _ := ca.issue(t, "server", false)
	sessions := make(chan *Session[struct{}], 8)
	srv := startServer(t, Config{
		Engine: EngineEpoll,
		Listeners: []ListenerConfig{
			{Addr: "127.0.0.1:0"},
			{Addr: "127.0.0.1:0", TLS: &TLSConfig{Config: &tls.Config{Certificates: []tls.Certificate{pair}}}},
			{Addr: "127.0.0.1:0", Network: "udp"},
		},
		Filter: filter.CommandLine(),
	}, Handlers[struct{}]{
		Connected: sessionsInto(sessions),
		Request:   func(s *Session[struct{}], r Request) { s.Send(r.Body, []byte("\r\n")) }, // as tlsRoundTrip expects
	})
	addrs := srv.Addrs()
	dialAddr(t, addrs[0].String())
	plain := recv(t, sessions, "the plain TCP session")
	if want := runtime.GOOS == "linux"; isLoop(plain) != want {
		t.Errorf("plain TCP session on the epoll engine: %v, want %v", isLoop(plain), want)
	}
	if err := tlsRoundTrip(t, addrs[1].String(), &tls.Config{RootCAs: ca.pool, ServerName: "localhost"}); err != nil {
		t.Fatal(err)
	}
	if s := recv(t, sessions, "the TLS session"); isLoop(s) {
		t.Error("a TLS session on the epoll engine")
	}
	newUDPClient(t, addrs[2].String()).send([]byte("ECHO x\r\n"))
	if s := recv(t, sessions, "the UDP session"); isLoop(s) {
		t.Error("a UDP session on the epoll engine")
	}
	out, err := srv.Connect(t.Context(), addrs[0].String())
	if err != nil {
		t.Fatal(err)
	}
	if isLoop(out) {
		t.Error("Connect's session on the epoll engine")
	}
	recv(t, sessions, "Connect's session")
	recv(t, sessions, "the session Connect made on the plain listener")
}

// TestStartTLSRefusedOnEpoll: a session of the epoll engine cannot upgrade to TLS; it
// says so, and carries on in plaintext.
func TestStartTLSRefusedOnEpoll(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the epoll engine needs Linux")
	}
	srv := startServer(t, Config{Engine: EngineEpoll, Filter: filter.CommandLine()}, Handlers[struct{}]{
		Request: func(s *Session[struct{}], r Request) {
			if r.Key == "STARTTLS" {
				if err := s.StartTLS(&tls.Config{}); err != nil {
					s.Send([]byte("ERR " + err.Error() + "\r\n"))
					return
				}
			}
			s.Send(r.Frame)
		},
	})
	c := dial(t, srv)
	if got := c.roundTrip("STARTTLS\r\n"); !strings.HasPrefix(got, "ERR ") || !strings.Contains(got, "epoll") {
		t.Errorf("StartTLS on an epoll session: %q, want an error naming the engine", got)
	}
	if got := c.roundTrip("ECHO still here\r\n"); got != "ECHO still here\r\n" {
		t.Errorf("after the refused StartTLS: %q", got)
	}
}

// TestRequestsStraddlingReads: length-prefixed requests of mixed sizes — a few bytes, a
// few KiB, and larger than half an event loop's read buffer — arrive pipelined in
// client writes of random sizes, so that requests straddle the server's reads and its
// turns; every reply comes back intact and in order, on each engine.
func TestRequestsStraddlingReads(t *testing.T) {
	for _, engine := range engines() {
		t.Run(engine, func(t *testing.T) {
			srv := startServer(t, Config{Engine: engine, Filter: filter.Uint32BE(), MaxRequestLength: 256 << 10},
				Handlers[struct{}]{Request: echoFrame[struct{}]})
			rng := rand.New(rand.NewPCG(14, 1))
			var stream []byte
			frames := 0
			for len(stream) < 4<<20 {
				var size int
				switch rng.IntN(4) {
				case 0:
					size = rng.IntN(64)
				case 1, 2:
					size = 4<<10 + rng.IntN(64)
				default:
					size = 33<<10 + rng.IntN(200<<10)
				}
				frame := make([]byte, 4+size)
				binary.BigEndian.PutUint32(frame, uint32(size))
				for i := 4; i < len(frame); i++ {
					frame[i] = byte(rng.Uint32())
				}
				stream = append(stream, frame...)
				frames++
			}
			c := dial(t, srv)
			if err := c.SetDeadline(time.Now().Add(waitLong)); err != nil {
				t.Fatal(err)
			}
			wrote := make(chan error, 1)
			go func() {
				w := rand.New(rand.NewPCG(14, 2))
				rest := stream
				for len(rest) > 0 {
					n := min(1+w.IntN(100<<10), len(rest))
					if _, err := c.Write(rest[:n]); err != nil {
						wrote <- err
						return
					}
					rest = rest[n:]
				}
				wrote <- nil
			}()
			got := make([]byte, len(stream))
			if _, err := io.ReadFull(c.r, got); err != nil {
				t.Fatalf("reading the %d bytes of %d replies: %v", len(stream), frames, err)
			}
			if err := recv(t, wrote, "the client's writes"); err != nil {
				t.Fatalf("write: %v", err)
			}
			if !bytes.Equal(got, stream) {
				i := 0
				for got[i] == stream[i] {
					i++
				}
				t.Fatalf("replies differ from the requests at byte %d of %d", i, len(stream))
			}
			if n := srv.Stats().Requests; n != uint64(frames) {
				t.Fatalf("server counted %d requests, want %d", n, frames)
			}
		})
	}
}
