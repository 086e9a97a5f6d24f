package supersocket

import "time"

// clearIdle closes, with CloseTimeOut, every session idle past IdleTimeout, or still
// without a request past FirstRequestTimeout, checking every IdleCheckInterval. Unlike SuperSocketLite it works whatever the log level, and it reads
// the live registry, not a stale snapshot.
func (srv *Server[T]) clearIdle(quit <-chan struct{}) {
	tick := time.NewTicker(srv.cfg.IdleCheckInterval)
	defer tick.Stop()
	var all []*Session[T]
	for {
		select {
		case <-quit:
			return
		case now := <-tick.C:
			idle, first := srv.cfg.IdleTimeout, srv.cfg.FirstRequestTimeout
			idleDeadline := now.Add(-idle).UnixNano()
			all = srv.sessions.snapshot(all[:0])
			for _, s := range all {
				if st, ok := s.tr.(*stream[T]); ok && st.ws != nil {
					st.ws.pingIdle(now)
				}
				switch {
				case idle > 0 && s.lastActive.Load() <= idleDeadline:
					srv.log.Debug("closing idle session", "session", s.id, "idle", now.Sub(s.LastActive()))
					s.Close(CloseTimeOut)
				case first > 0 && !s.served.Load() && now.Sub(s.StartTime()) >= first:
					srv.log.Debug("closing session without a first request", "session", s.id, "age", now.Sub(s.StartTime()))
					s.Close(CloseTimeOut)
				}
			}
			clear(all)
		}
	}
}
