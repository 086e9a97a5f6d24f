package supersocket

import (
	"errors"
	"fmt"
	"runtime/debug"
)

// A session's life, for every transport: begin → serve → finish.
//
// The owner. At any moment one goroutine owns a session: it runs the session's handlers,
// its filter and its transport's serve, and only it finishes the session. The first owner
// is the goroutine that opens the session (own); an idle TCP session gives its goroutine
// up and a later one takes over (resume), never two at once. That is what keeps a
// session's events ordered and never concurrent, whatever the transport.
//
//	own:     begin (filter, Connected) ─► serve ─┬─► finish
//	                                              └─► (idle: parked; resume ─► serve …)
//
// The close protocol, the one place that decides who closes what and when:
//
//  1. Close(reason), from any goroutine: the first reason wins (s.closed). The transport's
//     wake refuses further sends, bounds the flush of bytes already queued by CloseLinger
//     (a write deadline; a negative linger drops them), and wakes the owner: a read
//     deadline in the past, an unpark, a closed channel.
//  2. The owner sees the reason once the handler in progress (if any) returns; it then
//     dispatches nothing more, and its serve returns true.
//  3. finish, on the owner: the transport drains (waits for the writer, within the linger
//     deadline); the session is counted out (the registry, SessionCount, its
//     MaxConnections and per-IP slots, its listener); the transport releases the socket
//     (closes it: the peer sees the end here); the Closed handler runs; Done closes.
//  4. Only finish closes the socket. A forced close (abort: Stop, a Shutdown whose
//     context ended) adds the transport's cut: queued bytes dropped, a write in progress
//     ended, and the connection shut down in both directions so that the peer sees the
//     end at once — but the descriptor stays open, because closing a socket waits for a
//     read in progress on it, and a TCP session's handlers run inside its read. So a
//     handler that never returns holds its own session, and nothing else.

// own is the body of a session's first goroutine: begin, then serve until the session
// closes or goes idle. The goroutine holds a count of the session's run.
func (s *Session[T]) own() {
	defer s.run.wg.Done()
	if !s.begin() {
		s.finish()
		return
	}
	if s.tr.serve() {
		s.finish()
	}
}

// resume is the body of every later owner of the session (after it was idle); it holds a
// count of the run, added by whoever started it.
func (s *Session[T]) resume() {
	defer s.run.wg.Done()
	if s.tr.serve() {
		s.finish()
	}
}

// begin makes the session's filter and runs Connected; false if the session cannot go on.
func (s *Session[T]) begin() bool {
	if err := s.makeFilter(); err != nil {
		s.srv.log.Error("cannot create the receive filter", "session", s.id, "err", err)
		s.Close(CloseInternalError)
		return false
	}
	if h := s.srv.h.Connected; h != nil && s.closed.Load() == 0 {
		s.enterHandler()
		s.callConnected(h)
		s.handling.Store(false)
	}
	return true
}

func (s *Session[T]) callConnected(h func(*Session[T])) {
	defer s.recoverHandler()
	h(s)
}

// enterHandler marks the session as running a Connected or Request handler. During a
// stop it also tells the stop, which may be waiting for this session, that it must not
// wait any longer: the handler is application code (see Server.Stop).
func (s *Session[T]) enterHandler() {
	s.handling.Store(true)
	if ServerState(s.srv.state.Load()) == StateStopping {
		s.srv.kickStop()
	}
}

func (s *Session[T]) makeFilter() (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("filter factory panicked: %v", p)
		}
	}()
	f := s.srv.cfg.Filter(s.srv.cfg.MaxRequestLength)
	if f == nil {
		return errors.New("filter factory returned nil")
	}
	s.frames.Use(f, s.srv.cfg.MaxRequestLength)
	return nil
}

func (s *Session[T]) recoverHandler() {
	if p := recover(); p != nil {
		s.srv.log.Error("handler panicked; closing session", "session", s.id, "panic", p, "stack", string(debug.Stack()))
		s.Close(CloseApplicationError)
	}
}

// Close closes the session with reason; the first reason given wins and later calls do
// nothing. Requests not yet handled are dropped; bytes queued before Close are flushed,
// bounded by CloseLinger, then the socket closes and the Closed handler runs (after a
// Request handler in progress has returned). Close returns at once (see Done to wait).
// Safe from any goroutine, handlers included.
func (s *Session[T]) Close(reason CloseReason) {
	if !s.closed.CompareAndSwap(0, 1+uint32(reason)) {
		return
	}
	if h := s.srv.hooks; h != nil && h.closing != nil {
		h.closing()
	}
	s.tr.wake(s.srv.cfg.CloseLinger)
}

// abort closes the session at once (step 4 of the close protocol): queued bytes are
// dropped, a write in progress is ended and the peer sees the connection end, without
// waiting for a handler in progress. Safe from any goroutine; it never blocks.
func (s *Session[T]) abort(reason CloseReason) {
	s.Close(reason)
	s.tr.cut()
}

// finish ends the session once its owner has stopped serving it (step 3 of the close
// protocol).
func (s *Session[T]) finish() {
	srv := s.srv
	s.tr.drain()
	// A stop waits for the Closed handler of a session that finishes during it: counted
	// in srv.closing before the session leaves the registry, so that a stop sees it in
	// one or the other. One that began finishing before the stop is not waited for: its
	// Closed handler may be the stop's own caller.
	counted := srv.State() == StateStopping
	if counted {
		srv.closing.Add(1)
	}
	// Counts first, socket second: once the peer sees the close, SessionCount, Stats
	// and the slot under MaxConnections already reflect it.
	srv.sessions.remove(s)
	srv.live.Add(-1)
	srv.release(s.ip)
	if s.listener != nil {
		s.listener.sessions.Add(-1)
	}
	reason := s.CloseReason()
	srv.counters.closes[reason].Add(1)
	s.tr.release()
	srv.log.Debug("session closed", "session", s.id, "remote", s.RemoteAddr().String(), "reason", reason.String())
	if h := srv.h.Closed; h != nil {
		if !counted {
			// Marked as a handler, like Request; a stop that began meanwhile and waits
			// for this session is told to stop waiting.
			s.handling.Store(true)
			if srv.State() == StateStopping {
				srv.kickStop()
			}
		}
		s.callClosed(h, reason)
	}
	if counted && srv.closing.Add(-1) == 0 {
		srv.kickStop()
	}
	s.closeDone()
}

func (s *Session[T]) callClosed(h func(*Session[T], CloseReason), reason CloseReason) {
	defer func() {
		if p := recover(); p != nil {
			s.srv.log.Error("Closed handler panicked", "session", s.id, "panic", p, "stack", string(debug.Stack()))
		}
	}()
	h(s, reason)
}
