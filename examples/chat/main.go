// Command chat is a chat-room server over a line protocol, so telnet or nc can play:
// SuperSocketLite's ChatServer (login, rooms, room broadcast), with text lines instead of
// MessagePack packets, routed by the command package.
//
// A line ends at "\n" ("\r\n" works too); the key is case-insensitive.
//
//	LOGIN name   → OK welcome name          a name is 1-20 letters, digits, '_' or '-'
//	ENTER room   → OK entered room          the others in room get: * JOIN name
//	SAY text     → OK                       the others in the room get: * MSG name text
//	WHO          → OK name name …           the members of your room, sorted
//	ROOMS        → OK room(n) room(n) …     every room and its member count
//	LEAVE        → OK left room             the others get: * LEAVE name
//	QUIT         → OK bye                   then the server closes the connection
//
// Replies start with OK or ERR; lines the server pushes on its own start with "*". Doing
// things out of order is an error that keeps the session open (ERR login first, ERR
// enter a room first, ERR already in room …), and so is a name already taken. When a
// member's connection ends, however it ends, it leaves its room and the others get
// "* QUIT name <close reason>".
//
//	go run ./examples/chat                                  # serve on 127.0.0.1:2012
//	nc 127.0.0.1 2012                                       # then: LOGIN ada, ENTER lobby…
//	go run ./examples/chat -client -name ada -room lobby    # each stdin line is said
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/supersocket-go/supersocket"
	"github.com/supersocket-go/supersocket/examples/chat/chatroom"
	"github.com/supersocket-go/supersocket/filter"
)

// newServer returns the chat server, not started, listening on addr. Each server has its
// own rooms; the commands and the rooms are package chatroom's, which examples/webchat
// serves to browsers too.
func newServer(addr string) (*supersocket.Server[chatroom.User], error) {
	return supersocket.New(supersocket.Config{
		Name:             "chat",
		Listeners:        []supersocket.ListenerConfig{{Addr: addr}},
		Filter:           filter.CommandLine(),
		MaxRequestLength: chatroom.MaxLineLength,
	}, chatroom.NewLobby().Handlers())
}

func main() {
	addr := flag.String("addr", "127.0.0.1:2012", "address to listen on (with -client: the server's)")
	asClient := flag.Bool("client", false, "join -room as -name and say each line read from stdin")
	name := flag.String("name", "guest", "with -client: the name to log in with")
	room := flag.String("room", "lobby", "with -client: the room to enter")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *asClient {
		if err := runClient(ctx, *addr, *name, *room, os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "chat:", err)
			os.Exit(1)
		}
		return
	}
	srv, err := newServer(*addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "chat:", err)
		os.Exit(2)
	}
	if err := srv.Serve(ctx); err != nil && !errors.Is(err, supersocket.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, "chat:", err)
		os.Exit(1)
	}
}
