package command_test

import (
	"testing"

	"github.com/supersocket-go/supersocket"
	"github.com/supersocket-go/supersocket/command"
)

// benchRouter has a realistic number of commands and two middlewares.
func benchRouter(b *testing.B, opts ...command.Option) *command.Router[none] {
	r := command.New[none](opts...)
	for _, k := range []string{"ECHO", "ADD", "MULT", "QUIT", "LOGIN", "LOGOUT", "JOIN", "LEAVE", "SAY", "WHO"} {
		r.HandleFunc(k, func(*ctxN) error { return nil })
	}
	r.HandleFunc("SUM", func(ctx *ctxN) error {
		a, err := ctx.Int(0)
		if err != nil {
			return err
		}
		c, err := ctx.Int(1)
		if err != nil {
			return err
		}
		if a+c != 3 {
			b.Fatal("bad sum")
		}
		return nil
	})
	var count int
	r.Use(func(next command.Handler[none]) command.Handler[none] {
		return func(ctx *ctxN) error { count++; return next(ctx) }
	}, func(next command.Handler[none]) command.Handler[none] {
		return func(ctx *ctxN) error { return next(ctx) }
	})
	r.NotFound(func(*ctxN) error { return nil })
	return r
}

// BenchmarkRoute routes one request to a command through two middlewares, with a nil
// session (what the router adds on top of the server).
func BenchmarkRoute(b *testing.B) {
	for _, bc := range []struct {
		name string
		opts []command.Option
		req  supersocket.Request
	}{
		{"exact", nil, req("SAY", "hi")},
		{"folded", nil, req("say", "hi")},
		{"case-sensitive", []command.Option{command.CaseSensitive()}, req("SAY", "hi")},
		{"unknown", nil, req("nope", "hi")},
		{"params-int", nil, req("sum", "1 2")},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r := benchRouter(b, bc.opts...)
			b.ReportAllocs()
			for b.Loop() {
				r.Request(nil, bc.req)
			}
		})
	}
}

func BenchmarkRouteParallel(b *testing.B) {
	r := benchRouter(b)
	q := req("say", "hi")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r.Request(nil, q)
		}
	})
}
