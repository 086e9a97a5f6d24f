package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/supersocket-go/supersocket/client"
	"github.com/supersocket-go/supersocket/filter"
)

// dial connects a game client: TICK lines are pushed, and queue for Conn.Receive.
func dial(ctx context.Context, addr string) (*client.Conn, error) {
	return client.Dial(ctx, client.Config{
		Addr:   addr,
		Filter: filter.CommandLine(),
		IsPush: func(m client.Message) bool { return m.Key == "TICK" },
	})
}

func text(m client.Message) string { return strings.TrimRight(string(m.Frame), "\r\n") }

// do sends one command line and returns the reply line.
func do(ctx context.Context, c *client.Conn, line string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	m, err := c.Request(ctx, []byte(line+"\r\n"))
	if err != nil {
		return "", err
	}
	return text(m), nil
}

// runClient joins room as name, prints n ticks (moving right every other tick), then
// leaves.
func runClient(ctx context.Context, addr, room, name string, n int, out io.Writer) error {
	c, err := dial(ctx, addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if r, err := do(ctx, c, "JOIN "+room+" "+name); err != nil {
		return err
	} else if !strings.HasPrefix(r, "OK") {
		return fmt.Errorf("JOIN: %s", r)
	}
	for i := range n {
		m, err := c.Receive(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintln(out, text(m))
		if i%2 == 0 {
			if _, err := do(ctx, c, "MOVE 1 0"); err != nil {
				return err
			}
		}
	}
	r, err := do(context.WithoutCancel(ctx), c, "LEAVE")
	if err != nil {
		return err
	}
	fmt.Fprintln(out, r)
	return nil
}
