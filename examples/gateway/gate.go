package main

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/supersocket-go/supersocket"
)

// gate accepts clients and forwards their packets to back-end game servers over links it
// dials itself (Server.Connect), as SuperSocketLite's GateServer does through its
// GameServerProxy.
//
// Routing. Every client is given one back end when it connects (round robin) and keeps
// it. The gate rewrites each packet's ID to a gate-local ID, unique among the packets in
// flight through the gate, and remembers (gate ID → client, client's ID). The back end
// echoes the ID it got; the gate looks it up, restores the client's ID and hands the reply
// to that client only. So clients may use the same packet IDs, and a back end needs no
// idea of clients. At most 65535 packets can be in flight through one gate; past that a
// client gets an error reply.
//
// Failures. Each back end has a keeper goroutine that dials it, waits for the link to
// close, then dials again with exponential backoff until the gate shuts down. While a back
// end is down its clients' packets get an error reply at once (reserved = 1, "back end …
// unavailable"), and the packets in flight on a link that closed get one each.
//
// Two servers. Links are sessions of a second server, the proxy, not of the client-facing
// one: every session of the proxy is a back-end link and every session of the front is a
// client, with no need to tell them apart. (A server needs a listener to run; the
// proxy's is bound to a free loopback port and takes no part in routing.)
type gate struct {
	front    *supersocket.Server[clientState]
	proxy    *supersocket.Server[struct{}]
	backends []*backend
	next     atomic.Uint64 // round robin over backends
	log      *slog.Logger

	// onLink, when set before start, is told each time a link goes up or down. It runs
	// on the link's keeper goroutine.
	onLink                 func(addr string, up bool)
	minBackoff, maxBackoff time.Duration

	mu      sync.Mutex
	pending map[uint16]route // packets in flight, by gate ID
	lastID  uint16

	ctx    context.Context // ends at shutdown: keepers stop
	cancel context.CancelFunc
	keep   sync.WaitGroup
}

// clientState is a client session's own state: the back end it was given.
type clientState struct {
	backend *backend
}

type clientSession = supersocket.Session[clientState]

// backend is one back-end server and the gate's link to it.
type backend struct {
	addr string
	link atomic.Pointer[supersocket.Session[struct{}]] // nil while down
}

// route is where the reply to a packet in flight goes.
type route struct {
	client *clientSession
	id     uint16 // the client's packet ID
	via    *backend
}

// newGate returns a gate, not started, for clients on addr and the back ends at
// backendAddrs.
func newGate(addr string, backendAddrs []string) (*gate, error) {
	if len(backendAddrs) == 0 {
		return nil, errors.New("gateway: no back end")
	}
	g := &gate{
		log:        slog.Default().With("server", "gate"),
		minBackoff: 100 * time.Millisecond,
		maxBackoff: 5 * time.Second,
		pending:    make(map[uint16]route),
	}
	for _, a := range backendAddrs {
		g.backends = append(g.backends, &backend{addr: a})
	}
	var err error
	g.front, err = supersocket.New(supersocket.Config{
		Name:             "gate",
		Listeners:        []supersocket.ListenerConfig{{Addr: addr}},
		Filter:           packetFilter(),
		MaxRequestLength: maxRequestLength,
	}, supersocket.Handlers[clientState]{
		Connected: func(s *clientSession) {
			s.Data().backend = g.backends[(g.next.Add(1)-1)%uint64(len(g.backends))]
		},
		Request: g.fromClient,
		Closed:  func(s *clientSession, _ supersocket.CloseReason) { g.forget(s) },
	})
	if err != nil {
		return nil, err
	}
	g.proxy, err = supersocket.New(supersocket.Config{
		Name:             "gate-proxy",
		Listeners:        []supersocket.ListenerConfig{{Addr: "127.0.0.1:0"}},
		Filter:           packetFilter(),
		MaxRequestLength: maxRequestLength,
	}, supersocket.Handlers[struct{}]{Request: g.fromBackend})
	if err != nil {
		return nil, err
	}
	return g, nil
}

// start starts both servers and a keeper per back end.
func (g *gate) start() error {
	if err := g.proxy.Start(); err != nil {
		return err
	}
	if err := g.front.Start(); err != nil {
		g.proxy.Stop()
		return err
	}
	g.ctx, g.cancel = context.WithCancel(context.Background())
	for _, b := range g.backends {
		g.keep.Add(1)
		go g.keepLink(b)
	}
	return nil
}

