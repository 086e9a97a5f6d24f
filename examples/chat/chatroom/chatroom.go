// Package chatroom is the chat example's rooms: the line protocol that examples/chat
// documents (LOGIN, ENTER, SAY, WHO, ROOMS, LEAVE, QUIT; replies start with OK or ERR,
// lines pushed by the server with "*"), as the handlers of a supersocket server. Every
// listener of that server shares the rooms, so line clients on TCP and browsers on a
// WebSocket listener (Text and Lines) can talk in one room (examples/webchat).
//
// Serve it with filter.CommandLine and MaxLineLength:
//
//	srv, err := supersocket.New(supersocket.Config{
//		Listeners:        []supersocket.ListenerConfig{{Addr: "127.0.0.1:2012"}},
//		Filter:           filter.CommandLine(),
//		MaxRequestLength: chatroom.MaxLineLength,
//	}, chatroom.NewLobby().Handlers())
package chatroom

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/supersocket-go/supersocket"
	"github.com/supersocket-go/supersocket/command"
)

// MaxLineLength is the longest request line, ending included: the server's
// Config.MaxRequestLength.
const MaxLineLength = 1024

// User is a session's own state (Session.Data). Only the session's handlers touch it, and
// they never run concurrently, so it needs no lock.
type User struct {
	name string // "" until LOGIN
	room *room  // nil while in no room
}

type session = supersocket.Session[User]

// Lobby holds the state sessions share: the names in use and the rooms. One mutex guards
// all of it; it is held only for map updates and TrySend calls, which never block, so a
// slow client cannot stall the others, and every member of a room sees the room's
// events in the same order.
type Lobby struct {
	mu    sync.Mutex
	names map[string]*session
	rooms map[string]*room
}

// room is one chat room. Its members map holds each member's name, so that WHO never
// reads another session's Data. Guarded by Lobby.mu.
type room struct {
	name    string
	members map[*session]string
}

// NewLobby returns an empty lobby: no names taken, no rooms. Each server has its own.
func NewLobby() *Lobby {
	return &Lobby{names: make(map[string]*session), rooms: make(map[string]*room)}
}

// userError is an error the client caused; OnError replies "ERR <text>".
type userError string

func (e userError) Error() string { return string(e) }

var (
	errLoginFirst = userError("login first")
	errEnterFirst = userError("enter a room first")
)

// reply sends "OK" and the words, as one line.
func reply(ctx *command.Context[User], words ...string) error {
	return ctx.Reply([]byte(strings.Join(append([]string{"OK"}, words...), " ") + "\r\n"))
}

// tellLocked queues a pushed line to every member of r but skip. TrySend never blocks: a
// member whose send queue is full misses the line rather than stalling the room. The
// caller holds l.mu.
func (r *room) tellLocked(skip *session, line string) {
	b := []byte("* " + line + "\r\n")
	for s := range r.members {
		if s != skip {
			s.TrySend(b)
		}
	}
}

// Handlers returns the server's handlers: the commands, and the Closed handler that takes
// a member whose connection ends out of its room.
func (l *Lobby) Handlers() supersocket.Handlers[User] {
	return supersocket.Handlers[User]{Request: l.router().Request, Closed: l.closed}
}

// router builds the command table.
func (l *Lobby) router() *command.Router[User] {
	r := command.New[User]()
	r.HandleFunc("LOGIN", l.login)
	r.HandleFunc("QUIT", quit)
	// The other commands need a name first: a middleware checks it for each of them.
	loggedIn := func(next command.Handler[User]) command.Handler[User] {
		return func(ctx *command.Context[User]) error {
			if ctx.Data().name == "" {
				return errLoginFirst
			}
			return next(ctx)
		}
	}
	r.HandleFunc("ENTER", l.enter, loggedIn)
	r.HandleFunc("LEAVE", l.leave, loggedIn)
	r.HandleFunc("SAY", l.say, loggedIn)
	r.HandleFunc("WHO", l.who, loggedIn)
	r.HandleFunc("ROOMS", l.listRooms, loggedIn)
	r.NotFound(func(ctx *command.Context[User]) error {
		return userError("unknown command: " + strings.ToUpper(ctx.Key()))
	})
	r.OnError(func(ctx *command.Context[User], err error) {
		var ue userError
		var pe *command.ParamError
		switch {
		case errors.As(err, &ue):
		case errors.As(err, &pe):
			err = userError(fmt.Sprintf("usage: %s …: %v", ctx.Name(), pe))
		default:
			ctx.Session().Server().Config().Logger.Warn("chat command failed", "key", ctx.Key(), "err", err)
		}
		ctx.Reply([]byte("ERR " + err.Error() + "\r\n"))
	})
	return r
}

