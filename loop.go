//go:build linux

package supersocket

import (
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/supersocket-go/supersocket/internal/eventloop"
	"github.com/supersocket-go/supersocket/internal/pool"
)

// The epoll engine (Config.Engine "epoll"; docs/engines.md draws it).
//
// N loops (N = GOMAXPROCS) each own an epoll instance and the raw sockets registered in
// it, edge-triggered. A loop's goroutine, its runner, waits on the instance (in a
// blocking epoll_wait, as gnet's loops do: eventloop.Poller), reads each ready socket into the runner's buffer, runs the session's filter and
// its handlers right there, and writes the replies with non-blocking writes; what a
// socket does not take is written when epoll reports it writable. An idle session
// therefore holds no goroutine, no buffer and no net.Conn: its socket, its Session and a
// slot in the loop's table.
//
// A handler that blocks must stall only its own session. The engine's supervisor
// watches each loop: when the runner has been inside one session's handlers for a tick
// (about a millisecond), it gives the loop to a new runner, with a buffer of its own,
// which carries on with the loop's other sessions. The old runner is then that session's
// alone: when the handler returns it finishes the session's batch, reads the socket until
// it is drained, hands the session back to the loop and ends. Other sessions on the loop
// wait at most that tick, once.
//
// Ownership of a session (loopConn.state): whoever sets connBusy owns it — a runner
// serving an event, a finisher started by Close — and only the owner reads the socket,
// dispatches and finishes the session; input that arrives while it is owned elsewhere
// sets connReadable, which the owner looks at before letting go. Only finish closes the
// descriptor (lifecycle.go); everything else that touches it from other goroutines does
// so under loopConn.mu, which finish's close takes too, so a descriptor is never used
// once it may have been reused.

// watchdogTick is how often the supervisor looks for a runner held by a handler.
const watchdogTick = time.Millisecond

// maxReadsPerEvent bounds how many full reads one session gets per turn before the
// loop serves the others (it comes back to the session before waiting again).
const maxReadsPerEvent = 8

// loopReadSize is the size of a runner's read buffer: one per loop (and per runner a
// blocked handler keeps), never per connection. 128 KiB rather than 64: a pipelined batch
// of 16 requests of 4 KiB with their headers is just over 64 KiB, and took two reads.
const loopReadSize = 128 << 10

// engine is the epoll engine of one server run.
type engine[T any] struct {
	srv   *Server[T]
	r     *run
	loops []*loop[T]
	lls   []*loopListener // the listeners the loops accept on, by their events' index
	next  atomic.Uint32   // round robin of the accept goroutines' connections over the loops

	mu    sync.Mutex                                    // table growth and slot writes
	table atomic.Pointer[[]atomic.Pointer[loopConn[T]]] // descriptor → its connection
	gen   uint32                                        // registrations so far (mu)

	live      atomic.Int64 // connections registered and not yet finished
	acceptors atomic.Int32 // listeners open in the loops, and accept goroutines running
	kick      chan struct{}
	// napping: the supervisor waits on wake rather than ticking (see nap).
	napping atomic.Bool
	wake    chan struct{}
	closed  sync.Once
}

// loop is one epoll instance and its sessions.
type loop[T any] struct {
	e     *engine[T]
	p     *eventloop.Poller
	idx   int          // its index in engine.loops
	conns atomic.Int64 // its sessions, registered and not finished (see pick)
	next  int          // the next of p.Events[:p.N] to handle
	// again holds sessions that still had bytes when their turn ended (maxReadsPerEvent);
	// the loop owns them and serves them again (as cur) before it waits.
	again, cur []*loopConn[T]
	// hseq is odd while the runner serves a session (runs its handlers); the supervisor
	// gives the loop to a new runner when it sees the same odd value twice (see steal).
	hseq atomic.Uint64
	// The supervisor's last look at hseq: the value, and when it first saw it (unix
	// nanoseconds).
	seen   uint64
	seenAt int64
}

// runner is a goroutine that runs a loop, and its read buffer.
type runner struct {
	buf []byte
}

