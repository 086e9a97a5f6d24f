package command_test

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"

	"github.com/supersocket-go/supersocket"
	"github.com/supersocket-go/supersocket/command"
	"github.com/supersocket-go/supersocket/filter"
)

// Session is the per-session state of the example.
type Session struct {
	User     string
	Requests int // kept by the counting middleware
}

// Hello is a command type that knows its own key.
type Hello struct{}

func (Hello) Name() string { return "HELLO" }

func (Hello) Execute(ctx *command.Context[Session]) error {
	if ctx.Data().User == "" {
		return ctx.Reply([]byte("hello, stranger\r\n"))
	}
	return ctx.Reply([]byte("hello, " + ctx.Data().User + "\r\n"))
}

// A command-line server with a command type, a function command with typed parameters,
// a JSON command, a middleware keeping per-session state, an unknown-command handler and
// an error handler.
func Example() {
	r := command.New[Session]()
	r.Use(func(next command.Handler[Session]) command.Handler[Session] {
		return func(ctx *command.Context[Session]) error {
			ctx.Data().Requests++ // before the command
			err := next(ctx)
			// after the command: err is what it returned
			return err
		}
	})
	r.Register(Hello{})
	r.HandleFunc("ADD", func(ctx *command.Context[Session]) error {
		var sum int64
		for i := range ctx.NumParams() {
			n, err := ctx.Int(i)
			if err != nil {
				return err
			}
			sum += n
		}
		return ctx.Reply(strconv.AppendInt(nil, sum, 10), []byte("\r\n"))
	})
	r.Handle("LOGIN", command.JSON(func(ctx *command.Context[Session], args struct{ User string }) error {
		ctx.Data().User = args.User
		return ctx.Reply([]byte("OK\r\n"))
	}))
	r.HandleFunc("STATS", func(ctx *command.Context[Session]) error {
		return ctx.Reply(fmt.Appendf(nil, "%d requests\r\n", ctx.Data().Requests))
	})
	r.NotFound(func(ctx *command.Context[Session]) error {
		return ctx.Reply([]byte("unknown command " + ctx.Key() + "\r\n"))
	})
	r.OnError(func(ctx *command.Context[Session], err error) {
		ctx.Reply([]byte("ERR " + err.Error() + "\r\n"))
	})

	srv, err := supersocket.New(supersocket.Config{
		Listeners: []supersocket.ListenerConfig{{Addr: "127.0.0.1:0"}},
		Filter:    filter.CommandLine(),
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	}, supersocket.Handlers[Session]{Request: r.Request})
	if err != nil {
		panic(err)
	}
	if err := srv.Start(); err != nil {
		panic(err)
	}
	defer srv.Stop()

	conn, err := net.Dial("tcp", srv.Addrs()[0].String())
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	lines := []string{"hello", "add 1 2 39", "ADD 1 two", `login {"user":"ada"}`, "LOGIN {", "HELLO", "JUMP", "stats"}
	replies := bufio.NewScanner(conn)
	for _, line := range lines {
		fmt.Fprintf(conn, "%s\r\n", line)
		replies.Scan()
		fmt.Printf("%-22s → %s\n", line, replies.Text())
	}
	// Output:
	// hello                  → hello, stranger
	// add 1 2 39             → 42
	// ADD 1 two              → ERR command: parameter 1 is not an integer: "two"
	// login {"user":"ada"}   → OK
	// LOGIN {                → ERR command LOGIN: bad JSON body: unexpected end of JSON input
	// HELLO                  → hello, ada
	// JUMP                   → unknown command JUMP
	// stats                  → 7 requests
}
