package supersocket

// Parking: an idle TCP session without a goroutine (see parker).

// park hands an idle session to the server's parker; true means the calling goroutine
// must end without touching the session again. The caller has added the goroutine count
// the resumed session will release (serveReadHopped). False: the session cannot park
// (not Linux, a TLS session, the server stopping, or the session closing) and the caller
// continues it.
func (srv *Server[T]) park(s *Session[T]) bool {
	if !s.rd.ReleasesIdleBuffer() {
		return false
	}
	srv.parkMu.Lock()
	p := srv.parker
	if p == nil && srv.State() == StateRunning {
		var err error
		if p, err = newParker(); err != nil {
			srv.log.Debug("idle sessions cannot park; they keep a goroutine", "err", err)
		}
		srv.parker = p
	}
	srv.parkMu.Unlock()
	return p != nil && p.park(s.rd.Control, &s.parkTok, &s.closed, s.hopFn)
}

// unpark resumes s on a new goroutine if it is parked; Close calls it after setting the
// close reason, so the session's goroutine comes back to finish it.
func (srv *Server[T]) unpark(s *Session[T]) {
	if s.parkTok.Load() == 0 {
		return
	}
	srv.parkMu.Lock()
	p := srv.parker
	srv.parkMu.Unlock()
	if p == nil {
		return
	}
	if resume := p.unpark(&s.parkTok); resume != nil {
		go resume()
	}
}

// stopParking ends the parker's goroutine once every session has finished.
func (srv *Server[T]) stopParking() {
	srv.parkMu.Lock()
	p := srv.parker
	srv.parker = nil
	srv.parkMu.Unlock()
	if p != nil {
		p.stop()
	}
}

// parkedCount returns how many of the server's sessions are parked.
func (srv *Server[T]) parkedCount() int {
	srv.parkMu.Lock()
	p := srv.parker
	srv.parkMu.Unlock()
	if p == nil {
		return 0
	}
	return p.parkedCount()
}
