package cluster

import (
	"runtime/debug"
	"strings"
	"sync"
)

// Rooms' members on other nodes, and nodes that go down.
//
// A node that has members in a room keeps the room's members on the other nodes, as
// they announce them on the room's subject:
//
//	join      a member joined the room, or its user changed (session ID, user)
//	leave     a member left the room, or its session closed (session ID)
//	sync      a node has just subscribed to the room (first member, or NATS is back):
//	          every node with members answers with a snapshot
//	snapshot  all of a node's members of the room, replacing what was known of them
//	          (in parts when large: the first part replaces, the others add)
//
// A node queues these frames while it holds its lock, in the order of the changes
// they announce, and publishes them in that order once it has let go of the lock
// (drainRoomFrames), before the call that made the change returns: each node applies
// another's changes in the order they were made, and before anything the application
// publishes in the room after the call (a chat's "* JOIN name").
//
// When another node is found gone without saying goodbye — no heartbeat for
// NodeTimeout (it crashed, or NATS cut it off), or a heartbeat from a new incarnation
// of it — the node drops that node's members from its rooms and gives them to
// Handlers.NodeDown, by room, so that the application can tell its own members
// (PublishLocal): nobody else will, as the gone node's sessions never closed here. A
// node that leaves says goodbye after its sessions have closed and their rooms were
// left: nothing is announced for it.

// Kinds of room frames (the first byte).
const (
	roomPublish  = 0
	roomJoin     = 1
	roomLeave    = 2
	roomSync     = 3
	roomSnapshot = 4
)

// maxSnapshotPart bounds the bytes of one snapshot frame.
const maxSnapshotPart = 32 << 10

// roomFrames are a link's room frames waiting to be published, in the order queued.
type roomFrames struct {
	mu   sync.Mutex // guards q
	q    []roomFrameMsg
	pub  sync.Mutex // held while publishing: one drain at a time keeps the order
	next []roomFrameMsg
}

type roomFrameMsg struct {
	subject string
	b       *[]byte
}

// add queues a frame; the caller holds the node's mu.
func (f *roomFrames) add(subject string, b *[]byte) {
	f.mu.Lock()
	f.q = append(f.q, roomFrameMsg{subject, b})
	f.mu.Unlock()
}

// drainRoomFrames publishes the room frames queued so far, in order. It returns once
// they have been handed to NATS, by this call or by one running at the same time. Not
// under mu.
func (n *Node[T]) drainRoomFrames() {
	l := n.link.Load()
	if l == nil {
		return
	}
	f := &l.frames
	f.pub.Lock()
	defer f.pub.Unlock()
	f.mu.Lock()
	f.next, f.q = f.q, f.next[:0]
	f.mu.Unlock()
	for i, m := range f.next {
		// Without NATS a frame is dropped: the rooms are synced when it is back.
		if l.connected() && l.nc.Publish(m.subject, *m.b) == nil {
			n.stats.msgsOut.Add(1)
		}
		putFrame(m.b)
		f.next[i] = roomFrameMsg{}
	}
}

// roomFrame starts a room frame of kind from this node.
func (n *Node[T]) roomFrame(kind byte) *[]byte {
	fb := getFrame()
	b := append(*fb, kind)
	b = appendString(b, n.cfg.NodeID)
	*fb = appendString(b, n.inc)
	return fb
}

// announceLocked queues a join (the member's user may have changed) or leave frame of
// m for room r. The caller holds mu.
func (n *Node[T]) announceLocked(r *room[T], kind byte, m *member[T]) {
	l := n.link.Load()
	if l == nil || r.sub == nil {
		return // joined: the room's sync and snapshot will tell
	}
	fb := n.roomFrame(kind)
	*fb = appendString(*fb, m.s.ID())
	if kind == roomJoin {
		*fb = appendString(*fb, m.user)
	}
	l.frames.add(r.subject, fb)
}

// announceUserLocked announces m's new user in each of its rooms. The caller holds mu.
func (n *Node[T]) announceUserLocked(m *member[T]) {
	for _, name := range m.rooms {
		if r := n.rooms[name]; r != nil {
			n.announceLocked(r, roomJoin, m)
		}
	}
}

