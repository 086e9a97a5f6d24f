package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/supersocket-go/supersocket/client"
	"github.com/supersocket-go/supersocket/examples/chat/chatroom"
	"github.com/supersocket-go/supersocket/filter"
)

// dial connects a chat client. Lines the server pushes start with "*": IsPush keeps them
// from being taken as the reply of a Request. They go to onPush, or, when it is nil, to
// the queue that Conn.Receive reads.
func dial(ctx context.Context, addr string, onPush func(client.Message)) (*client.Conn, error) {
	return client.Dial(ctx, client.Config{
		Addr:             addr,
		Filter:           filter.CommandLine(),
		MaxRequestLength: chatroom.MaxLineLength,
		IsPush:           func(m client.Message) bool { return m.Key == "*" },
		OnMessage:        onPush,
	})
}

// text returns a line as received, without its ending.
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

// runClient logs in as name, enters room, then says each line read from in (a line
// starting with "/" is sent as a command instead: "/who"), printing replies and what the
// others say to out. It quits at the end of in or when ctx ends.
func runClient(ctx context.Context, addr, name, room string, in io.Reader, out io.Writer) error {
	var mu sync.Mutex
	show := func(s string) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintln(out, s)
	}
	c, err := dial(ctx, addr, func(m client.Message) { show(text(m)) })
	if err != nil {
		return err
	}
	defer c.Close()
	send := func(line string) error {
		// Not ctx itself: the QUIT after a signal must still go out.
		r, err := do(context.WithoutCancel(ctx), c, line)
		if err != nil {
			return err
		}
		show(r)
		return nil
	}
	for _, line := range []string{"LOGIN " + name, "ENTER " + room} {
		if err := send(line); err != nil {
			return err
		}
	}
	// Read input on its own goroutine, so that a signal ends the client while it waits.
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(in)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return send("QUIT")
		case line, ok := <-lines:
			switch {
			case !ok:
				return send("QUIT")
			case strings.TrimSpace(line) == "":
			case strings.HasPrefix(line, "/"):
				err = send(line[1:])
			default:
				err = send("SAY " + line)
			}
			if err != nil {
				return err
			}
		}
	}
}
