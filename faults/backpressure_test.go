package faults

import (
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/supersocket-go/supersocket"
)

// fillReport is what a server learns by sending to a client that does not read until a
// Send fails.
type fillReport struct {
	accepted int           // messages Send accepted before the failure
	err      error         // the failing Send's error
	took     time.Duration // how long the failing Send took
	reason   supersocket.CloseReason
	extra    int   // messages TrySend queued after the failure (the writer made room)
	tryErr   error // the TrySend that failed after it
}

// TestBackPressurePolicies: the four policies Session.Send documents for a full queue,
// against a client that stops reading:
//
//	SendTimeout > 0, CloseOnSendTimeout false: wait, then ErrSendTimeout; the session stays
//	SendTimeout > 0, CloseOnSendTimeout true:  wait, then close with CloseTimeOut
//	SendTimeout < 0, CloseOnSendTimeout false: drop: ErrSendQueueFull at once
//	SendTimeout < 0, CloseOnSendTimeout true:  close with CloseTimeOut at once
//
// In every case the bytes accepted before the failure all reach the client once it
// reads (the kept session then answers a new request; the closed one ends with EOF).
func TestBackPressurePolicies(t *testing.T) {
	const wait = time.Second
	for _, tc := range []struct {
		name      string
		timeout   time.Duration
		closeIt   bool
		wantErr   error
		wantClose bool
	}{
		{"wait/keep", wait, false, supersocket.ErrSendTimeout, false},
		{"wait/close", wait, true, supersocket.ErrSendTimeout, true},
		{"drop/keep", -1, false, supersocket.ErrSendQueueFull, false},
		{"drop/close", -1, true, supersocket.ErrSendQueueFull, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := takeBaseline(t)
			const msgSize = 16 << 10
			msg := randomBytes(msgSize, 5)
			reports := make(chan fillReport, 1)
			closed := make(chan supersocket.CloseReason, 1)
			srv := startServer(t, supersocket.Config{
				Filter:             commandLine,
				SendQueueSize:      8,
				SendQueueBytes:     64 << 10,
				SendTimeout:        tc.timeout,
				CloseOnSendTimeout: tc.closeIt,
				SocketWriteBuffer:  16 << 10,
			}, supersocket.Handlers[struct{}]{
				Request: func(s *session, req supersocket.Request) {
					switch req.Key {
					case "FILL":
						var r fillReport
						for r.accepted < 1<<12 { // 64 MiB: far past any socket buffer
							t0 := time.Now()
							if r.err = s.Send(msg); r.err != nil {
								r.took = time.Since(t0)
								break
							}
							r.accepted++
						}
						r.reason = s.CloseReason()
						// Until the socket buffers are full the writer may still make
						// room; TrySend until the queue stays full.
						for r.tryErr = s.TrySend(msg); r.tryErr == nil && r.extra < 1<<12; r.tryErr = s.TrySend(msg) {
							r.extra++
						}
						reports <- r
					case "PING":
						s.Send([]byte("PONG\r\n"))
					}
				},
				Closed: func(_ *session, why supersocket.CloseReason) { closed <- why },
			})
			c := mustDial(t, addrOf(srv))
			full0 := srv.Stats().SendQueueFull
			if _, err := io.WriteString(c, "FILL\r\n"); err != nil {
				t.Fatal(err)
			}
			r := recv(t, reports, "a Send to fail")
			if !errors.Is(r.err, tc.wantErr) {
				t.Fatalf("after %d messages Send returned %v, want %v", r.accepted, r.err, tc.wantErr)
			}
			if tc.timeout > 0 && r.took < tc.timeout {
				t.Errorf("Send gave up after %v, before SendTimeout %v", r.took, tc.timeout)
			}
			if tc.timeout < 0 && r.took >= wait/2 {
				t.Errorf("Send took %v with a negative SendTimeout; it must not wait", r.took)
			}
			// The failed Send counts, and so does the TrySend after it if the queue was
			// still there to be full.
			wantFull := uint64(2)
			if tc.wantClose {
				wantFull = 1
			}
			if full := srv.Stats().SendQueueFull - full0; full != wantFull {
				t.Errorf("Stats.SendQueueFull grew by %d, want %d", full, wantFull)
			}
			// The client reads now: every accepted byte arrives.
			want := int64(r.accepted+r.extra) * msgSize
			var got int64
			var err error
			if tc.wantClose {
				if r.reason != supersocket.CloseTimeOut {
					t.Errorf("session state after the failed Send: %v, want closing with TimeOut", r.reason)
				}
				if !errors.Is(r.tryErr, supersocket.ErrSessionClosed) || r.extra != 0 {
					t.Errorf("TrySend after the close: %v (after %d accepted), want ErrSessionClosed", r.tryErr, r.extra)
				}
				got, err = c.readToClose()
				if why := recv(t, closed, "the Closed event"); why != supersocket.CloseTimeOut {
					t.Errorf("closed with %v, want TimeOut", why)
				}
			} else {
				if r.reason != supersocket.CloseUnknown {
					t.Errorf("the session closed (%v); the policy keeps it", r.reason)
				}
				if !errors.Is(r.tryErr, supersocket.ErrSendQueueFull) {
					t.Errorf("TrySend on the full queue: %v after %d more messages, want ErrSendQueueFull", r.tryErr, r.extra)
				}
				c.SetReadDeadline(time.Now().Add(waitLong))
				got, err = io.CopyN(io.Discard, c.r, want)
				if err == nil {
					var pong string
					if pong, err = c.roundTrip("PING"); err == nil && pong != "PONG" {
						err = fmt.Errorf("PING answered %q", pong)
					}
				}
				select {
				case why := <-closed:
					t.Errorf("the kept session closed with %v", why)
				default:
				}
			}
			if err != nil {
				t.Errorf("client: %v", err)
			}
			if got != want {
				t.Errorf("client received %d bytes, want the %d Send accepted", got, want)
			}
			c.Close()
			srv.Stop()
			g, fds := base.left(t)
			t.Logf("policy %s (SendTimeout %v, CloseOnSendTimeout %v): %d×16 KiB accepted, then Send → %v after %v; session %s; TrySend → %v (after %d more); bytes delivered %d of %d (lost %d); goroutines left %d, fds left %d",
				tc.name, tc.timeout, tc.closeIt, r.accepted, r.err, r.took.Round(time.Millisecond),
				map[bool]string{true: "closed (TimeOut)", false: "kept, answers PING"}[tc.wantClose], r.tryErr, r.extra, got, want, want-got, g, fds)
		})
	}
}

