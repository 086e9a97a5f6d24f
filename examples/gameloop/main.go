// Command gameloop is a server-driven game loop, in the manner of SuperSocketLite's
// GameServer_MoDedicated: each room runs its own loop that ticks at a fixed rate, applies
// the inputs its players sent since the last tick, and pushes the new state to every
// member. Clients only send inputs; the server decides when state moves.
//
// A line protocol, for nc or telnet:
//
//	JOIN room name  → OK joined room         then, every tick: TICK n name=x,y name=x,y …
//	MOVE dx dy      → OK                     applied at the next tick
//	LEAVE           → OK left room           no tick follows the OK
//	PING            → PONG
//	QUIT            → BYE, then the connection closes (and the player leaves)
//
// TICK lines are pushed: n counts the room's ticks from 1 and the players are sorted by
// name. A room's loop starts with its first player and stops when the last one leaves,
// or when the server stops: Shutdown closes every session, each Closed handler takes its
// player out, and game.shutdown then waits for every loop to return.
//
//	go run ./examples/gameloop                                  # serve on 127.0.0.1:7000
//	nc 127.0.0.1 7000                                           # then: JOIN arena ada
//	go run ./examples/gameloop -client -room arena -name ada    # print 20 ticks, leave
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/supersocket-go/supersocket"
	"github.com/supersocket-go/supersocket/filter"
)

// game is the server and the world its rooms live in; they stop together.
type game struct {
	srv   *supersocket.Server[player]
	world *world
}

// newGame returns the game server, not started, listening on addr; rooms tick every tick.
func newGame(addr string, tick time.Duration) (*game, error) {
	w := newWorld(tick)
	srv, err := supersocket.New(supersocket.Config{
		Name:             "gameloop",
		Listeners:        []supersocket.ListenerConfig{{Addr: addr}},
		Filter:           filter.CommandLine(),
		MaxRequestLength: 256,
	}, supersocket.Handlers[player]{
		Request: w.request,
		Closed:  func(s *session, _ supersocket.CloseReason) { w.leave(s) },
	})
	if err != nil {
		return nil, err
	}
	return &game{srv: srv, world: w}, nil
}

// shutdown stops the server gracefully, then every room loop, and returns once all of
// them have ended.
func (g *game) shutdown(ctx context.Context) error {
	err := g.srv.Shutdown(ctx)
	g.world.close()
	return err
}

func main() {
	addr := flag.String("addr", "127.0.0.1:7000", "address to listen on (with -client: the server's)")
	tick := flag.Duration("tick", 50*time.Millisecond, "how often each room ticks")
	asClient := flag.Bool("client", false, "join -room as -name, print -ticks ticks, then leave")
	room := flag.String("room", "arena", "with -client: the room to join")
	name := flag.String("name", "player", "with -client: the player's name")
	ticks := flag.Int("ticks", 20, "with -client: how many ticks to print")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *asClient {
		if err := runClient(ctx, *addr, *room, *name, *ticks, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "gameloop:", err)
			os.Exit(1)
		}
		return
	}
	if *tick <= 0 {
		fmt.Fprintln(os.Stderr, "gameloop: -tick must be positive")
		os.Exit(2)
	}
	g, err := newGame(*addr, *tick)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gameloop:", err)
		os.Exit(2)
	}
	if err := g.srv.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "gameloop:", err)
		os.Exit(1)
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.shutdown(sctx); err != nil && !errors.Is(err, supersocket.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, "gameloop:", err)
		os.Exit(1)
	}
}
