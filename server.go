package supersocket

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/supersocket-go/supersocket/internal/netread"
)

// Handlers are a server's event handlers: SuperSocket's NewSessionConnected,
// NewRequestReceived and SessionClosed. For one session they run in the order the package
// documentation draws, one at a time; different sessions' handlers run in parallel.
// A handler that panics is recovered and logged, and its session is closed with
// CloseApplicationError; other sessions never notice.
type Handlers[T any] struct {
	// Connected runs first, before any request of the session. Optional.
	Connected func(s *Session[T])
	// Request runs once per request, in arrival order. Required. req's byte slices alias
	// the session's receive buffer and are valid only until Request returns.
	Request func(s *Session[T], req Request)
	// Closed runs last, exactly once, after the last Request returned and the socket was
	// closed. Optional.
	Closed func(s *Session[T], reason CloseReason)
}

// Server is SuperSocket's AppServer: it owns the configuration, the listeners and the
// registry of sessions. T is the type of the state each Session carries (see Session.Data);
// use struct{} when sessions need none.
//
// Its methods are safe to call from any goroutine.
type Server[T any] struct {
	cfg Config
	h   Handlers[T]
	log *slog.Logger

	state atomic.Int32 // a ServerState

	mu        sync.Mutex     // guards the state's transitions and what Start sets up (not held while a stop waits)
	runMu     sync.RWMutex   // held for reading while a goroutine is added outside the accept loops
	run       *run           // the current run; nil before the first Start
	listeners []net.Listener // TCP listeners bound by Start
	udpSocks  []*udpSocket[T]
	// infoMu guards addrs, lstats and started. Addrs and Stats take it, not mu, so that
	// they never wait for a Start or a stop in progress.
	infoMu  sync.Mutex
	addrs   []net.Addr // every bound address, in Config.Listeners order
	lstats  []*listenerStats
	started time.Time
	stopped chan struct{} // closed when a stop has finished: Serve returns

	// runsMu guards unfinished: the runs some goroutine of which is still running
	// (Wait waits for them).
	runsMu     sync.Mutex
	unfinished map[*run]struct{}
	// stopKick wakes a stop waiting in settle: a session entered a handler, or the
	// Closed handlers counted in closing have returned.
	stopKick chan struct{}
	closing  atomic.Int64 // Closed handlers running during a stop (see finish)

	tls        []*tlsListener // per Config.Listeners entry; nil for plain listeners
	door       doorState      // the front door's: PROXY, detection, given listeners, draining
	pending    sync.Map       // net.Conn → *handshaking: connections in their handshakes (pending.go)
	perIP      ipCounts
	acceptRate *tokenBucket // nil: no limit
	parkMu     sync.Mutex
	parker     *netread.Parker // idle sessions without a goroutine; nil until one parks
	parkAfter  time.Duration   // parkAfter, or shorter in a benchmark
	hooks      *raceHooks      // nil outside tests (pending.go)

	sessions registry[T]
	udp      udpTable[T]
	active   atomic.Int64 // admitted connections (sessions and TLS handshakes), for MaxConnections
	live     atomic.Int64 // sessions, from registration to finish
	counters counters
	refusals refusalLog
}

// New validates cfg and returns a server that is not started. A Config error is a
// *ConfigError naming the field.
func New[T any](cfg Config, h Handlers[T]) (*Server[T], error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if h.Request == nil {
		return nil, &ConfigError{Field: "Handlers.Request", Problem: "a request handler is required"}
	}
	srv := &Server[T]{cfg: c, h: h, log: c.Logger.With("server", c.Name), parkAfter: parkAfter}
	srv.stopped = make(chan struct{})
	srv.stopKick = make(chan struct{}, 1)
	srv.unfinished = make(map[*run]struct{})
	srv.tls = make([]*tlsListener, len(c.Listeners))
	srv.door.init(c.Listeners)
	for i, l := range c.Listeners {
		if l.TLS == nil {
			continue
		}
		if srv.tls[i], err = newTLSListener(*l.TLS, fmt.Sprintf("Listeners[%d].TLS", i)); err != nil {
			return nil, err
		}
	}
	if c.AcceptRate > 0 {
		srv.acceptRate = newTokenBucket(c.AcceptRate, c.AcceptBurst)
	}
	return srv, nil
}

// Config returns the server's configuration with its defaults filled in.
func (srv *Server[T]) Config() Config { return srv.cfg }

// State returns the server's lifecycle state.
func (srv *Server[T]) State() ServerState { return ServerState(srv.state.Load()) }

// Addrs returns the addresses the listeners are bound to (useful with port 0), in the
// order of Config.Listeners; nil when the server is not running.
func (srv *Server[T]) Addrs() []net.Addr {
	srv.infoMu.Lock()
	defer srv.infoMu.Unlock()
	return append([]net.Addr(nil), srv.addrs...)
}