// TestNonReaderMemoryBounded: clients that never read while the server keeps sending
// cost the server at most its send queue bounds. Each session's sender tries to push
// 64 MiB; Send and TrySend refuse what does not fit (ErrSendTimeout, ErrSendQueueFull),
// and HeapInuse grows by less than a bound derived from SendQueueBytes — per session,
// twice SendQueueBytes (the queue, plus the batch the blocked writer holds) and a chunk —
// not by the 64 MiB each sender tried.
func TestNonReaderMemoryBounded(t *testing.T) {
	base := takeBaseline(t)
	const (
		queueBytes = 256 << 10
		msgSize    = 64 << 10
		attempt    = 64 << 20 // per session
	)
	clients := 8 * scale()
	msg := randomBytes(msgSize, 6)
	type tally struct{ accepted, timeouts, full int }
	results := make(chan tally, clients)
	srv := startServer(t, supersocket.Config{
		Filter:            commandLine,
		SendQueueSize:     1 << 20, // the byte bound is the one that binds
		SendQueueBytes:    queueBytes,
		SendTimeout:       5 * time.Millisecond,
		SocketWriteBuffer: 64 << 10,
		CloseLinger:       -1,
	}, supersocket.Handlers[struct{}]{
		Request: func(s *session, req supersocket.Request) {
			if req.Key != "FLOOD" {
				return
			}
			var r tally
			for i := range attempt / msgSize {
				var err error
				if i%64 == 0 {
					err = s.Send(msg) // waits SendTimeout
				} else {
					err = s.TrySend(msg)
				}
				switch {
				case err == nil:
					r.accepted++
				case errors.Is(err, supersocket.ErrSendTimeout):
					r.timeouts++
				case errors.Is(err, supersocket.ErrSendQueueFull):
					r.full++
				default:
					t.Errorf("Send: %v", err)
				}
			}
			results <- r
		},
	})
	addr := addrOf(srv)
	conns := make([]net.Conn, clients)
	for i := range conns {
		c, err := net.DialTimeout("tcp", addr, waitLong)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
	}
	eventually(t, "every session", func() bool { return srv.SessionCount() == clients })
	heap0, rss0 := heapInuse(), rssKB()
	for _, c := range conns {
		if _, err := c.Write([]byte("FLOOD\r\n")); err != nil {
			t.Fatal(err)
		}
	}
	var sum tally
	for range clients {
		r := recv(t, results, "a sender to finish")
		sum.accepted += r.accepted
		sum.timeouts += r.timeouts
		sum.full += r.full
	}
	// Every queue is full now, and every writer blocked on a client that does not read.
	heap1, rss1 := heapInuse(), rssKB()
	bound := uint64(clients)*(2*queueBytes+msgSize) + 4<<20
	growth := int64(heap1) - int64(heap0)
	if growth > int64(bound) {
		t.Errorf("HeapInuse grew by %s with %d non-reading clients, over the bound %s", mib(uint64(growth)), clients, mib(bound))
	}
	if sum.timeouts == 0 || sum.full == 0 {
		t.Errorf("Send timed out %d times, TrySend found the queue full %d times; both must refuse", sum.timeouts, sum.full)
	}
	tried := uint64(clients) * attempt
	for _, c := range conns {
		c.Close()
	}
	srv.Stop()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	g, fds := base.left(t)
	t.Logf("non-reader: %d clients never read; senders tried %s, Send/TrySend accepted %s (%d×64 KiB), refused %d (ErrSendTimeout %d, ErrSendQueueFull %d)",
		clients, mib(tried), mib(uint64(sum.accepted)*msgSize), sum.accepted, sum.timeouts+sum.full, sum.timeouts, sum.full)
	t.Logf("non-reader: HeapInuse %s → %s (growth %s, bound %s = %d×(2×SendQueueBytes %d KiB + 64 KiB) + 4 MiB); RSS %d → %d KiB; goroutines left %d, fds left %d",
		mib(heap0), mib(heap1), mib(uint64(max(growth, 0))), mib(bound), clients, queueBytes>>10, rss0, rss1, g, fds)
}

