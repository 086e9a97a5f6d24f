package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/supersocket-go/supersocket/client"
)

// reply is a decoded reply from the gate.
type reply struct {
	ID    uint16
	Error bool // the gate's error rather than the back end's reply
	Body  string
}

// dial connects a client to the gate.
func dial(ctx context.Context, addr string) (*client.Conn, error) {
	return client.Dial(ctx, client.Config{Addr: addr, Filter: packetFilter(), MaxRequestLength: maxRequestLength})
}

// call sends one packet and waits for its reply. Replies come back in order: the gate
// forwards a client's packets in order over one link, and the back end answers in order.
func call(ctx context.Context, c *client.Conn, id uint16, body string) (reply, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	m, err := c.Request(ctx, encode(id, 0, []byte(body)))
	if err != nil {
		return reply{}, err
	}
	return reply{ID: packetID(m.Header), Error: m.Header[4] == replyError, Body: string(m.Body)}, nil
}

// runClient sends each text as a packet through the gate and prints the replies.
func runClient(ctx context.Context, addr string, texts []string, out io.Writer) error {
	if len(texts) == 0 {
		texts = []string{"hello"}
	}
	c, err := dial(ctx, addr)
	if err != nil {
		return err
	}
	defer c.Close()
	for i, t := range texts {
		r, err := call(ctx, c, uint16(i+1), t)
		if err != nil {
			return err
		}
		if r.Error {
			fmt.Fprintf(out, "packet %d: error: %s\n", r.ID, r.Body)
		} else {
			fmt.Fprintf(out, "packet %d: %s\n", r.ID, r.Body)
		}
	}
	return nil
}
