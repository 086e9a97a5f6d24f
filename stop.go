package supersocket

import (
	"context"
	"sync"
	"time"
)

// Stopping never waits for application code that does not return.
//
// A graceful Shutdown closes every session and waits for all of it — handlers included —
// until its context ends. Then, and at once for Stop, it forces what is left: every
// session is aborted (close protocol step 4: the peer sees the end at once, whatever the
// session's handler is doing), and the stop waits only for sessions that are not running
// a Connected or Request handler. Those finish on their own when the handler returns
// (their Closed handler runs then); Server.Wait waits for them. Every session is closed
// independently of the others, so one blocked handler delays nobody else.

// run is one Start-to-stop of a server: the goroutines it started, and the signal that
// ends its loops. Sessions keep a pointer to their run, so a restarted server never
// counts an old session's goroutine as one of the new run's.
type run struct {
	quit     chan struct{} // closed when stopping begins: accept, read and idle loops leave
	force    chan struct{} // closed by a Stop during a graceful Shutdown (forceNow)
	forced   sync.Once
	wg       sync.WaitGroup // every goroutine of the run, sessions' and loops' alike
	loops    sync.WaitGroup // the loops alone: accept, UDP receive, idle clearing
	finished chan struct{}  // closed once wg is done (watched from the stop on)
}

func newRun() *run {
	return &run{quit: make(chan struct{}), force: make(chan struct{}), finished: make(chan struct{})}
}

// ended reports whether the run's stop has begun (quit is closed): a new run has a quit
// of its own.
func (r *run) ended() bool {
	select {
	case <-r.quit:
		return true
	default:
		return false
	}
}

// forceNow makes a graceful stop of the run close what is left at once.
func (r *run) forceNow() { r.forced.Do(func() { close(r.force) }) }

// startLoop runs f on a goroutine counted as one of the run's loops.
func (r *run) startLoop(f func()) {
	r.wg.Add(1)
	r.loops.Add(1)
	go func() {
		defer r.wg.Done()
		defer r.loops.Done()
		f()
	}()
}

// Shutdown stops the server gracefully: it closes the listeners, closes every session
// with CloseServerShutdown, and lets each flush the bytes queued before (bounded by
// CloseLinger) and finish its handler in progress, until ctx ends. It returns nil once
// every goroutine the server started has exited. A connection still in its handshakes
// (TLS, a WebSocket upgrade not yet answered, the front door) is closed and gets no
// session; a WebSocket client whose upgrade was answered has a session, closed with
// 1001 and the close handshake like the others.
//
// If ctx ends first, Shutdown closes what is left at once, as Stop does, and returns
// ctx.Err() as soon as every session that is not running a Connected or Request handler
// has finished; the sessions whose handler still runs finish when it returns (Wait
// waits for them). Called from a handler, Shutdown therefore returns when ctx ends: it
// cannot wait for its own caller. Shutdown on a server that is not running returns nil;
// during another stop, it waits for that one to end, or for ctx.
func (srv *Server[T]) Shutdown(ctx context.Context) error {
	return srv.stop(ctx, false)
}

// Stop stops the server at once: it closes the listeners, drops queued sends, and
// closes every session with CloseServerShutdown, the peer seeing the end at once. It
// returns once every session that is not running a Connected or Request handler has
// finished, its Closed handler included. A session whose handler is running — blocked
// on a lock, a channel, a slow database, or the caller of Stop itself — is not waited
// for: its socket is already shut down, and it finishes when the handler returns (Wait
// waits for it). Stop therefore returns even when called from a handler.
//
// Stop during a Shutdown makes that Shutdown close what is left at once (it then returns
// nil), and returns when it is done.
func (srv *Server[T]) Stop() error {
	return srv.stop(context.Background(), true)
}

