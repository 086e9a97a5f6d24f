package supersocket

import (
	"net"
	"sync/atomic"
	"time"
)

// Stats is a snapshot of a server's counters. Counters only grow, across restarts too;
// Sessions is the live count.
type Stats struct {
	Sessions int64 // live sessions
	// Parked counts the live sessions that are idle without a goroutine (Linux; see
	// the package documentation, Buffers). Always part of Sessions.
	Parked        int64
	Accepted      uint64 // connections accepted, refused ones included
	Refused       uint64 // connections refused (MaxConnections, AllowConnect)
	Requests      uint64 // requests handed to the Request handler
	BytesIn       uint64 // bytes read from sessions
	BytesOut      uint64 // bytes written to sessions
	SendQueueFull uint64 // sends refused or timed out because a queue was full
	// HandshakeFailures counts connections whose handshakes — TLS, a WebSocket upgrade,
	// the front door's PROXY header or detection — failed, timed out or were cut by a
	// stop (no session was created for them).
	HandshakeFailures uint64
	// DatagramsDropped counts UDP datagrams dropped: a session's inbox was full, or
	// UDPSessionKey found no ID.
	DatagramsDropped uint64
	// LoopHandoffs counts, on the epoll engine, the times a handler held its event loop
	// for a millisecond or more and a new goroutine took the loop's other sessions over
	// (docs/engines.md): a figure that grows with every request means handlers that
	// block, which the goroutine engine serves more cheaply.
	LoopHandoffs uint64
	// Closes counts closed sessions by reason, indexed by CloseReason.
	Closes [numCloseReasons]uint64
	// Started is when the server last started; zero while it is not running.
	Started time.Time
	// Listeners has one entry per bound listener, in Config.Listeners order; nil while
	// the server is not running.
	Listeners []ListenerStats
}

// ListenerStats describes one bound listener. Its counters start at zero at each Start.
type ListenerStats struct {
	Network  string // "tcp", "udp", …
	Addr     string // the bound address
	TLS      bool
	Accepted uint64 // connections (UDP: new peers) accepted, refused ones included
	Sessions int64  // live sessions that came through it
}

// listenerStats is the live form of ListenerStats.
type listenerStats struct {
	network, addr string
	bound         net.Addr // addr, as the listener reports it
	tls           bool
	front         *frontListener // the listener's front door (frontdoor.go); nil for none
	accepted      atomic.Uint64
	sessions      atomic.Int64
}

// counters is the live form of Stats.
type counters struct {
	accepted, refused, requests, bytesIn, bytesOut, sendQueueFull, datagramsDropped, handshakeFailures, loopHandoffs atomic.Uint64
	closes                                                                                                           [numCloseReasons]atomic.Uint64
}

// Stats returns a snapshot of the server's counters. Safe from any goroutine.
func (srv *Server[T]) Stats() Stats {
	c := &srv.counters
	st := Stats{
		Sessions:          srv.live.Load(),
		Parked:            int64(srv.parkedCount()),
		Accepted:          c.accepted.Load(),
		Refused:           c.refused.Load(),
		Requests:          c.requests.Load(),
		BytesIn:           c.bytesIn.Load(),
		BytesOut:          c.bytesOut.Load(),
		SendQueueFull:     c.sendQueueFull.Load(),
		DatagramsDropped:  c.datagramsDropped.Load(),
		HandshakeFailures: c.handshakeFailures.Load(),
		LoopHandoffs:      c.loopHandoffs.Load(),
	}
	for i := range c.closes {
		st.Closes[i] = c.closes[i].Load()
	}
	srv.infoMu.Lock()
	lstats, started := srv.lstats, srv.started
	srv.infoMu.Unlock()
	st.Started = started
	for _, l := range lstats {
		st.Listeners = append(st.Listeners, ListenerStats{
			Network: l.network, Addr: l.addr, TLS: l.tls,
			Accepted: l.accepted.Load(), Sessions: l.sessions.Load(),
		})
	}
	return st
}
