package cluster

import (
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// Nodes and heartbeats.
//
// Every node publishes a heartbeat on P.hb each HeartbeatInterval with its session,
// user and room counts. A node missing for NodeTimeout is left out of Nodes. A joining
// (or reconnecting) node says hello, and every node answers a hello with a heartbeat
// at once, so a new node knows the others within a round trip; a node that leaves says
// goodbye, and the others drop it at once. A node that crashes is dropped after
// NodeTimeout, and reported as down (Handlers.NodeDown, see membership.go), as is the
// previous incarnation of a node heard from with a new one; its sessions are
// unreachable from the moment NATS sees its connection close (no-responders), which for
// a killed process is at once.

// NodeInfo is what a node last said of itself.
type NodeInfo struct {
	ID          string    `json:"id"`
	Incarnation string    `json:"inc"` // this life of the node; changes when it restarts
	Sessions    int       `json:"sessions"`
	Users       int       `json:"users"` // users bound to its sessions
	Rooms       int       `json:"rooms"` // rooms with members among its sessions
	Started     time.Time `json:"started"`
	LastSeen    time.Time `json:"-"` // when its latest heartbeat arrived (now, for this node)
	Self        bool      `json:"-"` // this is the node that was asked
}

// heartbeat is the message on P.hb.
type heartbeat struct {
	NodeInfo
	Hello   bool `json:"hello,omitempty"`   // answer with your heartbeat
	Goodbye bool `json:"goodbye,omitempty"` // leaving: drop me now
}

// peerTable is what the other nodes last said.
type peerTable struct {
	mu sync.Mutex
	m  map[string]NodeInfo
}

func (p *peerTable) reset() {
	p.mu.Lock()
	p.m = make(map[string]NodeInfo)
	p.mu.Unlock()
}

// Nodes returns the live nodes, this one included, sorted by ID: those whose
// heartbeat came within NodeTimeout. Without NATS it holds this node alone. Safe from
// any goroutine.
func (n *Node[T]) Nodes() []NodeInfo {
	self := n.info()
	self.LastSeen, self.Self = time.Now(), true
	out := []NodeInfo{self}
	if l := n.link.Load(); l != nil && l.connected() {
		cutoff := time.Now().Add(-n.cfg.NodeTimeout)
		n.peers.mu.Lock()
		for _, info := range n.peers.m {
			if !info.LastSeen.Before(cutoff) {
				out = append(out, info)
			}
		}
		n.peers.mu.Unlock()
	}
	slices.SortFunc(out, func(a, b NodeInfo) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// isLive reports whether node has sent a heartbeat within NodeTimeout.
func (n *Node[T]) isLive(node string) bool {
	n.peers.mu.Lock()
	defer n.peers.mu.Unlock()
	info, ok := n.peers.m[node]
	return ok && time.Since(info.LastSeen) <= n.cfg.NodeTimeout
}

// info is what this node says of itself.
func (n *Node[T]) info() NodeInfo {
	n.mu.RLock()
	users, rooms := len(n.users), len(n.rooms)
	n.mu.RUnlock()
	st := n.Server.Stats()
	return NodeInfo{
		ID: n.cfg.NodeID, Incarnation: n.inc, Sessions: int(st.Sessions),
		Users: users, Rooms: rooms, Started: st.Started,
	}
}

func (n *Node[T]) publishHeartbeat(l *link, hb heartbeat) {
	b, _ := json.Marshal(hb)
	if err := l.nc.Publish(n.cfg.Prefix+".hb", b); err == nil {
		n.stats.msgsOut.Add(1)
	}
}

func (n *Node[T]) sayHello(l *link) {
	n.publishHeartbeat(l, heartbeat{NodeInfo: n.info(), Hello: true})
}

func (n *Node[T]) sayGoodbye(l *link) {
	if l.connected() {
		n.publishHeartbeat(l, heartbeat{NodeInfo: n.info(), Goodbye: true})
	}
}

// reapPeers drops the nodes not heard from for NodeTimeout and reports them down.
func (n *Node[T]) reapPeers() {
	cutoff := time.Now().Add(-n.cfg.NodeTimeout)
	var down []NodeInfo
	n.peers.mu.Lock()
	for id, info := range n.peers.m {
		if info.LastSeen.Before(cutoff) {
			delete(n.peers.m, id)
			down = append(down, info)
		}
	}
	n.peers.mu.Unlock()
	for _, info := range down {
		n.nodeDown(info)
	}
}

// peersSeenNow counts every known node as heard from now: after this node's own
// NATS outage, the others get NodeTimeout to be heard again before they are reported
// down.
func (n *Node[T]) peersSeenNow() {
	now := time.Now()
	n.peers.mu.Lock()
	for id, info := range n.peers.m {
		info.LastSeen = now
		n.peers.m[id] = info
	}
	n.peers.mu.Unlock()
}

// heartbeats publishes the node's heartbeat every HeartbeatInterval.
func (n *Node[T]) heartbeats(l *link) {
	defer l.loops.Done()
	t := time.NewTicker(n.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-l.quit:
			return
		case <-t.C:
			if l.connected() {
				n.publishHeartbeat(l, heartbeat{NodeInfo: n.info()})
				n.reapPeers()
				l.pending.failSilent(uint64((n.cfg.NodeTimeout+n.cfg.HeartbeatInterval-1)/n.cfg.HeartbeatInterval), n.isLive)
				l.pending.expire()
			}
		}
	}
}

// onHeartbeat records another node's heartbeat, and answers a hello.
func (n *Node[T]) onHeartbeat(l *link, m *nats.Msg) {
	n.stats.msgsIn.Add(1)
	var hb heartbeat
	if err := json.Unmarshal(m.Data, &hb); err != nil || checkNodeID(hb.ID) != nil {
		n.stats.errors.Add(1)
		return
	}
	if hb.ID == n.cfg.NodeID {
		if hb.Incarnation != n.inc {
			n.log.Error("another node uses this node's ID", "incarnation", hb.Incarnation)
		}
		return
	}
	n.peers.mu.Lock()
	if n.peers.m == nil {
		n.peers.m = make(map[string]NodeInfo)
	}
	prev, known := n.peers.m[hb.ID]
	if hb.Goodbye {
		delete(n.peers.m, hb.ID)
	} else {
		hb.LastSeen = time.Now()
		n.peers.m[hb.ID] = hb.NodeInfo
	}
	n.peers.mu.Unlock()
	switch {
	case known && prev.Incarnation != hb.Incarnation:
		n.nodeDown(prev) // it restarted: its previous life's sessions are gone
	case hb.Goodbye:
		// Its sessions closed and left their rooms before it said goodbye; what is
		// left of them here (frames it could not send) goes without an event.
		n.mu.Lock()
		n.dropRemoteLocked(hb.ID, hb.Incarnation)
		n.mu.Unlock()
	}
	if hb.Hello {
		n.publishHeartbeat(l, heartbeat{NodeInfo: n.info()})
	}
}
