//go:build linux

package supersocket

// loopWriterParked reports whether s, a session of the epoll engine, has a writer waiting
// for its full socket to become writable.
func loopWriterParked[T any](s *Session[T]) bool {
	c, ok := s.tr.(*loopConn[T])
	return ok && c.out.Load() == outParked
}

// sameLoop reports whether the sessions of clients a and b share an event loop, or, on
// the goroutine engine, true.
func sameLoop[T any](srv *Server[T], a, b *client) bool {
	la, lb := loopOf(srv, a), loopOf(srv, b)
	return la == lb
}

// loopOf returns the loop of the session whose remote address is c's local one, or nil.
func loopOf[T any](srv *Server[T], c *client) any {
	for s := range srv.Sessions() {
		if s.RemoteAddr().String() == c.LocalAddr().String() {
			if lc, ok := s.tr.(*loopConn[T]); ok {
				return lc.loop
			}
			return nil
		}
	}
	panic("no session for the client")
}
