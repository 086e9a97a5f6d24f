package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// link is a node's NATS side while it is joined: the connection, the users' KV bucket,
// the node's subscriptions and the goroutines that keep them alive.
//
// Subjects (P is Config.Prefix):
//
//	P.node.<id>.in       sends, closes and kicks for the node's sessions
//	P.node.<id>.ack.>    acknowledgements of the node's calls (".b": a batch; ".<node>.<seq>": NATS's no-responders)
//	P.node.<id>.rpc      node-to-node requests
//	P.room.<room>        a room's publishes; a node subscribes while the room has local members
//	P.hb                 heartbeats
//	P.query              cluster-wide queries (rooms, members)
//
// KV bucket <P with '.' as '_'>_users: user ID → session ID, with compare-and-set
// revisions and MaxAge UserTTL.
//
// Reconnecting: nats.go resubscribes every subscription (rooms included) after a
// reconnect. The node watches the connection's status: when it drops, every call
// waiting for an acknowledgement fails with ErrDisconnected and new calls fail at once;
// when it comes back, the node says hello (the others list it again at once), makes
// sure the KV bucket exists (a NATS restarted without its store has lost it) and
// rewrites every binding of its users, taking back what expired meanwhile, and kicking
// a local session whose user was bound elsewhere in between.
type link struct {
	nc  *nats.Conn
	own bool // the node opened nc: it closes it when it leaves
	js  jetstream.JetStream

	kvMu sync.RWMutex
	kv   jetstream.KeyValue // nil until the bucket is known to exist

	prefix     string // Config.Prefix
	self       string // this node's ID
	ackPrefix  string // "P.node.<self>.ack."
	subs       []*nats.Subscription
	maxPayload int64 // the server's, when the node joined
	pending    pendingCalls
	acks       ackBatches // the inbox subscription's goroutine only
	// inboxScratch is the inbox subscription goroutine's *sendGroup[T].
	inboxScratch any

	outMu    sync.Mutex               // serialises changes of outboxes
	outboxes atomic.Pointer[outboxes] // by node: calls not yet published
	flush    flusher
	frames   roomFrames // membership frames (see membership.go)
	reply    []byte     // the flusher's scratch

	status chan nats.Status
	wake   chan struct{} // the refresher's: rewrite bindings now
	quit   chan struct{}
	ctx    context.Context // ends when the node leaves: request handlers' parent
	cancel context.CancelFunc
	loops  sync.WaitGroup // flusher, status watcher, heartbeat, refresher
	work   sync.WaitGroup // request handlers
	reqs   chan struct{}  // semaphore of request handlers

	staleMu sync.Mutex
	stale   map[string]uint64 // bindings to delete once NATS is back: key → revision
}

func (l *link) connected() bool { return l.nc.Status() == nats.CONNECTED }

func (l *link) bucket() jetstream.KeyValue {
	l.kvMu.RLock()
	defer l.kvMu.RUnlock()
	return l.kv
}

// flushAcks publishes the acknowledgements collected so far, and returns how many
// messages that took.
func (l *link) flushAcks() (msgs uint64) {
	for _, ab := range l.acks.by {
		if len(ab.b) == 0 {
			continue
		}
		if l.nc.Publish(ab.subject, ab.b) == nil {
			msgs++
		}
		ab.b = ab.b[:0]
	}
	l.acks.n = 0
	return msgs
}

// bucketName is the users' KV bucket of a prefix.
func bucketName(prefix string) string { return strings.ReplaceAll(prefix, ".", "_") + "_users" }

