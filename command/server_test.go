package command_test

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/supersocket-go/supersocket"
	"github.com/supersocket-go/supersocket/command"
)

// player is the per-session state of the integration tests.
type player struct {
	name     string
	commands int // counted by the limit middleware
}

type ctxP = command.Context[player]

var crlf = []byte("\r\n")

// limitCommands is a reusable middleware with per-session state: it counts the commands
// of each session in the field of T that counter returns, and answers "ERR limit" instead
// of running any past the limit. It knows nothing of T beyond the accessor.
func limitCommands[T any](counter func(*T) *int, limit int) command.Middleware[T] {
	return func(next command.Handler[T]) command.Handler[T] {
		return func(ctx *command.Context[T]) error {
			n := counter(ctx.Data())
			*n++
			if *n > limit {
				ctx.Reply([]byte("ERR limit\r\n"))
				return nil
			}
			return next(ctx)
		}
	}
}

// playerRouter is a small game protocol on a command line.
func playerRouter() *command.Router[player] {
	r := command.New[player]()
	r.Use(limitCommands(func(p *player) *int { return &p.commands }, 5))
	r.HandleFunc("ECHO", func(ctx *ctxP) error { return ctx.Reply(ctx.Body(), crlf) })
	r.HandleFunc("ADD", func(ctx *ctxP) error {
		a, err := ctx.Int(0)
		if err != nil {
			return err
		}
		b, err := ctx.Int(1)
		if err != nil {
			return err
		}
		return ctx.Reply(strconv.AppendInt(nil, a+b, 10), crlf)
	})
	r.Handle("LOGIN", command.JSON(func(ctx *ctxP, a struct{ Name string }) error {
		ctx.Data().name = a.Name
		return ctx.Reply([]byte("HELLO "+a.Name), crlf)
	}))
	r.HandleFunc("WHOAMI", func(ctx *ctxP) error {
		return ctx.Reply([]byte(ctx.Data().name+" "+strconv.Itoa(ctx.Data().commands)), crlf)
	})
	r.HandleFunc("QUIT", func(ctx *ctxP) error {
		ctx.Reply([]byte("BYE\r\n"))
		ctx.Session().Close(supersocket.CloseServerClosing)
		return nil
	})
	r.NotFound(func(ctx *ctxP) error { return ctx.Reply([]byte("UNKNOWN "+ctx.Key()), crlf) })
	r.OnError(func(ctx *ctxP, err error) { ctx.Reply([]byte("ERR "+err.Error()), crlf) })
	return r
}

func TestServerIntegration(t *testing.T) {
	closed := make(chan supersocket.CloseReason, 1)
	addr := serve(t, supersocket.Handlers[player]{
		Request: playerRouter().Request,
		Closed:  func(_ *supersocket.Session[player], why supersocket.CloseReason) { closed <- why },
	}, nil)
	c := dial(t, addr)
	c.send("echo hello  world ", "Add 2 40", "ADD 2 x", "login {\"name\":\"ada\"}", "DANCE now", "QUIT", "ECHO never")
	c.expect("hello  world ", "42", `ERR command: parameter 1 is not an integer: "x"`, "HELLO ada", "UNKNOWN DANCE", "BYE")
	c.expectEOF()
	select {
	case why := <-closed:
		if why != supersocket.CloseServerClosing {
			t.Fatalf("closed with %v", why)
		}
	case <-time.After(waitLong):
		t.Fatal("session never closed")
	}
}

// TestPerSessionMiddlewareState: the limit middleware's counter lives in each session's
// state, so it carries across the requests of one session and not into another.
func TestPerSessionMiddlewareState(t *testing.T) {
	addr := serve(t, supersocket.Handlers[player]{Request: playerRouter().Request}, nil)
	a, b := dial(t, addr), dial(t, addr)
	a.send("login {\"name\":\"a\"}", "WHOAMI")
	a.expect("HELLO a", "a 2")
	b.send("WHOAMI")
	b.expect(" 1")
	a.send("bad json", "WHOAMI") // unknown keys do not pass the middleware: not counted
	a.expect("UNKNOWN bad", "a 3")
	b.send("login {\"name\":\"b\"}", "WHOAMI")
	b.expect("HELLO b", "b 3")
	a.send("ECHO 4", "ECHO 5", "ECHO 6", "WHOAMI")
	a.expect("4", "5", "ERR limit", "ERR limit")
	b.send("ECHO 4", "ECHO 5", "ECHO 6")
	b.expect("4", "5", "ERR limit")
}

