package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"time"

	"github.com/supersocket-go/supersocket/client"
)

// dial connects a client that frames replies with the server's own filter.
func dial(ctx context.Context, addr string) (*client.Conn, error) {
	return client.Dial(ctx, client.Config{Addr: addr, Filter: packetFilter(), MaxRequestLength: maxRequestLength})
}

// call sends p and decodes the reply.
func call(ctx context.Context, c *client.Conn, p packet) (packet, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	m, err := c.Request(ctx, p.encode())
	if err != nil {
		return packet{}, err
	}
	return parse(m.Header, m.Body), nil
}

// runClient sends one packet of each kind, and one the server does not know, and prints
// the replies to out.
func runClient(ctx context.Context, addr string, out io.Writer) error {
	c, err := dial(ctx, addr)
	if err != nil {
		return err
	}
	defer c.Close()
	for _, p := range []packet{
		{ID: idEcho, Value1: 1, Value2: 2, Body: []byte("hello")},
		{ID: idReverse, Body: []byte("hello")},
		{ID: idSum, Value1: 20, Value2: 22},
		{ID: 42, Body: []byte("?")},
	} {
		r, err := call(ctx, c, p)
		if err != nil {
			return err
		}
		switch r.ID {
		case idSum:
			fmt.Fprintf(out, "sum %d+%d = %d\n", r.Value1, r.Value2, int32(binary.LittleEndian.Uint32(r.Body)))
		case idError:
			fmt.Fprintf(out, "error %d: %s\n", r.Value1, r.Body)
		default:
			fmt.Fprintf(out, "packet %d (%d, %d): %q\n", r.ID, r.Value1, r.Value2, r.Body)
		}
	}
	return nil
}
