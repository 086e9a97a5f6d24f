package command_test

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/supersocket-go/supersocket"
	"github.com/supersocket-go/supersocket/command"
)

type none = struct{}
type ctxN = command.Context[none]

// recorder registers commands that record which one ran, under which key and name.
type recorder struct {
	ran []string
}

func (rec *recorder) cmd(name string) func(*ctxN) error {
	return func(ctx *ctxN) error {
		rec.ran = append(rec.ran, name+"|"+ctx.Key()+"|"+ctx.Name())
		return nil
	}
}

func (rec *recorder) notFound(ctx *ctxN) error {
	rec.ran = append(rec.ran, "?|"+ctx.Key()+"|"+ctx.Name())
	return nil
}

func (rec *recorder) take() []string {
	r := rec.ran
	rec.ran = nil
	return r
}

func TestRouteCaseInsensitiveByDefault(t *testing.T) {
	var rec recorder
	r := command.New[none]()
	r.HandleFunc("ECHO", rec.cmd("echo"))
	r.HandleFunc("add", rec.cmd("add"))
	r.HandleFunc("Straße", rec.cmd("strasse"))
	r.HandleFunc("kelvin", rec.cmd("kelvin"))
	r.HandleFunc(strings.Repeat("L", 100), rec.cmd("long"))
	r.NotFound(rec.notFound)
	for _, tc := range []struct{ key, want string }{
		{"ECHO", "echo|ECHO|ECHO"},
		{"echo", "echo|echo|ECHO"},
		{"eChO", "echo|eChO|ECHO"},
		{"ADD", "add|ADD|add"},
		{"add", "add|add|add"},
		{"STRASSE", "?|STRASSE|"}, // simple folding: ß does not expand to SS
		{"STRAßE", "strasse|STRAßE|Straße"},
		{"ſtraße", "strasse|ſtraße|Straße"},          // long s folds to s
		{"\u212Aelvin", "kelvin|\u212Aelvin|kelvin"}, // Kelvin sign folds to k
		{strings.Repeat("l", 100), "long|" + strings.Repeat("l", 100) + "|" + strings.Repeat("L", 100)},
		{"ECH", "?|ECH|"},
		{"ECHOO", "?|ECHOO|"},
		{"", "?||"},
	} {
		r.Request(nil, req(tc.key, ""))
		if got := rec.take(); !slices.Equal(got, []string{tc.want}) {
			t.Errorf("key %q: ran %q, want %q", tc.key, got, tc.want)
		}
	}
}

func TestRouteNonASCIIKeyFoundByASCIIRequest(t *testing.T) {
	var rec recorder
	r := command.New[none]()
	r.HandleFunc("\u212AEY", rec.cmd("kelvin")) // registered with a Kelvin sign
	r.NotFound(rec.notFound)
	r.Request(nil, req("key", ""))
	if got := rec.take(); !slices.Equal(got, []string{"kelvin|key|\u212AEY"}) {
		t.Fatalf("ran %q", got)
	}
}

func TestRouteCaseSensitive(t *testing.T) {
	var rec recorder
	r := command.New[none](command.CaseSensitive())
	r.HandleFunc("ECHO", rec.cmd("ECHO"))
	r.HandleFunc("echo", rec.cmd("echo")) // a different command when case matters
	r.NotFound(rec.notFound)
	for _, tc := range []struct{ key, want string }{
		{"ECHO", "ECHO|ECHO|ECHO"},
		{"echo", "echo|echo|echo"},
		{"Echo", "?|Echo|"},
	} {
		r.Request(nil, req(tc.key, ""))
		if got := rec.take(); !slices.Equal(got, []string{tc.want}) {
			t.Errorf("key %q: ran %q, want %q", tc.key, got, tc.want)
		}
	}
}

func TestRouteUnknownIgnoredByDefault(t *testing.T) {
	var errs []error
	r := command.New[none]()
	r.HandleFunc("A", func(*ctxN) error { t.Error("A ran"); return nil })
	r.OnError(func(_ *ctxN, err error) { errs = append(errs, err) })
	r.Request(nil, req("B", "x"))
	if len(errs) != 0 {
		t.Fatalf("errors %v for an unknown key with no NotFound handler", errs)
	}
}

func TestRouteEmptyKey(t *testing.T) {
	var rec recorder
	r := command.New[none]()
	r.HandleFunc("", rec.cmd("blank"))
	r.NotFound(rec.notFound)
	r.Request(nil, req("", ""))
	r.Request(nil, req("X", ""))
	if got := rec.take(); !slices.Equal(got, []string{"blank||", "?|X|"}) {
		t.Fatalf("ran %q", got)
	}
}

// move is a command type that knows its name: SuperSocket's ICommand.
type move struct{ rec *recorder }

func (move) Name() string { return "MOVE" }
func (m move) Execute(ctx *ctxN) error {
	m.rec.ran = append(m.rec.ran, "move|"+ctx.Key()+"|"+ctx.Name()+"|"+string(ctx.Body()))
	return nil
}