// shutdown closes the clients, then the links, and returns once the keepers have ended.
func (g *gate) shutdown(ctx context.Context) error {
	err := g.front.Shutdown(ctx)
	if g.cancel != nil {
		g.cancel()
	}
	err = errors.Join(err, g.proxy.Shutdown(ctx))
	g.keep.Wait()
	return err
}

// keepLink holds the link to b: dial, wait for it to close, dial again, with backoff,
// until the gate shuts down.
func (g *gate) keepLink(b *backend) {
	defer g.keep.Done()
	delay := g.minBackoff
	for {
		dctx, cancel := context.WithTimeout(g.ctx, 5*time.Second)
		link, err := g.proxy.Connect(dctx, b.addr)
		cancel()
		if err != nil {
			if g.ctx.Err() != nil {
				return
			}
			g.log.Debug("back end unreachable", "addr", b.addr, "err", err, "retry in", delay)
			select {
			case <-time.After(delay):
			case <-g.ctx.Done():
				return
			}
			delay = min(2*delay, g.maxBackoff)
			continue
		}
		delay = g.minBackoff
		b.link.Store(link)
		g.log.Info("back end up", "addr", b.addr)
		if g.onLink != nil {
			g.onLink(b.addr, true)
		}
		// Until the link closes: the back end went away, or the proxy's shutdown closed it.
		<-link.Done()
		b.link.Store(nil)
		g.failInFlight(b)
		g.log.Info("back end down", "addr", b.addr, "reason", link.CloseReason().String())
		if g.onLink != nil {
			g.onLink(b.addr, false)
		}
		if g.ctx.Err() != nil {
			return
		}
	}
}

// fromClient forwards a client's packet to its back end under a gate-local ID.
func (g *gate) fromClient(s *clientSession, req supersocket.Request) {
	id := packetID(req.Header)
	b := s.Data().backend
	link := b.link.Load()
	if link == nil {
		s.Send(encode(id, replyError, []byte("back end "+b.addr+" unavailable")))
		return
	}
	gid, ok := g.register(route{client: s, id: id, via: b})
	if !ok {
		s.Send(encode(id, replyError, []byte("gate busy: too many packets in flight")))
		return
	}
	// Send waits while the link's queue is full: back-pressure on this client only.
	if err := link.Send(header(gid, 0, len(req.Body)), req.Body); err != nil {
		if _, mine := g.take(gid); mine {
			s.Send(encode(id, replyError, []byte("back end "+b.addr+" unavailable")))
		}
	}
}

// fromBackend hands a back end's reply to the client whose packet it answers.
func (g *gate) fromBackend(_ *supersocket.Session[struct{}], req supersocket.Request) {
	r, ok := g.take(packetID(req.Header))
	if !ok {
		return // its client has gone
	}
	// TrySend: a client that does not read loses its reply rather than stalling the
	// link, which every client of this back end shares.
	r.client.TrySend(header(r.id, replyOK, len(req.Body)), req.Body)
}

// register records a packet in flight and returns its gate ID.
func (g *gate) register(r route) (uint16, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.pending) >= 1<<16-1 {
		return 0, false
	}
	for {
		g.lastID++
		if _, used := g.pending[g.lastID]; g.lastID != 0 && !used {
			break
		}
	}
	g.pending[g.lastID] = r
	return g.lastID, true
}

// take removes and returns the route of a packet in flight.
func (g *gate) take(gid uint16) (route, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	r, ok := g.pending[gid]
	delete(g.pending, gid)
	return r, ok
}

// forget drops the packets in flight of a client that has gone.
func (g *gate) forget(s *clientSession) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for gid, r := range g.pending {
		if r.client == s {
			delete(g.pending, gid)
		}
	}
}

// failInFlight answers, with an error, every packet in flight on b's link, which has
// closed.
func (g *gate) failInFlight(b *backend) {
	var failed []route
	g.mu.Lock()
	for gid, r := range g.pending {
		if r.via == b {
			failed = append(failed, r)
			delete(g.pending, gid)
		}
	}
	g.mu.Unlock()
	for _, r := range failed {
		r.client.TrySend(encode(r.id, replyError, []byte("back end "+b.addr+" went away")))
	}
}