// oneWord returns the request's only parameter, or a usage error.
func oneWord(ctx *command.Context[User], what string) (string, error) {
	p := ctx.Params()
	if len(p) != 1 {
		return "", userError(fmt.Sprintf("usage: %s %s", ctx.Name(), what))
	}
	return p[0], nil
}

func validName(s string) bool {
	if len(s) == 0 || len(s) > 20 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func (l *Lobby) login(ctx *command.Context[User]) error {
	u := ctx.Data()
	if u.name != "" {
		return userError("already logged in as " + u.name)
	}
	name, err := oneWord(ctx, "name")
	if err != nil {
		return err
	}
	if !validName(name) {
		return userError("a name is 1-20 letters, digits, '_' or '-'")
	}
	l.mu.Lock()
	_, taken := l.names[name]
	if !taken {
		l.names[name] = ctx.Session()
	}
	l.mu.Unlock()
	if taken {
		return userError("name " + name + " is taken")
	}
	u.name = name
	return reply(ctx, "welcome", name)
}

func (l *Lobby) enter(ctx *command.Context[User]) error {
	u := ctx.Data()
	if u.room != nil {
		return userError("already in room " + u.room.name + "; LEAVE first")
	}
	name, err := oneWord(ctx, "room")
	if err != nil {
		return err
	}
	if !validName(name) {
		return userError("a room name is 1-20 letters, digits, '_' or '-'")
	}
	l.mu.Lock()
	r := l.rooms[name]
	if r == nil {
		r = &room{name: name, members: make(map[*session]string)}
		l.rooms[name] = r
	}
	r.members[ctx.Session()] = u.name
	r.tellLocked(ctx.Session(), "JOIN "+u.name)
	l.mu.Unlock()
	u.room = r
	// The reply is sent outside the lock: Send may wait for room in our queue. So a JOIN
	// of someone entering right after us may reach us before this OK, which is why
	// pushed lines are marked with "*".
	return reply(ctx, "entered", name)
}

// leaveLocked takes s out of its room, tells the others, and drops the room once empty.
// The caller holds l.mu.
func (l *Lobby) leaveLocked(s *session, r *room, event string) {
	delete(r.members, s)
	r.tellLocked(nil, event)
	if len(r.members) == 0 {
		delete(l.rooms, r.name)
	}
}

func (l *Lobby) leave(ctx *command.Context[User]) error {
	u := ctx.Data()
	if u.room == nil {
		return errEnterFirst
	}
	r := u.room
	l.mu.Lock()
	l.leaveLocked(ctx.Session(), r, "LEAVE "+u.name)
	l.mu.Unlock()
	u.room = nil
	return reply(ctx, "left", r.name)
}

func (l *Lobby) say(ctx *command.Context[User]) error {
	u := ctx.Data()
	if u.room == nil {
		return errEnterFirst
	}
	text := strings.TrimSpace(string(ctx.Body()))
	if text == "" {
		return userError("usage: SAY text")
	}
	l.mu.Lock()
	u.room.tellLocked(ctx.Session(), "MSG "+u.name+" "+text)
	l.mu.Unlock()
	return reply(ctx)
}

func (l *Lobby) who(ctx *command.Context[User]) error {
	u := ctx.Data()
	if u.room == nil {
		return errEnterFirst
	}
	l.mu.Lock()
	names := slices.Sorted(maps.Values(u.room.members))
	l.mu.Unlock()
	return reply(ctx, names...)
}

func (l *Lobby) listRooms(ctx *command.Context[User]) error {
	l.mu.Lock()
	var list []string
	for _, name := range slices.Sorted(maps.Keys(l.rooms)) {
		list = append(list, fmt.Sprintf("%s(%d)", name, len(l.rooms[name].members)))
	}
	l.mu.Unlock()
	return reply(ctx, list...)
}

func quit(ctx *command.Context[User]) error {
	err := reply(ctx, "bye")
	// The reply is queued before Close, so it is flushed before the socket closes; the
	// Closed handler then does the leaving.
	ctx.Session().Close(supersocket.CloseServerClosing)
	return err
}

// closed runs once per session, after its last request, however it ended: the member
// leaves its room and frees its name.
func (l *Lobby) closed(s *session, why supersocket.CloseReason) {
	u := s.Data()
	if u.name == "" {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if u.room != nil {
		l.leaveLocked(s, u.room, "QUIT "+u.name+" "+why.String())
	}
	delete(l.names, u.name)
}