type stop struct{ rec *recorder }

func (stop) Name() string { return "STOP" }
func (s stop) Execute(ctx *ctxN) error {
	s.rec.ran = append(s.rec.ran, "stop")
	return nil
}

func TestRegisterNamedCommands(t *testing.T) {
	rec := &recorder{}
	r := command.New[none]()
	r.Register(move{rec}, stop{rec})
	r.Request(nil, req("move", "1 2"))
	r.Request(nil, req("Stop", ""))
	if got := rec.take(); !slices.Equal(got, []string{"move|move|MOVE|1 2", "stop"}) {
		t.Fatalf("ran %q", got)
	}
	if got := r.Commands(); !slices.Equal(got, []string{"MOVE", "STOP"}) {
		t.Fatalf("Commands() = %q", got)
	}
	if c, ok := r.Lookup("mOvE"); !ok || c.(move).Name() != "MOVE" {
		t.Fatalf("Lookup(mOvE) = %v, %v", c, ok)
	}
	if _, ok := r.Lookup("JUMP"); ok {
		t.Fatal("Lookup(JUMP) found a command")
	}
}

func TestKeyFunc(t *testing.T) {
	// A binary protocol: the key is the first header byte, mapped through a table.
	names := [256]string{1: "LOGIN", 2: "CHAT"}
	var rec recorder
	r := command.New[none](command.KeyFunc(func(req supersocket.Request) string {
		if len(req.Header) == 0 {
			return ""
		}
		return names[req.Header[0]]
	}))
	r.HandleFunc("login", rec.cmd("login"))
	r.HandleFunc("CHAT", rec.cmd("chat"))
	r.NotFound(rec.notFound)
	for _, h := range []byte{1, 2, 3} {
		r.Request(nil, supersocket.Request{Header: []byte{h, 0}})
	}
	if got := rec.take(); !slices.Equal(got, []string{"login|LOGIN|login", "chat|CHAT|CHAT", "?||"}) {
		t.Fatalf("ran %q", got)
	}
}

func TestRegistrationPanics(t *testing.T) {
	nop := func(*ctxN) error { return nil }
	cases := map[string]func(){
		"duplicate":         func() { r := command.New[none](); r.HandleFunc("A", nop); r.HandleFunc("A", nop) },
		"duplicate-case":    func() { r := command.New[none](); r.HandleFunc("quit", nop); r.HandleFunc("QUIT", nop) },
		"duplicate-unicode": func() { r := command.New[none](); r.HandleFunc("k", nop); r.HandleFunc("\u212A", nop) },
		"nil-command":       func() { command.New[none]().Handle("A", nil) },
		"nil-func":          func() { command.New[none]().HandleFunc("A", nil) },
		"nil-middleware":    func() { command.New[none]().Use(nil) },
		"nil-named":         func() { command.New[none]().Register(nil) },
		"nil-json":          func() { command.JSON[none, int](nil) },
		"middleware-nil-next": func() {
			r := command.New[none]()
			r.Use(func(command.Handler[none]) command.Handler[none] { return nil })
			r.HandleFunc("A", nop)
		},
	}
	for name, fn := range cases {
		t.Run(name, func(t *testing.T) { mustPanic(t, fn) })
	}
	// Case-sensitive routers accept keys that differ in case only.
	r := command.New[none](command.CaseSensitive())
	r.HandleFunc("quit", nop)
	r.HandleFunc("QUIT", nop)
}

func TestConfigureAfterServingPanics(t *testing.T) {
	nop := func(*ctxN) error { return nil }
	r := command.New[none]()
	r.HandleFunc("A", nop)
	r.Request(nil, req("A", ""))
	for name, fn := range map[string]func(){
		"Handle":   func() { r.HandleFunc("B", nop) },
		"Use":      func() { r.Use(func(h command.Handler[none]) command.Handler[none] { return h }) },
		"NotFound": func() { r.NotFound(nop) },
		"OnError":  func() { r.OnError(func(*ctxN, error) {}) },
	} {
		p := mustPanic(t, fn)
		if !strings.Contains(fmt.Sprint(p), name) {
			t.Errorf("%s: panic %q does not name the method", name, p)
		}
	}
}

// TestConcurrentRequests runs one router from many goroutines, as the sessions of a
// server do, so -race checks the pooled contexts are never shared.
func TestConcurrentRequests(t *testing.T) {
	r := command.New[none]()
	r.HandleFunc("CHECK", func(ctx *ctxN) error {
		n, err := ctx.Int(0)
		if err != nil {
			return err
		}
		if got, _ := ctx.String(1); got != fmt.Sprint(n*2) || ctx.NumParams() != 2 {
			return fmt.Errorf("context mixed up: %q", ctx.Params())
		}
		return nil
	})
	var mu sync.Mutex
	var errs []error
	r.OnError(func(_ *ctxN, err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				n := g*1000 + i
				r.Request(nil, req("check", fmt.Sprintf("%d %d", n, n*2)))
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d errors, first %v", len(errs), errs[0])
	}
}
