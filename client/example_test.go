package client_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/supersocket-go/supersocket"
	"github.com/supersocket-go/supersocket/client"
	"github.com/supersocket-go/supersocket/filter"
)

// A command-line client against a supersocket server that answers "ECHO text" with the
// text and "UPPER text" with the text in capitals.
func Example() {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := supersocket.New(supersocket.Config{
		Listeners: []supersocket.ListenerConfig{{Addr: "127.0.0.1:0"}},
		Filter:    filter.CommandLine(),
		Logger:    quiet,
	}, supersocket.Handlers[struct{}]{
		Request: func(s *supersocket.Session[struct{}], req supersocket.Request) {
			switch req.Key {
			case "ECHO":
				s.Send(req.Body, []byte("\r\n"))
			case "UPPER":
				s.Send(bytes.ToUpper(req.Body), []byte("\r\n"))
			}
		},
	})
	if err != nil {
		panic(err)
	}
	if err := srv.Start(); err != nil {
		panic(err)
	}
	defer srv.Stop()

	ctx := context.Background()
	c, err := client.Dial(ctx, client.Config{
		Addr:   srv.Addrs()[0].String(),
		Filter: filter.CommandLine(), // the server's framing
		Logger: quiet,
	})
	if err != nil {
		panic(err)
	}
	defer c.Close()

	for _, line := range []string{"ECHO hello world", "UPPER hello world"} {
		reply, err := c.Request(ctx, []byte(line+"\r\n"))
		if err != nil {
			panic(err)
		}
		fmt.Printf("%s → key %q, body %q\n", line, reply.Key, reply.Body)
	}
	// Output:
	// ECHO hello world → key "hello", body "world"
	// UPPER hello world → key "HELLO", body "WORLD"
}