// TestPeerResetWhileSendBlocked: a client that stops reading and then vanishes (RST)
// while a handler is blocked in Send on its full queue: the Send returns ErrSessionClosed
// as soon as the write fails — not after SendTimeout — and the session closes with
// SocketError.
func TestPeerResetWhileSendBlocked(t *testing.T) {
	base := takeBaseline(t)
	const sendTimeout = 30 * time.Second
	msg := randomBytes(64<<10, 4)
	full := make(chan struct{}, 1)
	sent := make(chan error, 1)
	closed := make(chan supersocket.CloseReason, 1)
	srv := startServer(t, supersocket.Config{
		Filter:            commandLine,
		SendTimeout:       sendTimeout,
		SendQueueBytes:    256 << 10,
		SocketWriteBuffer: 64 << 10,
	}, supersocket.Handlers[struct{}]{
		Request: func(s *session, req supersocket.Request) {
			for s.TrySend(msg) == nil {
			}
			full <- struct{}{}
			for {
				if err := s.Send(msg); err != nil {
					sent <- err
					return
				}
			}
		},
		Closed: func(_ *session, why supersocket.CloseReason) { closed <- why },
	})
	c := mustDial(t, addrOf(srv))
	if _, err := io.WriteString(c, "FILL\r\n"); err != nil {
		t.Fatal(err)
	}
	recv(t, full, "the queue to fill")
	start := time.Now()
	if err := rst(c.Conn); err != nil {
		t.Fatal(err)
	}
	err := recv(t, sent, "the blocked Send to return")
	took := time.Since(start)
	if !errors.Is(err, supersocket.ErrSessionClosed) {
		t.Errorf("the blocked Send returned %v, want ErrSessionClosed", err)
	}
	if took >= sendTimeout/2 {
		t.Errorf("the blocked Send returned %v after the reset; it waited for SendTimeout", took)
	}
	why := recv(t, closed, "the Closed event")
	srv.Stop()
	g, fds := base.left(t)
	t.Logf("reset while Send blocked: Send → %v %v after the RST (SendTimeout %v); close %v; goroutines left %d, fds left %d",
		err, took.Round(time.Millisecond), sendTimeout, why, g, fds)
	if why != supersocket.CloseSocketError {
		t.Errorf("closed with %v, want SocketError", why)
	}
}
