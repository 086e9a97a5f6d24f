// Command gateway is SuperSocketLite's GateServer/GameServer pair: clients connect to a
// gate, which forwards their packets to back-end game servers over connections it opens
// itself (Server.Connect, SuperSocket's ActiveConnect) and routes each reply back to the
// client that asked.
//
// Packets are the echo example's 5-byte-header packets on both sides. A game server
// echoes each packet, its body prefixed with its name ("game-1:hello"), so replies show
// which back end answered. See gate.go for how replies are routed and what the gate does
// when a back end goes away (it reconnects, and answers errors meanwhile: reserved = 1).
//
//	go run ./examples/gateway                        # gate on 127.0.0.1:11021 and two game
//	                                                 # servers on 127.0.0.1:12021 and :12022
//	go run ./examples/gateway -client hello world    # send packets through the gate
//
//	go run ./examples/gateway -role game -addr 127.0.0.1:12021 -name game-1
//	go run ./examples/gateway -role gate -addr 127.0.0.1:11021 -backends 127.0.0.1:12021
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/supersocket-go/supersocket"
)

func main() {
	role := flag.String("role", "all", "all (a gate and a game server per back end), gate or game")
	addr := flag.String("addr", "", "address to listen on (default 127.0.0.1:11021 for the gate, 127.0.0.1:12021 for a game server; with -client: the gate's)")
	backends := flag.String("backends", "127.0.0.1:12021,127.0.0.1:12022", "the game servers, comma-separated (-role all or gate)")
	name := flag.String("name", "game-1", "with -role game: the name stamped on replies")
	asClient := flag.Bool("client", false, "send each argument as a packet through the gate and print the replies")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fail := func(code int, err error) {
		fmt.Fprintln(os.Stderr, "gateway:", err)
		os.Exit(code)
	}
	gateAddr, gameAddr := *addr, *addr
	if gateAddr == "" {
		gateAddr, gameAddr = "127.0.0.1:11021", "127.0.0.1:12021"
	}
	if *asClient {
		if err := runClient(ctx, gateAddr, flag.Args(), os.Stdout); err != nil {
			fail(1, err)
		}
		return
	}

	var stops []func(context.Context) error // in the order to run them
	startGame := func(addr, name string) {
		srv, err := newGameServer(addr, name)
		if err != nil {
			fail(2, err)
		}
		if err := srv.Start(); err != nil {
			fail(1, err)
		}
		stops = append(stops, srv.Shutdown)
	}
	switch *role {
	case "game":
		startGame(gameAddr, *name)
	case "gate", "all":
		list := strings.Split(*backends, ",")
		g, err := newGate(gateAddr, list)
		if err != nil {
			fail(2, err)
		}
		if *role == "all" {
			for i, a := range list {
				startGame(a, fmt.Sprintf("game-%d", i+1))
			}
		}
		if err := g.start(); err != nil {
			fail(1, err)
		}
		stops = append([]func(context.Context) error{g.shutdown}, stops...) // the gate first
	default:
		fail(2, fmt.Errorf("-role %q is not all, gate or game", *role))
	}

	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var errs []error
	for _, stop := range stops {
		errs = append(errs, stop(sctx))
	}
	if err := errors.Join(errs...); err != nil && !errors.Is(err, supersocket.ErrServerClosed) {
		fail(1, err)
	}
}