// Wait blocks until every goroutine the server has started has exited, or until ctx
// ends (it returns ctx.Err()). After a Stop, or a Shutdown whose context ended, the ones
// left are the sessions whose handler was still running, and their writers. While the
// server runs, Wait waits for it to be stopped too. Safe from any goroutine; called from
// a handler it waits for that handler's own session, so it returns only when ctx ends.
func (srv *Server[T]) Wait(ctx context.Context) error {
	for {
		srv.runsMu.Lock()
		var r *run
		for r = range srv.unfinished {
			break
		}
		srv.runsMu.Unlock()
		if r == nil {
			return nil
		}
		select {
		case <-r.finished:
			srv.runsMu.Lock()
			delete(srv.unfinished, r)
			srv.runsMu.Unlock()
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (srv *Server[T]) stop(ctx context.Context, force bool) error {
	srv.mu.Lock()
	srv.runMu.Lock()
	stopping := srv.state.CompareAndSwap(int32(StateRunning), int32(StateStopping))
	srv.runMu.Unlock()
	r, stopped := srv.run, srv.stopped
	if !stopping {
		// Not running, or another stop is under way: a Stop makes that one force what
		// is left, and either call waits for its end (bounded by ctx).
		underWay := srv.State() == StateStopping
		srv.mu.Unlock()
		if !underWay {
			return nil
		}
		if force {
			r.forceNow()
		}
		select {
		case <-stopped:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	close(r.quit)
	for _, ln := range srv.listeners {
		ln.Close()
	}
	for _, u := range srv.udpSocks {
		u.pc.Close()
	}
	srv.mu.Unlock() // Start refuses a Stopping server; a concurrent stop waits on stopped
	srv.closeHandshakes()
	if h := srv.hooks; h != nil && h.stopping != nil {
		h.stopping()
	}
	// A session registered after this snapshot sees StateStopping and closes itself.
	all := srv.sessions.snapshot(nil)
	for _, s := range all {
		if force {
			s.abort(CloseServerShutdown)
		} else {
			s.Close(CloseServerShutdown)
		}
	}
	clear(all)
	go func() {
		r.wg.Wait()
		close(r.finished)
	}()
	var err error
	if !force {
		select {
		case <-r.finished:
		case <-r.force:
			force = true // a Stop came during this Shutdown
		case <-ctx.Done():
			err = ctx.Err()
			force = true
		}
	}
	if force {
		srv.settle(all[:0])
		r.loops.Wait()
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	srv.stopParking()
	srv.pruneRuns()
	srv.listeners, srv.udpSocks = nil, nil
	srv.infoMu.Lock()
	srv.addrs, srv.lstats, srv.started = nil, nil, time.Time{}
	srv.infoMu.Unlock()
	srv.state.Store(int32(StateNotStarted))
	close(stopped)
	srv.log.Info("stopped")
	return err
}

// closeHandshakes ends every handshake in progress (TLS, WebSocket, the front door): no
// session exists for them yet. One whose goroutine has claimed it for a session is left
// to that session's close (see handshaking).
func (srv *Server[T]) closeHandshakes() {
	srv.pending.Range(func(_, h any) bool {
		h.(*handshaking).stop()
		return true
	})
}

// pruneRuns forgets the runs whose goroutines have all exited.
func (srv *Server[T]) pruneRuns() {
	srv.runsMu.Lock()
	defer srv.runsMu.Unlock()
	for r := range srv.unfinished {
		select {
		case <-r.finished:
			delete(srv.unfinished, r)
		default:
		}
	}
}

// settle is the forced part of a stop: it aborts every session, and returns once each
// has finished or is running a handler it entered before it was closed. A TLS or
// WebSocket connection stays pending until its session is registered, and a session
// leaves the registry only to be counted in srv.closing until its Closed handler
// returns (one that began before the stop excepted), so a pass over the three that finds
// nothing to wait for means nothing is left but sessions in a handler.
func (srv *Server[T]) settle(buf []*Session[T]) {
	for {
		waited := srv.waitHandshakes()
		buf = srv.sessions.snapshot(buf[:0])
		for _, s := range buf {
			s.abort(CloseServerShutdown)
			if srv.waitUnlessHandling(s) {
				waited = true
			}
		}
		clear(buf)
		// Sessions already out of the registry whose Closed handler runs during the stop.
		for srv.closing.Load() > 0 {
			waited = true
			<-srv.stopKick
		}
		if !waited {
			return
		}
	}
}

// waitHandshakes closes the connections of the handshakes in progress and waits until
// their goroutines are done with them (a claimed one: its session registered); it
// reports whether there were any.
func (srv *Server[T]) waitHandshakes() bool {
	var waits []chan struct{}
	srv.pending.Range(func(_, v any) bool {
		h := v.(*handshaking)
		h.stop()
		waits = append(waits, h.done)
		return true
	})
	for _, done := range waits {
		<-done
	}
	return len(waits) > 0
}

// waitUnlessHandling waits until s has finished or runs a handler it entered before it
// was closed, and reports whether it had to wait. A session enters a Connected or
// Request handler during a stop only if it had decided to before it was closed; it then
// signals srv.stopKick (see enterHandler), and the order of its two steps (set handling,
// read the state) against the stop's (set the state, read handling) means one of them
// always sees the other. A Closed handler counts as such a handler only if it began
// before the stop (see finish): it may be the stop's own caller.
func (srv *Server[T]) waitUnlessHandling(s *Session[T]) (waited bool) {
	for {
		select {
		case <-s.Done():
			return waited
		default:
		}
		if s.handling.Load() {
			return waited
		}
		waited = true
		select {
		case <-s.Done():
			return waited
		case <-srv.stopKick:
		}
	}
}

// kickStop wakes a stop that may be waiting: a session entered a handler, or the last
// Closed handler it counted returned.
func (srv *Server[T]) kickStop() {
	select {
	case srv.stopKick <- struct{}{}:
	default:
	}
}
