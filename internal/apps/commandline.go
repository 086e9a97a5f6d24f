package apps

import (
	"bytes"
	"errors"
	"math"
	"strconv"

	"github.com/supersocket-go/supersocket"
	"github.com/supersocket-go/supersocket/command"
	"github.com/supersocket-go/supersocket/filter"
)

// CommandLine is SuperSocket's telnet quick start. A request is a line ending at "\n" (a
// "\r" before it is dropped); its key is the first word, case-insensitive:
//
//	ECHO <text>    → <text>                (everything after the first space, verbatim)
//	ADD n1 n2 …    → the sum               (64-bit integers)
//	MULT n1 n2 …   → the product
//	QUIT           → BYE, then the server closes the session
//
// Replies end with "\r\n". An unknown key gets "ERR unknown command: <KEY>", bad numbers
// or an overflow "ERR <why>"; the session stays open. Empty lines are ignored.
//
// The commands run on a command.Router (see commandLineRouter).
func CommandLine(cfg supersocket.Config) (Server, error) {
	cfg.Filter = filter.CommandLine()
	return supersocket.New(cfg, supersocket.Handlers[struct{}]{Request: commandLineRouter().Request})
}

type lineCtx = command.Context[struct{}]

var (
	crlf       = []byte("\r\n")
	bye        = []byte("BYE\r\n")
	errPrefix  = []byte("ERR ")
	errUnknown = []byte("ERR unknown command: ")
)

// commandLineRouter routes the app's commands. Keys fold case (the router's default);
// the empty key is a blank line, answered with nothing. A command's error is a message
// for the client: OnError sends it as "ERR <why>" and keeps the session. Commands ignore
// the error of a send: it means the session is closing, and there is no one to tell.
func commandLineRouter() *command.Router[struct{}] {
	r := command.New[struct{}]()
	r.HandleFunc("", func(*lineCtx) error { return nil })
	r.HandleFunc("ECHO", func(ctx *lineCtx) error {
		ctx.Reply(ctx.Body(), crlf)
		return nil
	})
	r.HandleFunc("ADD", arithmetic(0, addInt64))
	r.HandleFunc("MULT", arithmetic(1, mulInt64))
	r.HandleFunc("QUIT", func(ctx *lineCtx) error {
		ctx.Reply(bye)
		ctx.Session().Close(supersocket.CloseServerClosing)
		return nil
	})
	r.NotFound(func(ctx *lineCtx) error {
		ctx.Reply(errUnknown, []byte(ctx.Key()), crlf)
		return nil
	})
	r.OnError(func(ctx *lineCtx, err error) {
		ctx.Reply(errPrefix, []byte(err.Error()), crlf)
	})
	return r
}

// arithmetic folds the integers of the body with op, starting from unit, and replies
// with the result. It splits the body with bytes.Fields (on any white space), as the app
// always has, where ctx.Params would split on spaces only.
func arithmetic(unit int64, op func(a, b int64) (int64, bool)) func(*lineCtx) error {
	return func(ctx *lineCtx) error {
		n, err := fold(ctx.Body(), unit, op)
		if err != nil {
			return err
		}
		var buf [32]byte
		ctx.Reply(strconv.AppendInt(buf[:0], n, 10), crlf)
		return nil
	}
}

var (
	errOverflow = errors.New("integer overflow")
	errNoArgs   = errors.New("expected at least one integer")
)

// fold combines the space-separated integers of body with op, starting from unit.
func fold(body []byte, unit int64, op func(a, b int64) (int64, bool)) (int64, error) {
	acc, n := unit, 0
	for _, f := range bytes.Fields(body) {
		v, err := strconv.ParseInt(string(f), 10, 64)
		if err != nil {
			var ne *strconv.NumError
			if errors.As(err, &ne) && errors.Is(ne.Err, strconv.ErrRange) {
				return 0, errOverflow
			}
			return 0, errors.New("not an integer: " + strconv.Quote(string(f)))
		}
		var ok bool
		if acc, ok = op(acc, v); !ok {
			return 0, errOverflow
		}
		n++
	}
	if n == 0 {
		return 0, errNoArgs
	}
	return acc, nil
}

func addInt64(a, b int64) (int64, bool) {
	c := a + b
	return c, (c > a) == (b > 0)
}

func mulInt64(a, b int64) (int64, bool) {
	if a == 0 || b == 0 {
		return 0, true
	}
	if (a == -1 && b == math.MinInt64) || (b == -1 && a == math.MinInt64) {
		return 0, false
	}
	c := a * b
	return c, c/b == a
}
