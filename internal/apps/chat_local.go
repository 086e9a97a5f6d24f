package apps

import (
	"context"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/supersocket-go/supersocket"
	"github.com/supersocket-go/supersocket/cluster"
)

// localChat is the chat's rooms and names on one node, without a cluster: what
// examples/chat does. A name is taken until its session ends (Bind fails), and rooms
// are maps under one mutex, held only for map updates and TrySends, which never block.
type localChat struct {
	srv   *supersocket.Server[chatUser]
	mu    sync.Mutex
	names map[string]*chatSession
	rooms map[string]map[*chatSession]string // room → member → name
}

func newLocalChat() *localChat {
	return &localChat{names: map[string]*chatSession{}, rooms: map[string]map[*chatSession]string{}}
}

func (l *localChat) Bind(_ context.Context, s *chatSession, user string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, taken := l.names[user]; taken {
		return chatError("name " + user + " is taken")
	}
	l.names[user] = s
	return nil
}

func (l *localChat) Unbind(s *chatSession) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	for name, owner := range l.names {
		if owner == s {
			delete(l.names, name)
			return name
		}
	}
	return ""
}

func (l *localChat) JoinRoom(s *chatSession, room string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.rooms[room] == nil {
		l.rooms[room] = map[*chatSession]string{}
	}
	l.rooms[room][s] = s.Data().name
	return nil
}

func (l *localChat) LeaveRoom(s *chatSession, room string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	members := l.rooms[room]
	if _, in := members[s]; !in {
		return false
	}
	delete(members, s)
	if len(members) == 0 {
		delete(l.rooms, room)
	}
	return true
}

func (l *localChat) Publish(room string, msg []byte, except string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for s := range l.rooms[room] {
		if s.ID() != except {
			s.TrySend(msg)
		}
	}
	return nil
}

func (l *localChat) SendToUser(_ context.Context, user string, msg []byte) error {
	l.mu.Lock()
	s := l.names[user]
	l.mu.Unlock()
	if s == nil {
		return cluster.ErrNoUser
	}
	return s.TrySend(msg)
}

func (l *localChat) Members(_ context.Context, room string) ([]cluster.Member, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []cluster.Member
	for s, name := range l.rooms[room] {
		out = append(out, cluster.Member{SessionID: s.ID(), UserID: name})
	}
	slices.SortFunc(out, func(a, b cluster.Member) int { return strings.Compare(a.UserID, b.UserID) })
	return out, nil
}

func (l *localChat) Rooms(context.Context) ([]cluster.RoomInfo, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []cluster.RoomInfo
	for _, name := range slices.Sorted(maps.Keys(l.rooms)) {
		out = append(out, cluster.RoomInfo{Name: name, Members: len(l.rooms[name])})
	}
	return out, nil
}
