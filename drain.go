package supersocket

import (
	"context"
	"time"
)

// Draining: the stop of a restart. The listeners stop accepting (a new process may be
// accepting on the same sockets), and each session is closed once nothing is pending
// for it — no request being read or handled, its replies flushed — rather than at once.
// A request the server has received is answered; the close comes in a quiet moment.
//
// A TCP session decides on its own goroutine: while the server drains, its read waits
// with a deadline at the end of its quiet time (drainQuiet after its last activity, or
// drainGrace after it connected if it has not completed a request yet); when that
// deadline passes with nothing read, nothing pending and nothing unread in the socket,
// it closes with CloseServerShutdown (the graceful close: queued replies are flushed,
// within CloseLinger). A UDP session closes once its inbox is empty and it has been
// quiet as long. When Drain's context ends, what is left is shut down as Shutdown does.

const (
	// drainQuiet is how long a session must have been quiet (no request completed, no
	// byte sent) before a drain closes it: a client that sends its next request right
	// after a reply is not closed in between, where its request would cross the close.
	drainQuiet = 100 * time.Millisecond
	// drainGrace is how long a drain leaves a session that has not completed its first
	// request: a client that has just connected has its request on the way.
	drainGrace = time.Second
)

// Drain stops the server without dropping requests, for a restart that hands the
// listening sockets to a new process (the CLI's SIGUSR2): it stops accepting — closing
// the listeners, and leaving UDP sockets to other readers — then closes each session once
// nothing is pending for it: no request being read or handled (a request the server has
// received is answered), its replies flushed, and quiet for a moment (100 ms; a session
// still waiting for its first request gets a second). A session's close is the usual
// graceful one (CloseServerShutdown; over WebSocket the 1001 close frame).
//
// Per kind of session: an idle TCP, TLS or WebSocket session (nothing unread, nothing
// being handled) that has been quiet for the quiet time is closed at once; a session
// with a request partly read (half a line, half a frame) is left to read the rest, and
// closed after its reply; a session whose handler runs is closed after the handler
// returns and its replies are flushed. A WebSocket session is closed with the 1001 close
// frame (going away) and the usual close handshake. A UDP "session" has no connection:
// the UDP sockets stop being read by this server (they are not closed, so a process that
// inherited them goes on reading; datagrams in the socket buffer go to whichever reads
// first), and each UDP session closes once the datagrams it had received are handled.
//
// Drain returns nil once every session has closed and every goroutine the server started
// has exited, as Shutdown does. When ctx ends first, it closes what is left as Shutdown
// does, letting queued replies flush within CloseLinger, then as Stop does (a handler
// still blocked then is not waited for: its session finishes when it returns, as after
// Stop), and returns ctx.Err(). Drain on a server that is not running returns nil;
// during another stop, it waits for that one, as Shutdown does; a Stop or Shutdown during
// a Drain takes over at once.
//
// Safe from any goroutine. Called from a handler, Drain cannot wait for that handler's
// own session, so it returns ctx.Err() once ctx has ended and the others have closed
// (within CloseLinger); the caller's reply is then dropped, its session being closed. To
// drain from a handler, call it on a new goroutine (go srv.Drain(ctx)): the handler's
// reply is sent and its session drained like the others.
//
// What Drain cannot do: a request that crosses the close on the wire — sent by a client
// that has not yet seen the end of its connection, arriving after the server closed it —
// was never received: the client sees the connection end without a reply, and may send
// it again, to the new process. The quiet time keeps that from a client that sends its
// next request as soon as it has its reply.
func (srv *Server[T]) Drain(ctx context.Context) error {
	srv.mu.Lock()
	if srv.State() != StateRunning {
		srv.mu.Unlock()
		return srv.Shutdown(ctx)
	}
	srv.door.draining.Store(true)
	defer srv.door.draining.Store(false)
	r := srv.run
	for _, ln := range srv.listeners {
		ln.Close()
	}
	for _, u := range srv.udpSocks {
		// Its receive loop leaves; the socket stays open for replies, and another
		// process sharing it reads what comes.
		u.pc.SetReadDeadline(aLongTimeAgo)
	}
	srv.mu.Unlock()
	srv.log.Info("draining", "sessions", srv.SessionCount())
	start := time.Now()
	tick := time.NewTicker(drainQuiet / 2)
	defer tick.Stop()
	first := true
	var all []*Session[T]
wait:
	for {
		all = srv.sessions.snapshot(all[:0])
		for _, s := range all {
			s.tr.drainLook(first)
		}
		clear(all)
		first = false
		// Sessions, and connections still in a handshake, all hold a slot.
		if srv.active.Load() == 0 {
			break
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			break wait
		case <-r.quit: // a Shutdown or Stop took over
			break wait
		}
	}
	err := ctx.Err()
	stopCtx := ctx
	if err != nil {
		// What is left closes gracefully, its replies flushing within CloseLinger, then
		// at once.
		var cancel context.CancelFunc
		stopCtx, cancel = context.WithTimeout(context.WithoutCancel(ctx), max(srv.cfg.CloseLinger, 0))
		defer cancel()
	}
	left := srv.SessionCount()
	if serr := srv.stop(stopCtx, false); err == nil {
		err = serr
	}
	srv.log.Info("drained", "took", time.Since(start).Round(time.Millisecond), "closed_at_the_deadline", left)
	return err
}