// Start binds every listener, or none: if one fails, those already bound are closed and
// the error names the failing address. Then it starts accepting and returns. It returns
// ErrServerRunning unless the server is NotStarted. A stopped server may be started again.
func (srv *Server[T]) Start() error {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if !srv.state.CompareAndSwap(int32(StateNotStarted), int32(StateStarting)) {
		return ErrServerRunning
	}
	lc := net.ListenConfig{KeepAlive: srv.cfg.KeepAlive}
	var lns []net.Listener
	var lnTLS []*tlsListener
	var lnWS []*WebSocketConfig
	var lnStats, lstats []*listenerStats
	var socks []*udpSocket[T]
	var addrs []net.Addr
	for i, l := range srv.cfg.Listeners {
		var addr net.Addr
		var err error
		if isUDP(l.Network) {
			var pc *net.UDPConn
			if pc, err = srv.listenPacket(lc, i, l); err == nil {
				u := &udpSocket[T]{srv: srv, pc: pc}
				u.stats = &listenerStats{network: l.Network, addr: pc.LocalAddr().String()}
				lstats = append(lstats, u.stats)
				u.tune()
				socks = append(socks, u)
				addr = pc.LocalAddr()
			}
		} else {
			var ln net.Listener
			network := l.Network
			if isWebSocket(network) {
				network = "tcp"
			}
			if ln, err = srv.listen(lc, i, network, l); err == nil {
				ls := &listenerStats{network: l.Network, addr: ln.Addr().String(), bound: ln.Addr(), tls: srv.tls[i] != nil, front: srv.door.listeners[i]}
				lns = append(lns, ln)
				lnTLS = append(lnTLS, srv.tls[i])
				lnWS = append(lnWS, l.WebSocket)
				lnStats = append(lnStats, ls)
				lstats = append(lstats, ls)
				addr = ln.Addr()
			}
		}
		if err != nil {
			for _, ln := range lns {
				ln.Close()
			}
			for _, u := range socks {
				u.pc.Close()
			}
			srv.state.Store(int32(StateNotStarted))
			return fmt.Errorf("supersocket: listen %s %s: %w", l.Network, l.Addr, err)
		}
		addrs = append(addrs, addr)
	}
	// The epoll engine, when Config.Engine asks for it, wraps the plain TCP listeners it
	// serves (loop.go); nil otherwise.
	eng := srv.newEngine(lns, lnTLS, lnWS, lnStats)
	srv.listeners, srv.udpSocks = lns, socks
	srv.infoMu.Lock()
	srv.addrs, srv.lstats, srv.started = addrs, lstats, time.Now()
	srv.infoMu.Unlock()
	r := newRun()
	srv.run = r
	srv.runsMu.Lock()
	srv.unfinished[r] = struct{}{}
	srv.runsMu.Unlock()
	srv.stopped = make(chan struct{})
	eng.start(r)
	for i, ln := range lns {
		if eng.accepts(ln) {
			eng.listen(ln.(*loopListener)) // in its loops, or on an accept goroutine
			continue
		}
		r.startLoop(func() { srv.acceptLoop(r, ln, lnTLS[i], lnWS[i], lnStats[i]) })
	}
	for _, u := range socks {
		r.startLoop(func() { u.receive(r) })
	}
	if srv.cfg.timed() {
		r.startLoop(func() { srv.clearIdle(r.quit) })
	}
	srv.state.Store(int32(StateRunning))
	for _, a := range srv.addrs {
		srv.log.Info("listening", "addr", a.String())
	}
	return nil
}

// Serve starts the server if it is not running, then blocks until it stops. When ctx ends
// it shuts the server down gracefully (Shutdown, with queued sends bounded by
// CloseLinger). It returns ErrServerClosed after a clean stop, whoever asked for it, or the
// error that prevented starting or stopping cleanly.
func (srv *Server[T]) Serve(ctx context.Context) error {
	if err := srv.Start(); err != nil && !errors.Is(err, ErrServerRunning) {
		return err
	}
	srv.mu.Lock()
	stopped := srv.stopped
	srv.mu.Unlock()
	select {
	case <-stopped:
		return ErrServerClosed
	case <-ctx.Done():
		if err := srv.Shutdown(context.WithoutCancel(ctx)); err != nil {
			return err
		}
		return ErrServerClosed
	}
}

// Session returns the live session with the given ID. Safe from any goroutine.
func (srv *Server[T]) Session(id string) (*Session[T], bool) {
	s := srv.sessions.get(id)
	return s, s != nil
}

// SessionCount returns the number of live sessions. Safe from any goroutine.
func (srv *Server[T]) SessionCount() int { return int(srv.live.Load()) }

// Sessions iterates over the live sessions. It works on a snapshot taken when iteration
// starts, so the loop body may close sessions or start new work freely; a session that
// closes meanwhile may still be yielded (its sends then return ErrSessionClosed).
func (srv *Server[T]) Sessions() iter.Seq[*Session[T]] {
	return func(yield func(*Session[T]) bool) {
		for _, s := range srv.sessions.snapshot(nil) {
			if !yield(s) {
				return
			}
		}
	}
}

// Broadcast queues b, with TrySend, on every live session for which match returns true
// (every session when match is nil). It never blocks on a slow session: one whose queue is
// full misses the message (counted in Stats.SendQueueFull). It returns how many sessions
// queued it.
func (srv *Server[T]) Broadcast(b []byte, match func(*Session[T]) bool) int {
	n := 0
	for s := range srv.Sessions() {
		if match != nil && !match(s) {
			continue
		}
		if s.TrySend(b) == nil {
			n++
		}
	}
	return n
}

// refusalLog rate-limits the warning about refused connections to one a second; each
// refusal is logged at debug level.
type refusalLog struct {
	last atomic.Int64 // unix nanoseconds of the last warning
}

func (r *refusalLog) shouldWarn(now time.Time) bool {
	last := r.last.Load()
	return now.UnixNano()-last >= int64(time.Second) && r.last.CompareAndSwap(last, now.UnixNano())
}
