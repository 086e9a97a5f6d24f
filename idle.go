package supersocket

import "time"

// clearIdle closes, with CloseTimeOut, every session idle past IdleTimeout, checking every
// IdleCheckInterval. Unlike SuperSocketLite it works whatever the log level, and it reads
// the live registry, not a stale snapshot.
func (srv *Server[T]) clearIdle(quit <-chan struct{}) {
	defer srv.wg.Done()
	tick := time.NewTicker(srv.cfg.IdleCheckInterval)
	defer tick.Stop()
	var all []*Session[T]
	for {
		select {
		case <-quit:
			return
		case now := <-tick.C:
			deadline := now.Add(-srv.cfg.IdleTimeout).UnixNano()
			all = srv.sessions.snapshot(all[:0])
			for _, s := range all {
				if s.lastActive.Load() <= deadline {
					srv.log.Debug("closing idle session", "session", s.id, "idle", now.Sub(s.LastActive()))
					s.Close(CloseTimeOut)
				}
			}
			clear(all)
		}
	}
}
