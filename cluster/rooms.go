package cluster

import (
	"slices"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/supersocket-go/supersocket"
)

// Rooms.
//
// A room is a subject, P.room.<token(name)>; a node subscribes to it while the room
// has members among its sessions, and only then. Publish hands the message to the
// local members directly and publishes it once on the room's subject, where every
// other node with members receives it once and hands it to its members: each member
// gets it once, and the publishes of one publisher (one goroutine) reach every member
// in the order they were made, since one connection carries them and each node handles
// a room's messages on one subscription. A frame carries its kind (a publish, or one
// of the membership frames of membership.go), the publishing node's ID and incarnation
// (a node skips its own, should its connection echo them), the session to leave out,
// and the message.

// room is a room with local members. Guarded by Node.mu.
type room[T any] struct {
	name    string
	subject string
	members []*member[T]
	sub     *nats.Subscription // nil while the node is not joined
	// remote is the room's members on other nodes as they announced them: session ID →
	// user ID (see membership.go).
	remote map[string]string
}

// JoinRoom puts s, a live session of this node, in room; joining a room twice does
// nothing. The node subscribes to the room when s is its first local member. It fails
// with ErrNotLocal for a session that is closed or not this node's, and ErrBadName for
// an empty or too long name. Without NATS the session joins locally, and the room's
// subscription is made when NATS is back. Safe from any goroutine.
func (n *Node[T]) JoinRoom(s *supersocket.Session[T], name string) error {
	if err := checkName("room", name); err != nil {
		return err
	}
	subscribed, err := n.joinRoom(s, name)
	n.drainRoomFrames()
	if subscribed != nil {
		// The NATS server learns of a subscription asynchronously: a round trip makes
		// sure it has, so that a message published on another node once JoinRoom has
		// returned reaches this member.
		if ferr := subscribed.nc.FlushTimeout(time.Second); ferr != nil {
			n.log.Debug("room subscription not confirmed", "room", name, "err", ferr)
		}
	}
	return err
}

// joinRoom is JoinRoom under the node's lock; it returns the link on which it made the
// room's subscription, if it made one.
func (n *Node[T]) joinRoom(s *supersocket.Session[T], name string) (*link, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	m := n.memberLocked(s)
	if m == nil {
		return nil, ErrNotLocal
	}
	if slices.Contains(m.rooms, name) {
		return nil, nil
	}
	var subscribed *link
	r := n.rooms[name]
	if r == nil {
		r = &room[T]{name: name, subject: n.roomSubject(name)}
		n.rooms[name] = r
		if l := n.link.Load(); l != nil {
			n.subscribeRoomLocked(l, r)
			subscribed = l
		}
	}
	r.members = append(r.members, m)
	m.rooms = append(m.rooms, name)
	if subscribed != nil {
		n.syncRoomLocked(subscribed, r) // the others' members, and this one
	} else {
		n.announceLocked(r, roomJoin, m)
	}
	return subscribed, nil
}

// LeaveRoom takes s out of room; it reports whether s was in it. The node unsubscribes
// from the room when its last local member leaves. Closing a session takes it out of
// every room. Safe from any goroutine.
func (n *Node[T]) LeaveRoom(s *supersocket.Session[T], name string) bool {
	defer n.drainRoomFrames()
	n.mu.Lock()
	defer n.mu.Unlock()
	m := n.memberLocked(s)
	if m == nil {
		return false
	}
	i := slices.Index(m.rooms, name)
	if i < 0 {
		return false
	}
	m.rooms = slices.Delete(m.rooms, i, i+1)
	n.leaveLocked(m, name)
	return true
}

// RoomsOf returns the rooms s, a session of this node, is in, in the order it joined
// them. Safe from any goroutine.
func (n *Node[T]) RoomsOf(s *supersocket.Session[T]) []string {
	n.mu.RLock()
	defer n.mu.RUnlock()
	if m := n.memberLocked(s); m != nil {
		return slices.Clone(m.rooms)
	}
	return nil
}

