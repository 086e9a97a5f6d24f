package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/supersocket-go/supersocket/client"
)

// dial connects a client that frames replies with the server's own switch filter.
func dial(ctx context.Context, addr string) (*client.Conn, error) {
	return client.Dial(ctx, client.Config{Addr: addr, Filter: switchFilter(), MaxRequestLength: maxRequestLength})
}

// call sends text framed by the framing whose begin byte is first, and returns the
// reply's first byte and text.
func call(ctx context.Context, c *client.Conn, first byte, text string) (byte, string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	m, err := c.Request(ctx, frame(first, text))
	if err != nil {
		return 0, "", err
	}
	return m.Frame[0], string(m.Body), nil
}

// runClient sends requests of both framings on one connection and prints the replies.
func runClient(ctx context.Context, addr string, out io.Writer) error {
	c, err := dial(ctx, addr)
	if err != nil {
		return err
	}
	defer c.Close()
	for _, r := range []struct {
		first byte
		text  string
	}{
		{'Y', "ECHO hello"},
		{'*', "ADD 1 2"},
		{'*', "MULT 6 7"},
		{'Y', "JUMP"},
	} {
		first, reply, err := call(ctx, c, r.first, r.text)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%c %-10s → %c %s\n", r.first, r.text, first, reply)
	}
	return nil
}
