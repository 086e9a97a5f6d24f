package command_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/supersocket-go/supersocket/command"
)

// tracer makes middleware that logs its before and after steps into a shared trace.
type tracer struct{ trace []string }

func (tr *tracer) mw(name string) command.Middleware[none] {
	return func(next command.Handler[none]) command.Handler[none] {
		return func(ctx *ctxN) error {
			tr.trace = append(tr.trace, name+">")
			err := next(ctx)
			tr.trace = append(tr.trace, "<"+name)
			return err
		}
	}
}

func (tr *tracer) cmd(name string) func(*ctxN) error {
	return func(*ctxN) error { tr.trace = append(tr.trace, name); return nil }
}

func (tr *tracer) take() []string {
	t := tr.trace
	tr.trace = nil
	return t
}

func TestMiddlewareOrder(t *testing.T) {
	tr := &tracer{}
	r := command.New[none]()
	r.Use(tr.mw("A"), tr.mw("B"))
	r.HandleFunc("X", tr.cmd("X"), tr.mw("C"), tr.mw("D"))
	r.HandleFunc("Y", tr.cmd("Y"))
	r.Use(tr.mw("E")) // applies to commands registered before it too, innermost of the router's
	r.HandleFunc("Z", tr.cmd("Z"))
	r.NotFound(func(*ctxN) error { tr.trace = append(tr.trace, "notfound"); return nil })

	for _, tc := range []struct {
		key  string
		want []string
	}{
		{"X", []string{"A>", "B>", "E>", "C>", "D>", "X", "<D", "<C", "<E", "<B", "<A"}},
		{"Y", []string{"A>", "B>", "E>", "Y", "<E", "<B", "<A"}},
		{"Z", []string{"A>", "B>", "E>", "Z", "<E", "<B", "<A"}},
		{"W", []string{"notfound"}}, // middleware wraps commands only
	} {
		r.Request(nil, req(tc.key, ""))
		if got := tr.take(); !slices.Equal(got, tc.want) {
			t.Errorf("%s: trace %q, want %q", tc.key, got, tc.want)
		}
	}
}

func TestMiddlewareShortCircuit(t *testing.T) {
	tr := &tracer{}
	var errs []error
	errDenied := errors.New("denied")
	r := command.New[none]()
	r.Use(tr.mw("A"))
	r.Use(func(next command.Handler[none]) command.Handler[none] {
		return func(ctx *ctxN) error {
			switch ctx.Name() {
			case "QUIET": // handled here: the command and inner middleware never run
				tr.trace = append(tr.trace, "guard:quiet")
				return nil
			case "DENY": // refused with an error, which still passes the outer middleware
				tr.trace = append(tr.trace, "guard:deny")
				return errDenied
			}
			return next(ctx)
		}
	})
	r.Use(tr.mw("C"))
	for _, k := range []string{"QUIET", "DENY", "OPEN"} {
		r.HandleFunc(k, tr.cmd(k))
	}
	r.OnError(func(_ *ctxN, err error) { errs = append(errs, err); tr.trace = append(tr.trace, "onerror") })

	for _, tc := range []struct {
		key  string
		want []string
	}{
		{"quiet", []string{"A>", "guard:quiet", "<A"}},
		{"deny", []string{"A>", "guard:deny", "<A", "onerror"}},
		{"open", []string{"A>", "C>", "OPEN", "<C", "<A"}},
	} {
		r.Request(nil, req(tc.key, ""))
		if got := tr.take(); !slices.Equal(got, tc.want) {
			t.Errorf("%s: trace %q, want %q", tc.key, got, tc.want)
		}
	}
	if len(errs) != 1 || errs[0] != errDenied {
		t.Fatalf("errors %v", errs)
	}
}

// TestMiddlewareAfterSeesError: code after next sees the command's error and may replace
// it (SuperSocket's OnCommandExecuted).
func TestMiddlewareAfterSeesError(t *testing.T) {
	errBoom := errors.New("boom")
	var seen, reported []error
	r := command.New[none]()
	r.Use(func(next command.Handler[none]) command.Handler[none] {
		return func(ctx *ctxN) error {
			err := next(ctx)
			seen = append(seen, err)
			if ctx.Name() == "SWALLOW" {
				return nil
			}
			return err
		}
	})
	r.HandleFunc("FAIL", func(*ctxN) error { return errBoom })
	r.HandleFunc("SWALLOW", func(*ctxN) error { return errBoom })
	r.HandleFunc("OK", func(*ctxN) error { return nil })
	r.OnError(func(_ *ctxN, err error) { reported = append(reported, err) })
	for _, k := range []string{"FAIL", "SWALLOW", "OK"} {
		r.Request(nil, req(k, ""))
	}
	if !slices.Equal(seen, []error{errBoom, errBoom, nil}) || !slices.Equal(reported, []error{errBoom}) {
		t.Fatalf("middleware saw %v, OnError got %v", seen, reported)
	}
}

// public marks commands that need no login; the login middleware inspects ctx.Command.
type public interface{ Public() }

type helpCmd struct{}

func (helpCmd) Name() string            { return "HELP" }
func (helpCmd) Public()                 {}
func (helpCmd) Execute(ctx *ctxN) error { return nil }

func TestMiddlewareInspectsCommand(t *testing.T) {
	var blocked []string
	r := command.New[none]()
	r.Use(func(next command.Handler[none]) command.Handler[none] {
		return func(ctx *ctxN) error {
			if _, ok := ctx.Command().(public); !ok {
				blocked = append(blocked, ctx.Name())
				return nil
			}
			return next(ctx)
		}
	})
	r.Register(helpCmd{})
	r.HandleFunc("SECRET", func(*ctxN) error { t.Error("SECRET ran"); return nil })
	r.Request(nil, req("help", ""))
	r.Request(nil, req("secret", ""))
	if !slices.Equal(blocked, []string{"SECRET"}) {
		t.Fatalf("blocked %q", blocked)
	}
}