// leaveLocked takes m out of the room's members (not out of m.rooms) and drops the room
// when it has no local member left. The caller holds mu.
func (n *Node[T]) leaveLocked(m *member[T], name string) {
	r := n.rooms[name]
	if r == nil {
		return
	}
	if i := slices.Index(r.members, m); i >= 0 {
		r.members = slices.Delete(r.members, i, i+1)
		n.announceLocked(r, roomLeave, m)
	}
	if len(r.members) == 0 {
		delete(n.rooms, name)
		if r.sub != nil {
			r.sub.Unsubscribe()
			r.sub = nil
		}
	}
}

func (n *Node[T]) roomSubject(name string) string {
	return n.cfg.Prefix + ".room." + token(name)
}

// subscribeRoomLocked subscribes the node to a room. The caller holds mu.
func (n *Node[T]) subscribeRoomLocked(l *link, r *room[T]) {
	if r.sub != nil {
		return
	}
	sub, err := l.nc.Subscribe(r.subject, func(m *nats.Msg) { n.onRoom(r, m) })
	if err != nil {
		n.stats.errors.Add(1)
		n.log.Error("cannot subscribe to a room", "room", r.name, "err", err)
		return
	}
	sub.SetPendingLimits(-1, 256<<20)
	r.sub = sub
}

// Publish sends msg to every member of room on every node, except the session whose
// ID is except ("" for none), with TrySend: a member whose send queue is full misses
// it. Local members get it before Publish returns. It returns ErrDisconnected when
// this node has lost NATS (the local members still got it), and ErrBadName for an empty
// or too long name. Safe from any goroutine.
func (n *Node[T]) Publish(name string, msg []byte, except string) error {
	if err := checkName("room", name); err != nil {
		return err
	}
	n.stats.publishes.Add(1)
	n.mu.RLock()
	r := n.rooms[name]
	subject := ""
	if r != nil {
		subject = r.subject
		n.fanOutLocked(r, msg, except)
	}
	n.mu.RUnlock()
	l := n.link.Load()
	if l == nil || !l.connected() {
		return ErrDisconnected
	}
	if subject == "" {
		subject = n.roomSubject(name)
	}
	fb := n.roomFrame(roomPublish)
	b := appendString(*fb, except)
	b = append(b, msg...)
	*fb = b
	err := l.nc.Publish(subject, b)
	putFrame(fb)
	if err != nil {
		n.stats.errors.Add(1)
		return ErrDisconnected
	}
	n.stats.msgsOut.Add(1)
	return nil
}

// PublishLocal sends msg to this node's members of room only, except the session
// whose ID is except ("" for none), with TrySend, and returns how many it was queued
// for. For what one node must tell its own members, such as the members of a node that
// went down (Handlers.NodeDown): each node tells its own, once. Safe from any
// goroutine.
func (n *Node[T]) PublishLocal(name string, msg []byte, except string) int {
	n.mu.RLock()
	defer n.mu.RUnlock()
	if r := n.rooms[name]; r != nil {
		return n.fanOutLocked(r, msg, except)
	}
	return 0
}

// fanOutLocked queues msg on the room's local members but except. The caller holds mu
// (for reading).
func (n *Node[T]) fanOutLocked(r *room[T], msg []byte, except string) (queued int) {
	for _, m := range r.members {
		if (except == "" || m.s.ID() != except) && m.s.TrySend(msg) == nil {
			queued++
		}
	}
	return queued
}

// onRoom hands a room message from another node to the local members, or applies a
// membership frame.
func (n *Node[T]) onRoom(r *room[T], m *nats.Msg) {
	n.stats.msgsIn.Add(1)
	rd := reader{b: m.Data}
	kind := rd.byte()
	node := rd.bytes()
	inc := rd.bytes()
	if rd.bad {
		n.stats.errors.Add(1)
		return
	}
	if string(node) == n.cfg.NodeID && string(inc) == n.inc {
		return // our own, echoed by a connection without NoEcho
	}
	if kind != roomPublish {
		n.onRoomControl(r, kind, string(node), string(inc), &rd)
		return
	}
	except := rd.bytes()
	if rd.bad {
		n.stats.errors.Add(1)
		return
	}
	msg := rd.rest()
	n.mu.RLock()
	if n.rooms[r.name] == r {
		n.fanOutLocked(r, msg, string(except))
	}
	n.mu.RUnlock()
}