func TestDefaultOnErrorLogsAndKeepsSession(t *testing.T) {
	logs := &syncBuffer{}
	r := command.New[none]()
	r.HandleFunc("FAIL", func(*ctxN) error { return errors.New("it broke") })
	r.HandleFunc("PING", func(ctx *ctxN) error { return ctx.Reply([]byte("PONG\r\n")) })
	addr := serve(t, supersocket.Handlers[none]{Request: r.Request}, slog.New(slog.NewTextHandler(logs, nil)))
	c := dial(t, addr)
	c.send("fail now", "PING")
	c.expect("PONG") // nothing replied to FAIL, and the session is still open
	for _, want := range []string{"level=WARN", `msg="command failed"`, "key=fail", `err="it broke"`, "session="} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, logs)
		}
	}
}

// TestPanicClosesSessionByDefault: without Recover a panic reaches the server, which
// closes the session with CloseApplicationError; middleware after next does not run.
func TestPanicClosesSessionByDefault(t *testing.T) {
	closed := make(chan supersocket.CloseReason, 1)
	after := make(chan string, 1)
	r := command.New[none]()
	r.Use(func(next command.Handler[none]) command.Handler[none] {
		return func(ctx *ctxN) error {
			err := next(ctx)
			after <- ctx.Name()
			return err
		}
	})
	r.HandleFunc("BOOM", func(*ctxN) error { panic("boom") })
	r.HandleFunc("ECHO", func(ctx *ctxN) error { return ctx.Reply(ctx.Body(), crlf) })
	addr := serve(t, supersocket.Handlers[none]{
		Request: r.Request,
		Closed:  func(_ *supersocket.Session[none], why supersocket.CloseReason) { closed <- why },
	}, nil)
	c := dial(t, addr)
	c.send("ECHO one", "BOOM", "ECHO two")
	c.expect("one")
	c.expectEOF()
	select {
	case why := <-closed:
		if why != supersocket.CloseApplicationError {
			t.Fatalf("closed with %v, want ApplicationError", why)
		}
	case <-time.After(waitLong):
		t.Fatal("session never closed")
	}
	if got := <-after; got != "ECHO" {
		t.Fatalf("after-step ran for %q", got)
	}
	select {
	case got := <-after:
		t.Fatalf("after-step ran for %q after the panic", got)
	default:
	}
}

// TestRecoverOption: with Recover the panic goes to OnError as a *PanicError and the
// session stays open.
func TestRecoverOption(t *testing.T) {
	errBad := errors.New("bad state")
	panics := make(chan *command.PanicError, 8) // never blocks the session: 3 panics
	r := command.New[none](command.Recover())
	r.HandleFunc("BOOM", func(*ctxN) error { panic("boom") })
	r.HandleFunc("BADSTATE", func(*ctxN) error { panic(errBad) })
	r.HandleFunc("ECHO", func(ctx *ctxN) error { return ctx.Reply(ctx.Body(), crlf) })
	r.NotFound(func(*ctxN) error { panic("unknown") })
	r.OnError(func(ctx *ctxN, err error) {
		var pe *command.PanicError
		if errors.As(err, &pe) {
			panics <- pe
		}
		ctx.Reply([]byte("ERR "+err.Error()), crlf)
	})
	addr := serve(t, supersocket.Handlers[none]{Request: r.Request}, nil)
	c := dial(t, addr)
	c.send("BOOM", "ECHO still here", "BADSTATE", "WHAT")
	c.expect("ERR command: panic: boom", "still here", "ERR command: panic: bad state", "ERR command: panic: unknown")
	pe := <-panics
	if pe.Value != "boom" || !strings.Contains(string(pe.Stack), "server_test.go") {
		t.Fatalf("PanicError %v with stack:\n%s", pe.Value, pe.Stack)
	}
	if pe := <-panics; !errors.Is(pe, errBad) {
		t.Fatalf("PanicError %v does not unwrap to the panic's error", pe)
	}
}

// TestManySessions runs the router for parallel sessions of a real server.
func TestManySessions(t *testing.T) {
	addr := serve(t, supersocket.Handlers[player]{Request: playerRouter().Request}, nil)
	n := 4 * runtime.GOMAXPROCS(0)
	errs := make(chan error, n)
	for i := range n {
		go func() { errs <- playerSession(addr, i) }()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// playerSession logs in as player i and checks the replies; it returns errors rather
// than failing the test, since it runs off the test's goroutine.
func playerSession(addr string, i int) error {
	c, err := net.DialTimeout("tcp", addr, waitLong)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(waitLong))
	name := fmt.Sprintf("p%d", i)
	fmt.Fprintf(c, "LOGIN {\"name\":%q}\r\nADD %d 1\r\nWHOAMI\r\n", name, i)
	want := fmt.Sprintf("HELLO %s\r\n%d\r\n%s 3\r\n", name, i+1, name)
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil {
		return fmt.Errorf("session %d: %v (got %q)", i, err, got)
	}
	if string(got) != want {
		return fmt.Errorf("session %d: got %q, want %q", i, got, want)
	}
	return nil
}
