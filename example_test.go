package supersocket_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"strings"

	"github.com/supersocket-go/supersocket"
	"github.com/supersocket-go/supersocket/filter"
)

// quiet keeps the examples' output to what they print.
var quiet = slog.New(slog.DiscardHandler)

// A config error names the field that is wrong.
func ExampleNew() {
	_, err := supersocket.New(supersocket.Config{
		Listeners:      []supersocket.ListenerConfig{{Addr: "127.0.0.1:0"}},
		MaxConnections: -1,
	}, supersocket.Handlers[struct{}]{
		Request: func(s *supersocket.Session[struct{}], req supersocket.Request) {},
	})
	var ce *supersocket.ConfigError
	if errors.As(err, &ce) {
		fmt.Println(ce.Field)
	}
	fmt.Println(err)
	// Output:
	// MaxConnections
	// supersocket: config: MaxConnections: must be positive, got -1
}

// An echo server: Start binds the listener (port 0 picks a free one), Serve runs until its
// context ends, then shuts the server down gracefully.
func ExampleServer_Serve() {
	srv, err := supersocket.New(supersocket.Config{
		Listeners: []supersocket.ListenerConfig{{Addr: "127.0.0.1:0"}},
		Filter:    filter.CommandLine(),
		Logger:    quiet,
	}, supersocket.Handlers[struct{}]{
		Request: func(s *supersocket.Session[struct{}], req supersocket.Request) {
			// Send copies: echoing the request's own bytes is safe.
			s.Send(req.Body, []byte("\r\n"))
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()

	conn, err := net.Dial("tcp", srv.Addrs()[0].String())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Fprint(conn, "ECHO hello, world\r\n")
	line, _ := bufio.NewReader(conn).ReadString('\n')
	fmt.Printf("%q\n", line)
	conn.Close()

	cancel()
	fmt.Println(<-served)
	// Output:
	// "hello, world\r\n"
	// supersocket: server closed
}

// counter is per-session state: each session counts its own requests, with no casts and no
// locks, since a session's handlers never run concurrently.
type counter struct{ n int }

func ExampleSession_Send() {
	srv, err := supersocket.New(supersocket.Config{
		Listeners: []supersocket.ListenerConfig{{Addr: "127.0.0.1:0"}},
		Logger:    quiet,
	}, supersocket.Handlers[counter]{
		Request: func(s *supersocket.Session[counter], req supersocket.Request) {
			s.Data().n++
			s.Send(fmt.Appendf(nil, "#%d %s %s\r\n", s.Data().n, strings.ToLower(req.Key), req.Params()))
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		log.Fatal(err)
	}
	defer srv.Stop()

	conn, err := net.Dial("tcp", srv.Addrs()[0].String())
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprint(conn, "ADD 1 2\r\nMULT 3  4 5\r\nQUIT\r\n")
	r := bufio.NewReader(conn)
	for range 3 {
		line, _ := r.ReadString('\n')
		fmt.Println(strings.TrimSuffix(line, "\r\n"))
	}
	// Output:
	// #1 add [1 2]
	// #2 mult [3 4 5]
	// #3 quit []
}

// A chat room: what one session says is broadcast to every other session.
func ExampleServer_Broadcast() {
	srv, err := supersocket.New(supersocket.Config{
		Listeners: []supersocket.ListenerConfig{{Addr: "127.0.0.1:0"}},
		Logger:    quiet,
	}, supersocket.Handlers[string]{
		Request: func(s *supersocket.Session[string], req supersocket.Request) {
			switch req.Key {
			case "NAME":
				*s.Data() = string(req.Body)
				s.Send([]byte("OK\r\n"))
			case "SAY":
				msg := fmt.Appendf(nil, "%s: %s\r\n", *s.Data(), req.Body)
				n := s.Server().Broadcast(msg, func(o *supersocket.Session[string]) bool { return o != s })
				s.Send(fmt.Appendf(nil, "sent to %d\r\n", n))
			}
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		log.Fatal(err)
	}
	defer srv.Stop()

	join := func(name string) (net.Conn, *bufio.Reader) {
		conn, err := net.Dial("tcp", srv.Addrs()[0].String())
		if err != nil {
			log.Fatal(err)
		}
		r := bufio.NewReader(conn)
		fmt.Fprintf(conn, "NAME %s\r\n", name)
		r.ReadString('\n') // OK
		return conn, r
	}
	ann, annIn := join("ann")
	defer ann.Close()
	bob, bobIn := join("bob")
	defer bob.Close()

	fmt.Fprint(ann, "SAY hello, all\r\n")
	line, _ := annIn.ReadString('\n')
	fmt.Println("ann reads", strings.TrimSuffix(line, "\r\n"))
	line, _ = bobIn.ReadString('\n')
	fmt.Println("bob reads", strings.TrimSuffix(line, "\r\n"))
	// Output:
	// ann reads sent to 1
	// bob reads ann: hello, all
}

// An admin command that stops the server from its own handler: Stop closes every other
// session and returns; the caller's own session finishes once the handler returns, and
// Wait waits for that.
func ExampleServer_Stop_fromAHandler() {
	srv, err := supersocket.New(supersocket.Config{
		Listeners: []supersocket.ListenerConfig{{Addr: "127.0.0.1:0"}},
		Filter:    filter.CommandLine(),
		Logger:    quiet,
	}, supersocket.Handlers[struct{}]{
		Request: func(s *supersocket.Session[struct{}], req supersocket.Request) {
			if req.Key == "STOP" {
				fmt.Println("Stop:", s.Server().Stop())
				fmt.Println("state:", s.Server().State())
			}
		},
		Closed: func(s *supersocket.Session[struct{}], why supersocket.CloseReason) {
			fmt.Println("closed:", why)
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		log.Fatal(err)
	}
	c, err := net.Dial("tcp", srv.Addrs()[0].String())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "STOP\r\n")
	if err := srv.Wait(context.Background()); err != nil {
		log.Fatal(err)
	}
	// Output:
	// Stop: <nil>
	// state: NotStarted
	// closed: ServerShutdown
}