// join connects to NATS and subscribes; joined is false when the node had joined
// already.
func (n *Node[T]) join() (joined bool, err error) {
	n.life.Lock()
	defer n.life.Unlock()
	if n.link.Load() != nil {
		return false, nil
	}
	l := &link{
		prefix:    n.cfg.Prefix,
		self:      n.cfg.NodeID,
		ackPrefix: n.cfg.Prefix + ".node." + n.cfg.NodeID + ".ack.",
		flush:     flusher{wake: make(chan struct{}, 1)},
		wake:      make(chan struct{}, 1),
		quit:      make(chan struct{}),
		reqs:      make(chan struct{}, n.cfg.MaxRequests),
		stale:     make(map[string]uint64),
	}
	l.acks.prefix = n.cfg.Prefix + ".node."
	l.pending.maxAsync = int64(n.cfg.MaxInFlight)
	l.pending.sendErrors = &n.stats.remoteSendErrors
	l.pending.timeout = n.cfg.RequestTimeout
	l.pending.expireTicks = uint64((n.cfg.RequestTimeout + n.cfg.HeartbeatInterval - 1) / n.cfg.HeartbeatInterval)
	l.outboxes.Store(&outboxes{})
	if n.cfg.Conn != nil {
		l.nc = n.cfg.Conn
		if !l.nc.IsConnected() && l.nc.Status() != nats.RECONNECTING {
			return false, fmt.Errorf("%w: the given connection is %v", ErrNATSUnavailable, l.nc.Status())
		}
	} else {
		opts := append([]nats.Option{
			nats.Name("supersocket node " + n.cfg.NodeID),
			nats.NoEcho(), // a node never needs its own room publishes or heartbeats
			nats.MaxReconnects(-1),
			nats.ReconnectWait(250 * time.Millisecond),
			nats.ReconnectJitter(100*time.Millisecond, time.Second),
			nats.Timeout(2 * time.Second),
			nats.PingInterval(5 * time.Second),
			nats.MaxPingsOutstanding(2),
		}, n.cfg.NATSOptions...)
		if l.nc, err = nats.Connect(n.cfg.URL, opts...); err != nil {
			return false, fmt.Errorf("%w: connect to %s: %v", ErrNATSUnavailable, n.cfg.URL, err)
		}
		l.own = true
	}
	fail := func(err error) (bool, error) {
		for _, s := range l.subs {
			s.Unsubscribe()
		}
		if l.own {
			l.nc.Close()
		}
		return false, err
	}
	if l.js, err = jetstream.New(l.nc); err != nil {
		return fail(fmt.Errorf("%w: %v", ErrNATSUnavailable, err))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	err = n.ensureBucket(ctx, l)
	cancel()
	if err != nil {
		return fail(err)
	}
	self := n.cfg.Prefix + ".node." + n.cfg.NodeID
	for _, sub := range []struct {
		subject string
		cb      func(*link, *nats.Msg)
	}{
		{self + ".in", n.onInbox},
		{self + ".ack.>", n.onAck},
		{self + ".rpc", n.onRequest},
		{n.cfg.Prefix + ".hb", n.onHeartbeat},
		{n.cfg.Prefix + ".query", n.onQuery},
	} {
		cb := sub.cb
		s, err := l.nc.Subscribe(sub.subject, func(m *nats.Msg) { cb(l, m) })
		if err != nil {
			return fail(fmt.Errorf("%w: subscribe %s: %v", ErrNATSUnavailable, sub.subject, err))
		}
		// A slow node must not drop its inbox: let the client queue hold more.
		s.SetPendingLimits(-1, 256<<20)
		l.subs = append(l.subs, s)
	}
	if err := l.nc.FlushTimeout(5 * time.Second); err != nil {
		return fail(fmt.Errorf("%w: %v", ErrNATSUnavailable, err))
	}
	l.maxPayload = l.nc.MaxPayload()
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.status = l.nc.StatusChanged(nats.CONNECTED, nats.RECONNECTING, nats.DISCONNECTED, nats.CLOSED)
	n.link.Store(l)
	// Rooms joined while the node was not in the cluster get their subscriptions now.
	n.mu.Lock()
	for _, r := range n.rooms {
		n.subscribeRoomLocked(l, r)
		n.syncRoomLocked(l, r)
	}
	n.mu.Unlock()
	n.drainRoomFrames()
	n.peers.reset()
	l.loops.Add(4)
	go n.flushLoop(l)
	go n.watch(l)
	go n.heartbeats(l)
	go n.refresher(l)
	n.sayHello(l)
	n.log.Info("joined the cluster", "nats", l.nc.ConnectedUrl(), "incarnation", n.inc)
	return true, nil
}

// ensureBucket creates the users' bucket, or finds it.
func (n *Node[T]) ensureBucket(ctx context.Context, l *link) error {
	name := bucketName(n.cfg.Prefix)
	kv, err := l.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      name,
		Description: "supersocket cluster: user ID → session ID",
		History:     1,
		TTL:         n.cfg.UserTTL,
		Storage:     jetstream.MemoryStorage,
	})
	if errors.Is(err, jetstream.ErrBucketExists) {
		if kv, err = l.js.KeyValue(ctx, name); err == nil {
			if st, err := kv.Status(ctx); err == nil && st.TTL() != n.cfg.UserTTL {
				n.log.Warn("the users bucket has another TTL; keeping it", "bucket", name, "ttl", st.TTL(), "configured", n.cfg.UserTTL)
			}
		}
	}
	if err != nil {
		if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
			return fmt.Errorf("%w: JetStream is not enabled on %s; the users' KV bucket needs it", ErrNATSUnavailable, l.nc.ConnectedUrl())
		}
		return fmt.Errorf("%w: KV bucket %s: %v", ErrNATSUnavailable, name, err)
	}
	l.kvMu.Lock()
	l.kv = kv
	l.kvMu.Unlock()
	return nil
}

