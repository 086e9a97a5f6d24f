package supersocket

import (
	"errors"
	"runtime/debug"
	"time"

	"github.com/supersocket-go/supersocket/internal/frame"
	"github.com/supersocket-go/supersocket/internal/pool"
)

// dispatch hands every complete request in buf, one read's bytes after those left
// pending by earlier reads, to the Request handler, and returns what is left: nil when
// everything was consumed (the buffer went back to the pool), otherwise the unconsumed
// bytes moved to the front of a buffer with room for at least minCap bytes. A session
// closed meanwhile gets nil too, with buf handed back to the pool. The session's owner
// calls it, for every transport.
func (s *Session[T]) dispatch(buf []byte, minCap int) []byte {
	b := batch{data: buf}
	s.dispatchBatch(&b)
	s.handled(&b)
	data := b.data
	if b.failed || len(data) == 0 || s.closed.Load() != 0 {
		pool.Put(buf)
		return nil
	}
	// The unfinished request's buffer is reused rather than a new one of minCap taken,
	// so it grows to minCap here: else a stream whose requests straddle every read
	// would never read more than its first buffer held.
	return s.frames.Keep(buf, data, minCap)
}

// dispatchMessage hands the requests of one message-oriented unit (a UDP datagram, a
// WebSocket message) to the Request handler. A unit holds whole requests: bytes its
// filter cannot complete at the end are the filter's Finisher's (a text line without its
// ending), else a protocol error. msg stays the caller's.
func (s *Session[T]) dispatchMessage(msg []byte) {
	b := batch{data: msg, message: true}
	s.dispatchBatch(&b)
	s.handled(&b)
}

// handled notes that a batch completed requests: the session is active, and has served.
func (s *Session[T]) handled(b *batch) {
	if !b.handled {
		return
	}
	if b.clock.IsZero() {
		b.clock = time.Now()
	}
	s.lastActive.Store(b.clock.UnixNano())
	s.served.Store(true)
}

// batch is the progress of one dispatch, which its panic guard reads.
type batch struct {
	message  bool      // the bytes are one whole message (see dispatchMessage)
	data     []byte    // not yet consumed
	inFilter bool      // the filter is running (a panic is the filter's, not a handler's)
	held     bool      // the transport was told that more requests follow
	handled  bool      // a request was handled
	failed   bool      // the session was closed for a bad request or a panic
	clock    time.Time // when the last handler returned, if ObserveRequest is set
	key      string    // the key of the request being handled
}

// dispatchBatch runs the filter and the Request handler over b.data until it needs more
// bytes or the session closes. One deferred recover guards the whole batch rather than
// one per request: a panic, in the filter (CloseInternalError) or in a handler
// (CloseApplicationError), ends the session anyway.
func (s *Session[T]) dispatchBatch(b *batch) {
	// ObserveRequest is fed one clock reading per request: a request's time runs from
	// the previous handler's return (or the batch's start) to its own handler's return.
	observe := s.srv.cfg.ObserveRequest
	if observe != nil {
		b.clock = time.Now()
	}
	defer s.guard(b, observe)
	// Marked once per batch, not per request: the mark is an atomic store, and a batch
	// ends when its last handler returns (see Server.Stop).
	s.enterHandler()
	for len(b.data) > 0 && s.closed.Load() == 0 && !s.switching {
		b.inFilter = true
		req, n, err := s.frames.Filter().Filter(b.data)
		err = s.frames.Check(n, len(b.data), err)
		if n == 0 && err == nil && b.message {
			req, n, err = s.frames.Finish(b.data)
		}
		b.inFilter = false
		if err != nil {
			b.failed = true
			s.refuse(err)
			break
		}
		if n == 0 {
			break
		}
		b.handled = true
		if !b.held && n < len(b.data) {
			// More bytes follow this request: the transport may hold the replies for
			// one write.
			b.held = true
			s.tr.hold()
		}
		s.srv.counters.requests.Add(1)
		if observe != nil {
			b.key = req.Key
		}
		s.srv.h.Request(s, req)
		if observe != nil {
			now := time.Now()
			observe(req.Key, now.Sub(b.clock))
			b.clock = now
		}
		s.frames.Advance()
		b.data = b.data[n:]
	}
	s.handling.Store(false)
}

// guard is dispatchBatch's deferred panic guard: a panic in the filter closes the
// session with CloseInternalError, one in a handler with CloseApplicationError. It is a
// method rather than a closure, and the failure paths are out-of-line calls, to keep
// dispatchBatch's stack frame small: a session's stack is cold in the cache when it wakes
// among many, and every line of frame touched is a miss.
func (s *Session[T]) guard(b *batch, observe func(string, time.Duration)) {
	p := recover()
	if p == nil {
		return
	}
	b.failed = true
	s.handling.Store(false)
	if b.inFilter {
		s.srv.log.Error("receive filter panicked", "session", s.id, "panic", p, "stack", string(debug.Stack()))
		s.Close(CloseInternalError)
		return
	}
	s.srv.log.Error("handler panicked; closing session", "session", s.id, "panic", p, "stack", string(debug.Stack()))
	s.Close(CloseApplicationError)
	if observe != nil {
		observeGuarded(observe, b.key, time.Since(b.clock))
	}
}

// observeGuarded reports a panicked request to ObserveRequest from the panic guard, where
// a second panic would escape.
func observeGuarded(observe func(string, time.Duration), key string, d time.Duration) {
	defer func() { _ = recover() }()
	observe(key, d)
}

// refuse closes the session for what the stepper refused: the peer's bytes
// (CloseProtocolError), or a filter that broke its contract, which is not the peer's
// fault (CloseInternalError).
//
//go:noinline
func (s *Session[T]) refuse(err error) {
	if errors.Is(err, frame.ErrFilterBug) {
		s.srv.log.Error("receive filter broke its contract; closing session", "session", s.id, "err", err)
		s.Close(CloseInternalError)
		return
	}
	s.protocolError(err)
}

func (s *Session[T]) protocolError(err error) {
	s.srv.log.Info("protocol error; closing session", "session", s.id, "remote", s.RemoteAddr().String(), "err", err)
	s.Close(CloseProtocolError)
}