// newEngine makes the epoll engine when the configuration asks for it and a plain TCP
// listener can use it: it wraps those listeners (loopListener); nil otherwise. If the
// engine cannot be made, the listeners stay on the goroutine engine, which is logged.
func (srv *Server[T]) newEngine(lns []net.Listener, lnTLS []*tlsListener, lnWS []*WebSocketConfig, lnStats []*listenerStats) *engine[T] {
	if srv.cfg.Engine != EngineEpoll {
		return nil
	}
	eligible := false
	for i, ln := range lns {
		if _, ok := ln.(*net.TCPListener); ok && plainTCP(i, lnTLS, lnWS, lnStats) {
			eligible = true
		}
	}
	if !eligible {
		return nil
	}
	e := &engine[T]{srv: srv, kick: make(chan struct{}, 1), wake: make(chan struct{}, 1)}
	for range max(1, runtime.GOMAXPROCS(0)) {
		p, err := eventloop.NewPoller(256)
		if err != nil {
			srv.log.Warn("the epoll engine cannot start; serving with the goroutine engine", "err", err)
			for _, l := range e.loops {
				l.p.Release()
			}
			return nil
		}
		e.loops = append(e.loops, &loop[T]{e: e, p: p, idx: len(e.loops)})
	}
	tab := make([]atomic.Pointer[loopConn[T]], 1024)
	e.table.Store(&tab)
	for i, ln := range lns {
		tl, ok := ln.(*net.TCPListener)
		if !ok || !plainTCP(i, lnTLS, lnWS, lnStats) {
			continue
		}
		// Accept pacing waits for tokens: on an accept goroutine, not on a loop.
		inLoops := srv.acceptRate == nil
		ll, err := srv.loopListen(tl, lnStats[i], inLoops)
		if err != nil {
			srv.log.Warn("listener cannot use the epoll engine; it uses the goroutine engine", "addr", ln.Addr().String(), "err", err)
			continue
		}
		if inLoops {
			ll.idx = len(e.lls)
			e.lls = append(e.lls, ll)
		}
		lns[i] = ll
	}
	return e
}

// accepts reports whether ln is served by the engine.
func (e *engine[T]) accepts(ln net.Listener) bool {
	_, ok := ln.(*loopListener)
	return e != nil && ok
}

// plainTCP reports whether listener i serves plain TCP: no TLS, no WebSocket and no front
// door (PROXY headers, detection: frontdoor.go), which read and write through a net.Conn
// on the goroutine engine.
func plainTCP(i int, lnTLS []*tlsListener, lnWS []*WebSocketConfig, lnStats []*listenerStats) bool {
	return lnTLS[i] == nil && lnWS[i] == nil && lnStats[i].front == nil
}

// start starts the loops and the supervisor for run r; a nil engine does nothing.
func (e *engine[T]) start(r *run) {
	if e == nil {
		return
	}
	e.r = r
	for _, l := range e.loops {
		r.wg.Add(1)
		go l.run(&runner{buf: pool.Get(loopReadSize)})
	}
	r.wg.Add(1)
	go e.supervise()
}

// supervise is the engine's watchdog (see watch) until the run stops; then it waits until
// every session of the engine has finished and its listeners are closed (the loops'
// listeners, and the accept goroutines ended), and
// closes the loops, whose runners then end. While no runner has served a session for
// napAfter ticks it stops ticking, until a runner starts serving again (serveOne wakes
// it): an idle server costs no timer.
func (e *engine[T]) supervise() {
	defer e.r.wg.Done()
	tick := time.NewTicker(watchdogTick)
	defer tick.Stop()
	quit := e.r.quit
	quiet := 0 // ticks in a row without a serve
	for {
		select {
		case <-tick.C:
			busy, now := false, time.Now().UnixNano()
			for _, l := range e.loops {
				busy = l.watch(now) || busy
			}
			if quiet++; busy {
				quiet = 0
			}
			if quiet >= napAfter && e.nap(tick, quit) {
				quit = nil
			}
		case <-quit:
			quit = nil
		case <-e.kick:
		}
		if quit == nil && e.acceptors.Load() == 0 && e.live.Load() == 0 {
			e.closeLoops()
			return
		}
	}
}

