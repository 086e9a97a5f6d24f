package apps

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/supersocket-go/supersocket"
	"github.com/supersocket-go/supersocket/cluster"
	"github.com/supersocket-go/supersocket/command"
	"github.com/supersocket-go/supersocket/filter"
)

// Chat is examples/chat's line protocol (LOGIN, ENTER, SAY, WHO, ROOMS, LEAVE, QUIT)
// plus TELL, on one node: a name is taken until its session ends. ChatCluster is the
// same protocol across the nodes of a cluster.
//
//	LOGIN name      → OK welcome name       single node: ERR name X is taken; cluster: the older session of
//	                                         that name, on any node, gets "* KICKED" and is closed
//	ENTER room      → OK entered room       the others in the room get: * JOIN name
//	SAY text        → OK                    the others in the room, on every node, get: * MSG name text
//	TELL name text  → OK                    that user, on any node, gets: * TELL from text
//	                  ERR no such user: name
//	WHO             → OK name name …        the members of your room (every node), sorted
//	ROOMS           → OK room(n) …          every room (every node) and its member count
//	LEAVE           → OK left room          the others get: * LEAVE name
//	QUIT            → OK bye                then the connection closes
//
// A member whose connection ends leaves its room and the others get
// "* QUIT name <close reason>" ("Kicked" for a session that lost its name to a newer
// login). In a cluster, the members of a node that goes down without closing them (it
// crashed, or lost NATS for the node timeout) are announced by every other node to
// its members of their rooms: "* QUIT name NodeDown". Replies start with OK or ERR;
// lines pushed by the server start with "*".
func Chat(cfg supersocket.Config) (Server, error) {
	c := &chat{net: newLocalChat()}
	cfg.Filter = filter.CommandLine()
	srv, err := supersocket.New(cfg, supersocket.Handlers[chatUser]{
		Request: c.router().Request,
		Closed:  c.closed,
	})
	c.net.(*localChat).srv = srv
	return srv, err
}

// ChatCluster is Chat on a node of a cluster (see Chat).
func ChatCluster(cfg supersocket.Config, cc cluster.Config) (Server, error) {
	c := &chat{clustered: true}
	cfg.Filter = filter.CommandLine()
	var node *cluster.Node[chatUser]
	node, err := cluster.New(cc, cfg, cluster.Handlers[chatUser]{
		Handlers: supersocket.Handlers[chatUser]{Request: c.router().Request, Closed: c.closed},
		Kicked:   c.kicked,
		NodeDown: func(_ cluster.NodeInfo, gone map[string][]cluster.Member) {
			// Each node tells its own members: the gone node's sessions never closed,
			// so their Closed handlers, which say QUIT, never ran.
			for room, members := range gone {
				for _, m := range members {
					if m.UserID != "" {
						node.PublishLocal(room, push("QUIT "+m.UserID+" NodeDown"), "")
					}
				}
			}
		},
	})
	if err != nil {
		return nil, err
	}
	c.net = node
	return node, nil
}

// chatUser is a session's state. The handlers own name and room; kicked is set by the
// cluster's Kicked hook, on another goroutine.
type chatUser struct {
	name   string
	room   string
	kicked atomic.Bool
}

type chatSession = supersocket.Session[chatUser]
type chatCtx = command.Context[chatUser]

// chatNet is what the chat needs of the nodes: a *cluster.Node, or localChat on one.
type chatNet interface {
	Bind(ctx context.Context, s *chatSession, user string) error
	Unbind(s *chatSession) string
	JoinRoom(s *chatSession, room string) error
	LeaveRoom(s *chatSession, room string) bool
	Publish(room string, msg []byte, except string) error
	SendToUser(ctx context.Context, user string, msg []byte) error
	Members(ctx context.Context, room string) ([]cluster.Member, error)
	Rooms(ctx context.Context) ([]cluster.RoomInfo, error)
}

type chat struct {
	net       chatNet
	clustered bool
}

// chatError is an error the client caused; OnError replies "ERR <text>".
type chatError string

func (e chatError) Error() string { return string(e) }

const chatTimeout = 2 * time.Second

func chatReply(ctx *chatCtx, words ...string) error {
	return ctx.Reply([]byte(strings.Join(append([]string{"OK"}, words...), " ") + "\r\n"))
}

func push(line string) []byte { return []byte("* " + line + "\r\n") }

func (c *chat) router() *command.Router[chatUser] {
	r := command.New[chatUser]()
	r.HandleFunc("LOGIN", c.login)
	r.HandleFunc("QUIT", func(ctx *chatCtx) error {
		err := chatReply(ctx, "bye")
		ctx.Session().Close(supersocket.CloseServerClosing)
		return err
	})
	loggedIn := func(next command.Handler[chatUser]) command.Handler[chatUser] {
		return func(ctx *chatCtx) error {
			if ctx.Data().name == "" {
				return chatError("login first")
			}
			return next(ctx)
		}
	}
	r.HandleFunc("ENTER", c.enter, loggedIn)
	r.HandleFunc("LEAVE", c.leave, loggedIn)
	r.HandleFunc("SAY", c.say, loggedIn)
	r.HandleFunc("TELL", c.tell, loggedIn)
	r.HandleFunc("WHO", c.who, loggedIn)
	r.HandleFunc("ROOMS", c.rooms, loggedIn)
	r.NotFound(func(ctx *chatCtx) error {
		return chatError("unknown command: " + strings.ToUpper(ctx.Key()))
	})
	r.OnError(func(ctx *chatCtx, err error) {
		var ce chatError
		switch {
		case errors.As(err, &ce):
		case errors.Is(err, cluster.ErrDisconnected), errors.Is(err, cluster.ErrTimeout):
			err = chatError("cluster unavailable, try again")
		default:
			ctx.Session().Server().Config().Logger.Warn("chat command failed", "key", ctx.Key(), "err", err)
		}
		ctx.Reply([]byte("ERR " + err.Error() + "\r\n"))
	})
	return r
}

