package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/supersocket-go/supersocket/client"
)

// dial opens a UDP client socket towards addr; each Send is one datagram, each reply is
// decoded with the server's own datagram filter.
func dial(ctx context.Context, addr string) (*client.Conn, error) {
	return client.Dial(ctx, client.Config{Network: "udp", Addr: addr, Filter: datagrams(), MaxRequestLength: maxPacket})
}

// call sends one datagram and waits for the reply. Replies are matched in order, which
// is enough on loopback; over a lossy network a protocol would carry request ids.
func call(ctx context.Context, c *client.Conn, key, id, data string) (client.Message, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return c.Request(ctx, []byte(key+id+data))
}

// runClient ECHOes each text under session id, then asks for the session's STAT. Empty
// texts are skipped: a datagram without data is ignored by the server.
func runClient(ctx context.Context, addr, id string, texts []string, out io.Writer) error {
	c, err := dial(ctx, addr)
	if err != nil {
		return err
	}
	defer c.Close()
	print := func(m client.Message) { fmt.Fprintf(out, "%s %s\n", m.Header[:keySize], m.Body) }
	for _, t := range texts {
		if t == "" {
			continue
		}
		m, err := call(ctx, c, "ECHO", id, t)
		if err != nil {
			return err
		}
		print(m)
	}
	m, err := call(ctx, c, "STAT", id, "?")
	if err != nil {
		return err
	}
	print(m)
	return nil
}