// syncRoomLocked asks the other nodes with members in r for their snapshots, and
// sends this node's. The caller holds mu.
func (n *Node[T]) syncRoomLocked(l *link, r *room[T]) {
	if r.sub == nil {
		return
	}
	l.frames.add(r.subject, n.roomFrame(roomSync))
	n.snapshotLocked(l, r)
}

// snapshotLocked queues this node's members of r, in parts of about maxSnapshotPart
// bytes. The caller holds mu (for reading at least).
func (n *Node[T]) snapshotLocked(l *link, r *room[T]) {
	fb := n.roomFrame(roomSnapshot)
	*fb = append(*fb, 1) // the first part: it replaces
	for _, m := range r.members {
		if len(*fb) > maxSnapshotPart {
			l.frames.add(r.subject, fb)
			fb = n.roomFrame(roomSnapshot)
			*fb = append(*fb, 0)
		}
		*fb = appendString(*fb, m.s.ID())
		*fb = appendString(*fb, m.user)
	}
	l.frames.add(r.subject, fb)
}

// onRoomControl applies another node's membership frame to r; rd is past the frame's
// kind, node and incarnation.
func (n *Node[T]) onRoomControl(r *room[T], kind byte, node, inc string, rd *reader) {
	defer n.drainRoomFrames() // the answer to a sync
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.rooms[r.name] != r {
		return // left meanwhile
	}
	switch kind {
	case roomJoin:
		r.addRemote(rd, node, inc)
	case roomLeave:
		sid := rd.string()
		if !rd.bad {
			delete(r.remote, sid)
		}
	case roomSync:
		if l := n.link.Load(); l != nil && r.sub != nil {
			n.snapshotLocked(l, r)
		}
	case roomSnapshot:
		if rd.byte() == 1 {
			for sid := range r.remote {
				if sidOf(sid, node, inc) {
					delete(r.remote, sid)
				}
			}
		}
		for len(rd.b) > 0 && !rd.bad {
			r.addRemote(rd, node, inc)
		}
	default:
		rd.bad = true
	}
	if rd.bad {
		n.stats.errors.Add(1)
	}
}

// addRemote reads a member (session ID, user) from rd and records it, if its session
// is of that node's incarnation. The caller holds mu.
func (r *room[T]) addRemote(rd *reader, node, inc string) {
	sid := rd.string()
	user := rd.string()
	if rd.bad || !sidOf(sid, node, inc) {
		return
	}
	if r.remote == nil {
		r.remote = make(map[string]string)
	}
	r.remote[sid] = user
}

// sidOf reports whether sid is a session ID of that node's incarnation.
func sidOf(sid, node, inc string) bool {
	return len(sid) > len(node)+len(inc)+2 && strings.HasPrefix(sid, node) && sid[len(node)] == '-' &&
		strings.HasPrefix(sid[len(node)+1:], inc) && sid[len(node)+1+len(inc)] == '-'
}

// dropRemote removes the members of node's incarnation inc from every room and returns
// them by room. The caller holds mu.
func (n *Node[T]) dropRemoteLocked(node, inc string) map[string][]Member {
	gone := map[string][]Member{}
	for name, r := range n.rooms {
		for sid, user := range r.remote {
			if sidOf(sid, node, inc) {
				gone[name] = append(gone[name], Member{SessionID: sid, UserID: user})
				delete(r.remote, sid)
			}
		}
	}
	return gone
}

// nodeDown handles another node found gone without a goodbye: its members leave this
// node's view of the rooms, and Handlers.NodeDown is told.
func (n *Node[T]) nodeDown(info NodeInfo) {
	n.mu.Lock()
	gone := n.dropRemoteLocked(info.ID, info.Incarnation)
	n.mu.Unlock()
	n.stats.nodesDown.Add(1)
	n.log.Warn("node down: no heartbeat within NodeTimeout, or a new incarnation", "down", info.ID, "incarnation", info.Incarnation, "rooms", len(gone))
	h := n.h.NodeDown
	if h == nil {
		return
	}
	for _, ms := range gone {
		sortMembers(ms)
	}
	defer func() {
		if p := recover(); p != nil {
			n.log.Error("NodeDown handler panicked", "down", info.ID, "panic", p, "stack", string(debug.Stack()))
		}
	}()
	h(info, gone)
}