func chatWord(ctx *chatCtx, what string) (string, error) {
	p := ctx.Params()
	if len(p) != 1 {
		return "", chatError(fmt.Sprintf("usage: %s %s", ctx.Name(), what))
	}
	if !chatName(p[0]) {
		return "", chatError(fmt.Sprintf("a %s is 1-20 letters, digits, '_' or '-'", what))
	}
	return p[0], nil
}

func chatName(s string) bool {
	if len(s) == 0 || len(s) > 20 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

func (c *chat) login(ctx *chatCtx) error {
	u := ctx.Data()
	if u.name != "" {
		return chatError("already logged in as " + u.name)
	}
	name, err := chatWord(ctx, "name")
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(context.Background(), chatTimeout)
	defer cancel()
	if err := c.net.Bind(cctx, ctx.Session(), name); err != nil {
		return err
	}
	u.name = name
	return chatReply(ctx, "welcome", name)
}

func (c *chat) enter(ctx *chatCtx) error {
	u := ctx.Data()
	if u.room != "" {
		return chatError("already in room " + u.room + "; LEAVE first")
	}
	room, err := chatWord(ctx, "room")
	if err != nil {
		return err
	}
	if err := c.net.JoinRoom(ctx.Session(), room); err != nil {
		return err
	}
	u.room = room
	c.net.Publish(room, push("JOIN "+u.name), ctx.Session().ID())
	return chatReply(ctx, "entered", room)
}

func (c *chat) leave(ctx *chatCtx) error {
	u := ctx.Data()
	if u.room == "" {
		return chatError("enter a room first")
	}
	room := u.room
	c.net.LeaveRoom(ctx.Session(), room)
	u.room = ""
	c.net.Publish(room, push("LEAVE "+u.name), "")
	return chatReply(ctx, "left", room)
}

func (c *chat) say(ctx *chatCtx) error {
	u := ctx.Data()
	if u.room == "" {
		return chatError("enter a room first")
	}
	text := strings.TrimSpace(string(ctx.Body()))
	if text == "" {
		return chatError("usage: SAY text")
	}
	// Without NATS the local members still get it: the sender is not told otherwise.
	c.net.Publish(u.room, push("MSG "+u.name+" "+text), ctx.Session().ID())
	return chatReply(ctx)
}

func (c *chat) tell(ctx *chatCtx) error {
	to, text, _ := strings.Cut(strings.TrimSpace(string(ctx.Body())), " ")
	text = strings.TrimSpace(text)
	if to == "" || text == "" {
		return chatError("usage: TELL name text")
	}
	cctx, cancel := context.WithTimeout(context.Background(), chatTimeout)
	defer cancel()
	err := c.net.SendToUser(cctx, to, push("TELL "+ctx.Data().name+" "+text))
	if errors.Is(err, cluster.ErrNoUser) || errors.Is(err, cluster.ErrBadName) {
		return chatError("no such user: " + to)
	}
	if err != nil {
		return err
	}
	return chatReply(ctx)
}

func (c *chat) who(ctx *chatCtx) error {
	u := ctx.Data()
	if u.room == "" {
		return chatError("enter a room first")
	}
	cctx, cancel := context.WithTimeout(context.Background(), chatTimeout)
	defer cancel()
	members, err := c.net.Members(cctx, u.room)
	if err != nil && !errors.Is(err, cluster.ErrIncomplete) {
		return err
	}
	names := make([]string, 0, len(members))
	for _, m := range members {
		if m.UserID != "" {
			names = append(names, m.UserID)
		}
	}
	return chatReply(ctx, names...) // Members sorts by user ID
}

func (c *chat) rooms(ctx *chatCtx) error {
	cctx, cancel := context.WithTimeout(context.Background(), chatTimeout)
	defer cancel()
	rooms, err := c.net.Rooms(cctx)
	if err != nil && !errors.Is(err, cluster.ErrIncomplete) {
		return err
	}
	list := make([]string, 0, len(rooms))
	for _, r := range rooms {
		list = append(list, fmt.Sprintf("%s(%d)", r.Name, r.Members))
	}
	return chatReply(ctx, list...)
}

// kicked tells a session it lost its name to a newer login, before the node closes it.
func (c *chat) kicked(s *chatSession, _ string) {
	s.Data().kicked.Store(true)
	s.TrySend(push("KICKED"))
}

// closed runs once per session, however it ended: the member leaves its room (the
// others are told why) and frees its name.
func (c *chat) closed(s *chatSession, why supersocket.CloseReason) {
	u := s.Data()
	if u.name == "" {
		return
	}
	reason := why.String()
	if u.kicked.Load() {
		reason = "Kicked"
	}
	if u.room != "" {
		c.net.LeaveRoom(s, u.room)
		c.net.Publish(u.room, push("QUIT "+u.name+" "+reason), "")
	}
	c.net.Unbind(s)
}
