// Command cluster shows package cluster's API: two nodes of one cluster in one process,
// with an embedded NATS server (cluster/natsd), and a line protocol to try them:
//
//	LOGIN name       bind the session to a user, cluster-wide (an older session of that
//	                 user, on either node, is told "* KICKED" and closed)
//	JOIN room        join a room
//	PUB room text    publish to the room's members on both nodes: * room name: text
//	TELL name text   send to a user on either node: * name: text
//	NODES            the live nodes and their session counts
//
// Node a listens on 127.0.0.1:2201, node b on 127.0.0.1:2202:
//
//	go run ./examples/cluster
//	nc 127.0.0.1 2201        # LOGIN ada, JOIN lobby
//	nc 127.0.0.1 2202        # LOGIN bob, JOIN lobby, PUB lobby hi, TELL ada hello
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"

	"github.com/supersocket-go/supersocket"
	"github.com/supersocket-go/supersocket/cluster"
	"github.com/supersocket-go/supersocket/cluster/natsd"
	"github.com/supersocket-go/supersocket/filter"
)

type user struct{ name string } // the session's own state, touched by its handlers only

// newNode makes node id of the cluster whose NATS is at url, serving addr.
func newNode(id, url, addr string) (*cluster.Node[user], error) {
	var node *cluster.Node[user]
	request := func(s *supersocket.Session[user], req supersocket.Request) {
		ctx := context.Background()
		reply := func(err error) {
			if err != nil {
				s.Send([]byte("ERR " + err.Error() + "\r\n"))
				return
			}
			s.Send([]byte("OK\r\n"))
		}
		arg, rest, _ := strings.Cut(string(req.Body), " ")
		switch strings.ToUpper(req.Key) {
		case "LOGIN":
			err := node.Bind(ctx, s, arg)
			if err == nil {
				s.Data().name = arg
			}
			reply(err)
		case "JOIN":
			reply(node.JoinRoom(s, arg))
		case "PUB":
			reply(node.Publish(arg, fmt.Appendf(nil, "* %s %s: %s\r\n", arg, s.Data().name, rest), s.ID()))
		case "TELL":
			reply(node.SendToUser(ctx, arg, fmt.Appendf(nil, "* %s: %s\r\n", s.Data().name, rest)))
		case "NODES":
			var b strings.Builder
			for _, n := range node.Nodes() {
				fmt.Fprintf(&b, " %s(%d)", n.ID, n.Sessions)
			}
			s.Send([]byte("OK" + b.String() + "\r\n"))
		default:
			s.Send([]byte("ERR unknown command\r\n"))
		}
	}
	var err error
	node, err = cluster.New(cluster.Config{NodeID: id, URL: url},
		supersocket.Config{Listeners: []supersocket.ListenerConfig{{Addr: addr}}, Filter: filter.CommandLine()},
		cluster.Handlers[user]{
			Handlers: supersocket.Handlers[user]{Request: request},
			Kicked:   func(s *supersocket.Session[user], _ string) { s.TrySend([]byte("* KICKED\r\n")) },
		})
	return node, err
}

func main() {
	natsAddr := flag.String("nats", "127.0.0.1:4333", "where the embedded NATS server listens")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ns, err := natsd.Start(natsd.Options{Addr: *natsAddr})
	if err != nil {
		log.Fatal(err)
	}
	defer ns.Shutdown()
	var wg sync.WaitGroup
	for _, n := range []struct{ id, addr string }{{"a", "127.0.0.1:2201"}, {"b", "127.0.0.1:2202"}} {
		node, err := newNode(n.id, ns.ClientURL(), n.addr)
		if err != nil {
			log.Fatal(err)
		}
		if err := node.Start(); err != nil {
			log.Fatal(err)
		}
		wg.Go(func() { node.Serve(ctx) })
	}
	wg.Wait()
}
