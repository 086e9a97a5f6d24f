package supersocket

import "github.com/supersocket-go/supersocket/internal/netread"

// Parking: an idle TCP session without a goroutine. The server keeps one netread.Parker,
// made when the first session goes idle and stopped when the server stops.

// park hands an idle session to the server's parker; true means the calling goroutine
// must end without touching the session again. The caller has added the run count the
// resumed session will release. False: the session cannot park (not Linux, a TLS
// session, the server stopping, the parker failed, or the session closing) and the
// caller continues it.
func (srv *Server[T]) park(st *stream[T]) bool {
	if !st.rd.ReleasesIdleBuffer() {
		return false
	}
	srv.parkMu.Lock()
	p := srv.parker
	if p == nil && srv.State() == StateRunning {
		var err error
		if p, err = netread.NewParker(srv.parkerFailed); err != nil {
			srv.log.Debug("idle sessions cannot park; they keep a goroutine", "err", err)
		}
		srv.parker = p
	}
	srv.parkMu.Unlock()
	return p != nil && p.Park(st.rd, &st.tok, st)
}

// parkerFailed is told when the parker stops parking for good: idle sessions then keep a
// goroutine each, which costs memory but nothing else.
func (srv *Server[T]) parkerFailed(err error) {
	srv.log.Warn("idle sessions can no longer park; each keeps a goroutine until the server restarts", "err", err)
}

// unpark resumes a parked session on a new goroutine; Close calls it after setting the
// close reason, so the session's goroutine comes back to finish it. Cheap when the
// session is not parked.
func (srv *Server[T]) unpark(tok *netread.Token) {
	if !tok.Parked() {
		return
	}
	srv.parkMu.Lock()
	p := srv.parker
	srv.parkMu.Unlock()
	if p == nil {
		return
	}
	if o := p.Unpark(tok); o != nil {
		go o.Resume()
	}
}

// stopParking ends the parker's goroutine; it resumes whatever is still parked.
func (srv *Server[T]) stopParking() {
	srv.parkMu.Lock()
	p := srv.parker
	srv.parker = nil
	srv.parkMu.Unlock()
	if p != nil {
		p.Stop()
	}
}

// parkedCount returns how many of the server's sessions are parked: idle without a
// goroutine, on the parker or, on the epoll engine, in their loop.
func (srv *Server[T]) parkedCount() int {
	srv.parkMu.Lock()
	p := srv.parker
	srv.parkMu.Unlock()
	n := srv.loopIdle()
	if p != nil {
		n += p.Parked()
	}
	return n
}