// leave unsubscribes, unbinds the remaining users and, for a connection the node
// opened, closes it. Safe to call when not joined.
func (n *Node[T]) leave() {
	n.life.Lock()
	defer n.life.Unlock()
	l := n.link.Load()
	if l == nil {
		return
	}
	close(l.quit)
	l.loops.Wait()
	n.link.Store(nil)
	n.sayGoodbye(l)
	// Users of sessions still open (a handler that did not return during a Stop) are
	// unbound now rather than left to expire.
	n.mu.Lock()
	var bound []*member[T]
	for _, m := range n.users {
		bound = append(bound, m)
	}
	for _, r := range n.rooms {
		if r.sub != nil {
			r.sub.Unsubscribe()
			r.sub = nil
		}
		r.remote = nil // no longer kept up to date
	}
	n.mu.Unlock()
	if kv := l.bucket(); kv != nil && l.connected() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		for _, m := range bound {
			n.mu.RLock()
			user, rev := m.user, m.rev
			n.mu.RUnlock()
			if user != "" {
				kv.Delete(ctx, token(user), jetstream.LastRevision(rev))
			}
		}
		n.deleteStale(ctx, l)
		cancel()
	}
	for _, s := range l.subs {
		s.Unsubscribe()
	}
	l.cancel()
	l.work.Wait()
	l.pending.setDown(true)
	l.pending.failAll(ErrDisconnected)
	l.nc.RemoveStatusListener(l.status)
	if l.own {
		l.nc.FlushTimeout(time.Second)
		l.nc.Close()
	}
	n.log.Info("left the cluster")
}

// watch follows the connection's status until the node leaves.
func (n *Node[T]) watch(l *link) {
	defer l.loops.Done()
	for {
		select {
		case <-l.quit:
			return
		case st := <-l.status:
			switch st {
			case nats.RECONNECTING, nats.DISCONNECTED, nats.CLOSED:
				l.pending.setDown(true)
				l.pending.failAll(ErrDisconnected)
				n.stats.disconnects.Add(1)
				n.log.Warn("lost NATS; local sessions go on, cross-node calls fail until it is back", "status", st.String())
			case nats.CONNECTED:
				l.pending.setDown(false)
				n.stats.reconnects.Add(1)
				n.log.Info("NATS is back; restoring", "nats", l.nc.ConnectedUrl())
				n.peersSeenNow()
				n.sayHello(l)
				// Membership frames were dropped meanwhile: every room is synced again.
				n.mu.RLock()
				for _, r := range n.rooms {
					n.syncRoomLocked(l, r)
				}
				n.mu.RUnlock()
				n.drainRoomFrames()
				select {
				case l.wake <- struct{}{}:
				default:
				}
			}
		}
	}
}