// drainLook wakes a TCP session to look at itself (drainRead): its read deadline once,
// first, and out of its park each pass.
func (st *stream[T]) drainLook(first bool) {
	if first {
		st.conn.SetReadDeadline(aLongTimeAgo)
	}
	// Every pass: a session whose idle deadline passed just before the drain began may
	// park after the first pass (cheap when it is not parked).
	st.s.srv.unpark(&st.tok)
}

// drainLook closes a UDP session once it is drained: nothing waits in its inbox and it
// has been quiet for drainQuiet.
func (dg *datagrams[T]) drainLook(bool) {
	if s := dg.s; len(dg.inbox) == 0 && s.quietUntil().Before(time.Now()) {
		s.Close(CloseServerShutdown)
	}
}

// drainLook is the epoll engine's drain check (loop_conn.go).
func (c *loopConn[T]) drainLook(bool) { c.drainCheck() }

// quietUntil is when the session has been quiet long enough for a drain to close it.
func (s *Session[T]) quietUntil() time.Time {
	t := time.Unix(0, s.lastActive.Load()).Add(drainQuiet)
	if g := s.StartTime().Add(drainGrace); !s.served.Load() && g.After(t) {
		t = g
	}
	return t
}

// drainBeforeRead is BeforeRead while the server drains: with nothing pending, the read
// waits no later than the end of the session's quiet time (drainRead then decides);
// with a request partly read, without a deadline.
func (st *stream[T]) drainBeforeRead(pending int) (stop, bounded bool) {
	s := st.s
	if pending > 0 {
		if st.armed {
			st.conn.SetReadDeadline(time.Time{})
			st.armed = false
			if s.closed.Load() != 0 { // Close's wake-up deadline must win
				st.conn.SetReadDeadline(aLongTimeAgo)
			}
		}
		return false, false
	}
	if at := s.quietUntil().UnixNano(); !st.armed || st.armedAt < at {
		st.armedAt = at
		st.conn.SetReadDeadline(time.Unix(0, at))
		st.armed = true
		if s.closed.Load() != 0 {
			st.conn.SetReadDeadline(aLongTimeAgo)
		}
	}
	return false, true
}

// drainRead handles a read's deadline while the server drains: the session closes if it
// is drained (quiet, nothing pending, nothing unread in the socket), else its next wait
// is armed again (drainBeforeRead).
func (st *stream[T]) drainRead(pending int) {
	s := st.s
	now := time.Now()
	switch {
	case pending > 0:
		st.armed = false
		st.conn.SetReadDeadline(time.Time{}) // BeforeRead arms nothing while a request is partial
	case now.Before(s.quietUntil()):
		// Woken early (by Drain, or a deadline armed before the last activity): wait
		// for the quiet time's end. Armed here, not by BeforeRead: a deadline in the
		// past would fail the next read before BeforeRead runs.
		st.armedAt = s.quietUntil().UnixNano()
		st.conn.SetReadDeadline(time.Unix(0, st.armedAt))
		st.armed = true
	case unread(st.conn):
		// Bytes arrived as the time was up: read them first, and look again later.
		st.armedAt = now.Add(drainQuiet).UnixNano()
		st.conn.SetReadDeadline(time.Unix(0, st.armedAt))
		st.armed = true
	default:
		s.srv.log.Debug("drained; closing session", "session", s.id, "remote", s.RemoteAddr().String())
		s.Close(CloseServerShutdown)
	}
	if s.closed.Load() != 0 { // Close's wake-up deadline must win
		st.conn.SetReadDeadline(aLongTimeAgo)
	}
}