// napAfter is how many quiet ticks make the supervisor stop ticking.
const napAfter = 10

// nap stops the ticker until a runner serves a session again (it reports whether quit
// closed meanwhile). The order of the two sides makes a lost wake-up impossible: a
// runner adds to its hseq before it reads napping, and nap sets napping before it
// looks at the hseqs again.
func (e *engine[T]) nap(tick *time.Ticker, quit <-chan struct{}) (quitted bool) {
	tick.Stop()
	defer tick.Reset(watchdogTick)
	e.napping.Store(true)
	for _, l := range e.loops {
		if l.hseq.Load() != l.seen {
			e.napping.Store(false)
			return false
		}
	}
	select {
	case <-e.wake:
	case <-quit:
		quitted = true
	case <-e.kick:
	}
	e.napping.Store(false)
	return quitted
}

// wakeSupervisor ends a nap: a runner serves a session.
func (e *engine[T]) wakeSupervisor() {
	if e.napping.CompareAndSwap(true, false) {
		select {
		case e.wake <- struct{}{}:
		default:
		}
	}
}

// kickSupervisor wakes the supervisor: a session or an accept goroutine ended.
func (e *engine[T]) kickSupervisor() {
	select {
	case e.kick <- struct{}{}:
	default:
	}
}

func (e *engine[T]) closeLoops() {
	e.closed.Do(func() {
		for _, l := range e.loops {
			l.p.Close()
		}
	})
}

// abortAll closes every session of loop l at once: its epoll instance failed.
func (e *engine[T]) abortAll(l *loop[T]) {
	for s := range e.srv.Sessions() {
		if c, ok := s.tr.(*loopConn[T]); ok && c.loop == l {
			s.abort(CloseInternalError)
		}
	}
}

// watch is the supervisor's look at the loop, at time now: a runner that has been serving
// one session for a tick or more is held by a handler, and loses the loop. It reports
// whether the loop served anything since the last look.
//
// The tick is measured from the first look that saw the serve, not counted in looks: a
// supervisor that was itself kept from running (one P, taken by the runner until it was
// preempted) may take two buffered ticks back to back, between which the runner could not
// have moved on.
func (l *loop[T]) watch(now int64) (busy bool) {
	v := l.hseq.Load()
	busy = v != l.seen || v&1 == 1
	if v != l.seen {
		l.seen, l.seenAt = v, now
		return busy
	}
	if v&1 == 1 && now-l.seenAt >= int64(watchdogTick) && l.hseq.CompareAndSwap(v, v+1) {
		// The runner will see that its hseq moved on when the handler returns (see
		// serveOne), and keep only that session. The new runner carries on from where the
		// old one was: every write to the loop's state happened before its hseq.Add.
		l.e.srv.counters.loopHandoffs.Add(1)
		l.e.srv.log.Debug("a handler held its loop for a tick; a new goroutine serves the loop's other sessions")
		l.e.r.wg.Add(1)
		go l.run(&runner{buf: pool.Get(loopReadSize)})
		l.seen, l.seenAt = v+1, now
	}
	return busy
}

