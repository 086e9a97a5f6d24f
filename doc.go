// Package supersocket is a socket application server framework: SuperSocket's AppServer,
// AppSession and ReceiveFilters, done the Go way.
//
// A [Server] owns its configuration, its listeners and a registry of live sessions. Each
// accepted connection becomes a [Session]; the session's receive filter (package filter)
// turns its byte stream into requests, and the server hands each request to the
// application's Request handler. Sends go through a bounded per-session queue drained by
// one writer with vectored writes.
//
//	srv, err := supersocket.New(supersocket.Config{
//		Listeners: []supersocket.ListenerConfig{{Addr: "127.0.0.1:2012"}},
//		Filter:    filter.CommandLine(),
//	}, supersocket.Handlers[struct{}]{
//		Request: func(s *supersocket.Session[struct{}], req supersocket.Request) {
//			s.Send(req.Body, []byte("\r\n"))
//		},
//	})
//	if err != nil { ... }
//	err = srv.Serve(ctx) // until ctx ends; then a graceful Shutdown
//
// # Event order
//
// For one session, the handlers run in this order, one at a time, never concurrently with
// each other. One goroutine at a time owns a session and runs its handlers (a TCP session
// idle for a quarter second gives its goroutine up and a new one takes over when bytes
// come; the order holds across that); different sessions' handlers run in parallel:
//
//	accept ──► AllowConnect? ──► MaxConnections? ──(refused: closed, counted, OnRefused)
//	   │
//	   ▼
//	Connected(s) ──► Request(s, r1) ──► Request(s, r2) ──► … ──► Closed(s, reason)
//	                  (arrival order; the next starts       (exactly once, after the last
//	                   after the previous returned)          Request returned and the
//	                                                         socket was closed)
//
//	Session.Close(reason), from any goroutine at any time:
//	   ├─ later requests are not dispatched; a running handler finishes first
//	   ├─ bytes queued before Close are flushed (bounded by CloseLinger)
//	   └─ then the socket closes and Closed(s, reason) runs; the first reason wins
//
// Closed runs for every session that was created, even one closed before Connected could
// run (its filter factory failed, or the server began stopping as it was accepted); a
// connection refused at accept, or whose TLS handshake failed, never becomes a session
// and fires no event.
//
// Handlers of different sessions run in parallel; so do Send, TrySend and Close called
// from other goroutines. A handler blocks only its own session's reading, never another
// session. Code must not rely on which goroutine runs a handler (an event-loop engine is
// planned behind the same contract): use Session.Data for per-session state.
//
// # Buffers
//
// A Request's byte slices alias the session's receive buffer and are valid only until the
// Request handler returns; copy what must be kept. Send and TrySend copy the bytes they
// are given before returning, so the caller may reuse its buffer at once (a request's Body
// can be echoed directly). A session holds a receive buffer only while an unfinished
// request is pending, a writer goroutine only while it has bytes to write, and on Linux no
// goroutine at all while it is idle: after a quarter second without bytes its socket is
// parked in the server's epoll set, and a new goroutine takes it up when it is readable
// or closed.
//
// # Closing
//
// Every close carries a [CloseReason], SuperSocket's nine: a peer's FIN is
// CloseClientClosing, a reset or write failure CloseSocketError, a filter's refusal
// (malformed or over MaxRequestLength) CloseProtocolError, a handler panic
// CloseApplicationError, idleness CloseTimeOut, a Shutdown CloseServerShutdown, and
// Session.Close takes the reason the application gives (CloseServerClosing by convention).
//
// # Stopping
//
// Stopping never waits for application code that does not return, and one session never
// waits for another:
//
//	Shutdown(ctx)  listeners closed ─► every session Close(ServerShutdown) ─► wait for all
//	               (queued bytes flushed, handlers in progress finish, Closed handlers run)
//	                 │ ctx ends first
//	                 ▼
//	Stop()         every session aborted at once: queued bytes dropped, connection shut
//	               down (the peer sees the end now) ─► wait for each session that is not
//	               inside a Connected or Request handler (its Closed handler included)
//	                 │
//	                 ▼
//	               return (Shutdown: ctx.Err(); Stop: nil)
//
// A session whose Connected or Request handler is still running when the stop returns —
// blocked on a channel, a lock, a slow database, or the very handler that called Stop —
// finishes when that handler returns: its Closed handler runs then, with
// CloseServerShutdown. [Server.Wait] waits for those sessions (and for everything else
// the server started). So Shutdown called from a handler returns when its context ends,
// and Stop called from a handler returns once every other session has closed. A Closed
// handler that began before the stop may call Stop or Shutdown too; Closed handlers that
// the stop caused are waited for, and must return.
package supersocket
