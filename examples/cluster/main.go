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
	"time"

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

// demo is the example's cluster: an embedded NATS server and its nodes.
type demo struct {
	nats  *natsd.Server
	nodes []*cluster.Node[user]
}

// start starts an embedded NATS server on natsAddr, then one node per address in addrs,
// named a, b, …
func start(natsAddr string, addrs ...string) (*demo, error) {
	ns, err := natsd.Start(natsd.Options{Addr: natsAddr})
	if err != nil {
		return nil, err
	}
	d := &demo{nats: ns}
	for i, addr := range addrs {
		node, err := newNode(string(rune('a'+i)), ns.ClientURL(), addr)
		if err == nil {
			err = node.Start()
		}
		if err != nil {
			d.shutdown(context.Background())
			return nil, err
		}
		d.nodes = append(d.nodes, node)
	}
	return d, nil
}

// shutdown shuts the nodes down gracefully, then the NATS server.
func (d *demo) shutdown(ctx context.Context) {
	var wg sync.WaitGroup
	for _, node := range d.nodes {
		wg.Go(func() { node.Shutdown(ctx) })
	}
	wg.Wait()
	d.nats.Shutdown()
}

func main() {
	natsAddr := flag.String("nats", "127.0.0.1:4333", "where the embedded NATS server listens")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	d, err := start(*natsAddr, "127.0.0.1:2201", "127.0.0.1:2202")
	if err != nil {
		log.Fatal(err)
	}
	for _, node := range d.nodes {
		log.Printf("node %s listening on %v", node.ID(), node.Addrs()[0])
	}
	<-ctx.Done()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d.shutdown(shutdownCtx)
}
