package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/supersocket-go/supersocket"
)

// Node is a supersocket server that is one node of a cluster: the embedded
// *supersocket.Server serves its own sessions as always, and the node's methods reach
// sessions, users and rooms on every node.
//
// Start, Serve, Shutdown and Stop are the server's, with the cluster around them: Start
// joins the cluster (connects to NATS, subscribes, starts heartbeats) before the
// server starts listening, and fails with a clear error, nothing started, when NATS
// cannot be reached; Shutdown and Stop leave it after the server has stopped (the
// sessions' users are unbound and their rooms left on the way). Call these, not the
// embedded server's own.
//
// Every method is safe to call from any goroutine.
type Node[T any] struct {
	*supersocket.Server[T]

	cfg Config
	inc string // this life of the node (see names.go)
	h   Handlers[T]
	log *slog.Logger

	life sync.Mutex           // serialises join and leave
	link atomic.Pointer[link] // the NATS side while joined; nil otherwise

	// mu guards the node's view of its own sessions: their users and rooms.
	mu      sync.RWMutex
	members map[string]*member[T] // every live session, by ID
	users   map[string]*member[T] // bound sessions, by user ID
	rooms   map[string]*room[T]   // rooms with local members, by name

	handlersMu sync.RWMutex
	handlers   map[string]RequestHandler

	peers peerTable
	stats counters
}

// member is the node's record of one live session: its user and its rooms.
type member[T any] struct {
	s     *supersocket.Session[T]
	user  string   // "" while unbound
	rev   uint64   // the KV revision of the user's binding
	rooms []string // the rooms it is in
	// kicked: a newer Bind took the session's user; a Bind of it still under way must
	// not record the binding it had won before.
	kicked bool
}

// New makes a node and its server, not started. cfg configures the cluster, srvCfg
// and h the server as supersocket.New does; the node sets srvCfg.SessionIDPrefix
// (leave it empty) and wraps h's Connected and Closed. UDP sessions keyed by
// UDPSessionKey are refused: their IDs are the clients', and cannot name the node.
func New[T any](cfg Config, srvCfg supersocket.Config, h Handlers[T]) (*Node[T], error) {
	log := srvCfg.Logger
	if log == nil {
		log = slog.Default()
	}
	c, err := cfg.withDefaults(log)
	if err != nil {
		return nil, err
	}
	if srvCfg.SessionIDPrefix != "" {
		return nil, fmt.Errorf("cluster: server config: SessionIDPrefix: set by the node; leave it empty")
	}
	if srvCfg.UDPSessionKey != nil {
		return nil, fmt.Errorf("cluster: server config: UDPSessionKey: the clients' session IDs cannot name the node")
	}
	n := &Node[T]{
		cfg:      c,
		inc:      incarnation(time.Now()),
		h:        h,
		log:      c.Logger,
		members:  make(map[string]*member[T]),
		users:    make(map[string]*member[T]),
		rooms:    make(map[string]*room[T]),
		handlers: make(map[string]RequestHandler),
	}
	srvCfg.SessionIDPrefix = c.NodeID + "-" + n.inc + "-"
	wrapped := h.Handlers
	wrapped.Connected = n.connected
	wrapped.Closed = n.closed
	if n.Server, err = supersocket.New(srvCfg, wrapped); err != nil {
		return nil, err
	}
	return n, nil
}

// ID returns the node's ID.
func (n *Node[T]) ID() string { return n.cfg.NodeID }

// ClusterConfig returns the node's cluster configuration with its defaults filled in.
func (n *Node[T]) ClusterConfig() Config { return n.cfg }

// Start joins the cluster, then starts the server. If NATS cannot be reached, or has no
// JetStream, it returns an error matching ErrNATSUnavailable and starts nothing; if
// the server cannot start, the node leaves the cluster again.
func (n *Node[T]) Start() error {
	joined, err := n.join()
	if err != nil {
		return err
	}
	if err := n.Server.Start(); err != nil {
		if joined {
			n.leave()
		}
		return err
	}
	return nil
}

// Serve starts the node if it is not running, then blocks until its server stops,
// shutting it down gracefully when ctx ends, and leaves the cluster. It returns
// supersocket.ErrServerClosed after a clean stop.
func (n *Node[T]) Serve(ctx context.Context) error {
	if err := n.Start(); err != nil && !errors.Is(err, supersocket.ErrServerRunning) {
		return err
	}
	err := n.Server.Serve(ctx)
	n.leave()
	return err
}

// Shutdown shuts the server down gracefully (see supersocket.Server.Shutdown), then
// leaves the cluster: the closing sessions' users are unbound and their rooms left
// while NATS is still there.
func (n *Node[T]) Shutdown(ctx context.Context) error {
	err := n.Server.Shutdown(ctx)
	n.leave()
	return err
}

// Drain drains the server (see supersocket.Server.Drain: each session is closed once
// nothing is pending for it, what is left when ctx ends is closed), then leaves the
// cluster, as Shutdown does.
func (n *Node[T]) Drain(ctx context.Context) error {
	err := n.Server.Drain(ctx)
	n.leave()
	return err
}

// Stop stops the server at once (see supersocket.Server.Stop), then leaves the
// cluster.
func (n *Node[T]) Stop() error {
	err := n.Server.Stop()
	n.leave()
	return err
}

// connected wraps the application's Connected: the node records the session first.
func (n *Node[T]) connected(s *supersocket.Session[T]) {
	n.mu.Lock()
	n.members[s.ID()] = &member[T]{s: s}
	n.mu.Unlock()
	if h := n.h.Connected; h != nil {
		h(s)
	}
}

// closed wraps the application's Closed, which runs first and still sees the session's
// user and rooms; then the node unbinds the user and leaves the rooms, on every node.
func (n *Node[T]) closed(s *supersocket.Session[T], reason supersocket.CloseReason) {
	defer n.forget(s)
	if h := n.h.Closed; h != nil {
		h(s, reason)
	}
}

// forget drops a closed session: out of its rooms (a room left without local members is
// unsubscribed) and its user unbound.
func (n *Node[T]) forget(s *supersocket.Session[T]) {
	n.mu.Lock()
	m := n.members[s.ID()]
	if m == nil {
		n.mu.Unlock()
		return
	}
	delete(n.members, s.ID())
	for _, name := range m.rooms {
		n.leaveLocked(m, name)
	}
	user, rev := m.user, m.rev
	if user != "" && n.users[user] == m {
		delete(n.users, user)
	}
	n.mu.Unlock()
	n.drainRoomFrames()
	if user != "" {
		n.unbindKV(user, rev)
	}
}

// member returns the node's record of s, or nil if s is not a live session of it.
// The caller holds mu.
func (n *Node[T]) memberLocked(s *supersocket.Session[T]) *member[T] {
	if s == nil {
		return nil
	}
	m := n.members[s.ID()]
	if m == nil || m.s != s {
		return nil
	}
	return m
}
