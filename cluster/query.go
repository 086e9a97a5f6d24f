package cluster

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strings"

	"github.com/nats-io/nats.go"
)

// Cluster-wide queries: Rooms and Members ask every live node (Nodes) on P.query with
// a reply inbox, and gather the answers until each has answered or QueryTimeout (or
// ctx) ends. This node answers itself directly.

// RoomInfo is a room and its members on every node.
type RoomInfo struct {
	Name    string
	Members int
}

// Member is a member of a room.
type Member struct {
	SessionID string
	UserID    string // "" when the session is not bound
}

type query struct {
	Op   string `json:"op"` // "rooms" or "members"
	Room string `json:"room,omitempty"`
}

type queryAnswer struct {
	Node    string         `json:"node"`
	Rooms   map[string]int `json:"rooms,omitempty"`
	Members []Member       `json:"members,omitempty"`
}

// Rooms returns every room with members on any live node, with its member count,
// sorted by name. When a live node did not answer within QueryTimeout, the result holds
// the others' answers and the error is an *IncompleteError. Safe from any goroutine.
func (n *Node[T]) Rooms(ctx context.Context) ([]RoomInfo, error) {
	answers, err := n.ask(ctx, query{Op: "rooms"})
	total := map[string]int{}
	for _, a := range answers {
		for name, c := range a.Rooms {
			total[name] += c
		}
	}
	out := make([]RoomInfo, 0, len(total))
	for _, name := range slices.Sorted(maps.Keys(total)) {
		out = append(out, RoomInfo{Name: name, Members: total[name]})
	}
	return out, err
}

// Members returns the members of room on every live node, sorted by user ID then
// session ID; the error is as Rooms's. Safe from any goroutine.
func (n *Node[T]) Members(ctx context.Context, room string) ([]Member, error) {
	if err := checkName("room", room); err != nil {
		return nil, err
	}
	answers, err := n.ask(ctx, query{Op: "members", Room: room})
	var out []Member
	for _, a := range answers {
		out = append(out, a.Members...)
	}
	sortMembers(out)
	return out, err
}

// sortMembers sorts members by user ID, then session ID.
func sortMembers(ms []Member) {
	slices.SortFunc(ms, func(a, b Member) int {
		if c := strings.Compare(a.UserID, b.UserID); c != 0 {
			return c
		}
		return strings.Compare(a.SessionID, b.SessionID)
	})
}

// answer is this node's answer to q.
func (n *Node[T]) answer(q query) queryAnswer {
	a := queryAnswer{Node: n.cfg.NodeID}
	n.mu.RLock()
	defer n.mu.RUnlock()
	switch q.Op {
	case "rooms":
		a.Rooms = make(map[string]int, len(n.rooms))
		for name, r := range n.rooms {
			a.Rooms[name] = len(r.members)
		}
	case "members":
		if r := n.rooms[q.Room]; r != nil {
			for _, m := range r.members {
				a.Members = append(a.Members, Member{SessionID: m.s.ID(), UserID: m.user})
			}
		}
	}
	return a
}

// ask gathers the answers of every live node to q.
func (n *Node[T]) ask(ctx context.Context, q query) ([]queryAnswer, error) {
	answers := []queryAnswer{n.answer(q)}
	l := n.link.Load()
	if l == nil || !l.connected() {
		return answers, nil
	}
	waiting := map[string]bool{}
	for _, info := range n.Nodes() {
		if !info.Self {
			waiting[info.ID] = true
		}
	}
	if len(waiting) == 0 {
		return answers, nil
	}
	inbox := l.nc.NewRespInbox()
	sub, err := l.nc.SubscribeSync(inbox)
	if err != nil {
		return answers, ErrDisconnected
	}
	defer sub.Unsubscribe()
	b, _ := json.Marshal(q)
	if err := l.nc.PublishRequest(n.cfg.Prefix+".query", inbox, b); err != nil {
		return answers, ErrDisconnected
	}
	n.stats.msgsOut.Add(1)
	ctx, cancel := context.WithTimeout(ctx, n.cfg.QueryTimeout)
	defer cancel()
	for len(waiting) > 0 {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			break
		}
		n.stats.msgsIn.Add(1)
		var a queryAnswer
		if json.Unmarshal(m.Data, &a) != nil {
			n.stats.errors.Add(1)
			continue
		}
		if waiting[a.Node] {
			delete(waiting, a.Node)
			answers = append(answers, a)
		}
	}
	if len(waiting) > 0 {
		return answers, &IncompleteError{Missing: slices.Sorted(maps.Keys(waiting))}
	}
	return answers, nil
}

// onQuery answers another node's query.
func (n *Node[T]) onQuery(l *link, m *nats.Msg) {
	n.stats.msgsIn.Add(1)
	var q query
	if json.Unmarshal(m.Data, &q) != nil || m.Reply == "" {
		n.stats.errors.Add(1)
		return
	}
	b, _ := json.Marshal(n.answer(q))
	if l.nc.Publish(m.Reply, b) == nil {
		n.stats.msgsOut.Add(1)
	}
}