// run is a runner: it handles the loop's events until the loop closes, or until the
// supervisor gives the loop to another runner while this one is in a handler.
func (l *loop[T]) run(rn *runner) {
	defer l.e.r.wg.Done()
	defer func() { pool.Put(rn.buf) }()
	for {
		for l.next < l.p.N {
			ev := &l.p.Events[l.next]
			l.next++
			data := eventloop.Data(ev)
			if uint32(data>>32) == listenerGen {
				if !l.acceptOn(rn, l.e.lls[uint32(data)]) {
					return
				}
				continue
			}
			c := l.e.lookup(data)
			if c == nil {
				continue // a stale event: the socket's session has finished
			}
			events := ev.Events
			if events&eventloop.Out != 0 {
				c.writable()
			}
			if events&^eventloop.Out == 0 && c.state.Load()&connNew == 0 || !c.acquire() {
				continue // only writability, or the session is owned elsewhere
			}
			if !l.serveOne(rn, c, events) {
				return
			}
		}
		for len(l.cur) > 0 {
			c := l.cur[0]
			l.cur = l.cur[1:]
			if !l.serveOne(rn, c, allInput) {
				return
			}
		}
		if len(l.again) > 0 {
			// Sessions whose turn ended with bytes still to read: served again after a
			// look for new events that does not wait.
			l.cur, l.again = l.again, l.cur[:0]
			if err := l.p.Poll(); err != nil {
				l.p.Release()
				return
			}
			l.next = 0
			continue
		}
		if err := l.p.Wait(); err != nil {
			if err != eventloop.ErrClosed {
				// Not seen in practice (epoll_wait fails only for bad arguments): the
				// loop's sessions must not hang, and the loop must not spin.
				l.e.srv.log.Error("epoll loop failed; its sessions are closed", "err", err)
				l.e.abortAll(l)
				time.Sleep(100 * time.Millisecond)
				continue // until closed
			}
			l.p.Release() // closed: the run stopped and every session has finished
			return
		}
		l.next = 0
	}
}

// serveOne serves session c, which the loop owns, with hseq odd around it; false if the
// supervisor gave the loop to a new runner meanwhile: this runner then keeps c until it
// has served it to the end of its input, and must leave the loop's state alone.
func (l *loop[T]) serveOne(rn *runner, c *loopConn[T], events uint32) (attached bool) {
	v := l.hseq.Add(1)
	if l.e.napping.Load() {
		l.e.wakeSupervisor()
	}
	more := c.serveOn(rn, events)
	if !l.hseq.CompareAndSwap(v, v+1) {
		for more {
			more = c.serveOn(rn, allInput)
		}
		return false
	}
	if more {
		l.again = append(l.again, c)
	}
	return true
}

// allInput stands for the events of a session that must be read until its socket is
// drained: its bytes arrived while another goroutine owned it, or its turn ended early.
const allInput = eventloop.In | eventloop.RdHup

// lookup returns the live connection an event's data names (descriptor and
// registration), or nil.
func (e *engine[T]) lookup(data uint64) *loopConn[T] {
	fd, gen := int(uint32(data)), uint32(data>>32)
	tab := *e.table.Load()
	if fd >= len(tab) {
		return nil
	}
	c := tab[fd].Load()
	if c == nil || c.gen != gen {
		return nil
	}
	return c
}

// add gives c its place in the table and its registration number.
func (e *engine[T]) add(c *loopConn[T]) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.gen++; e.gen == listenerGen {
		e.gen = 1 // wrapped: the listeners' number, and 0 (the loops' wake-ups), are taken
	}
	c.gen = e.gen
	tab := *e.table.Load()
	if int(c.fd) >= len(tab) {
		grown := make([]atomic.Pointer[loopConn[T]], max(2*len(tab), int(c.fd)+1))
		for i := range tab {
			grown[i].Store(tab[i].Load())
		}
		e.table.Store(&grown)
		tab = grown
	}
	tab[c.fd].Store(c)
}

// remove takes c out of the table, before its descriptor is closed.
func (e *engine[T]) remove(c *loopConn[T]) {
	e.mu.Lock()
	defer e.mu.Unlock()
	tab := *e.table.Load()
	if int(c.fd) < len(tab) && tab[c.fd].Load() == c {
		tab[c.fd].Store(nil)
	}
}

// ended counts a finished session out; the supervisor closes the loops once the run
// has stopped and none is left.
func (e *engine[T]) ended() {
	if e.live.Add(-1) == 0 {
		e.kickSupervisor()
	}
}

// loopIdle counts the sessions of the epoll engine that no goroutine serves (Stats.Parked
// counts them with the parked ones): all but those a runner or a finisher owns.
func (srv *Server[T]) loopIdle() int {
	n := 0
	srv.sessions.each(func(s *Session[T]) {
		if c, ok := s.tr.(*loopConn[T]); ok && c.state.Load()&(connBusy|connDead) == 0 {
			n++
		}
	})
	return n
}
