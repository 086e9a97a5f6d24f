package command

import (
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/supersocket-go/supersocket"
)

// Command is one command: SuperSocket's ICommand. Execute runs once per request whose key
// names the command; an error it returns goes to the router's OnError handler.
type Command[T any] interface {
	Execute(ctx *Context[T]) error
}

// Named is a command that knows its own key (SuperSocket's ICommand.Name), so that
// Router.Register needs no key.
type Named[T any] interface {
	Command[T]
	Name() string
}

// Handler is a command written as a function. It is also what a Middleware wraps.
type Handler[T any] func(ctx *Context[T]) error

// Execute calls h: a Handler is a Command.
func (h Handler[T]) Execute(ctx *Context[T]) error { return h(ctx) }

// Middleware wraps the handler of a command (SuperSocket's command filters): it may run
// code before calling next, after it, or not call next at all to short-circuit the
// command. It is called once per command when the router is configured, not per request;
// the Handler it returns runs per request, for every session, in parallel.
type Middleware[T any] func(next Handler[T]) Handler[T]

// Option configures a Router in New.
type Option func(*options)

type options struct {
	caseSensitive bool
	recover       bool
	keyFunc       func(supersocket.Request) string
}

// CaseSensitive makes keys match only exactly; by default they match under Unicode simple
// case folding (strings.EqualFold).
func CaseSensitive() Option { return func(o *options) { o.caseSensitive = true } }

// KeyFunc derives a request's key with fn instead of taking Request.Key: for protocols
// whose key lives in a binary header, for instance. fn runs for every request; to keep
// routing free of allocations, return strings that already exist (index a table of
// constants rather than converting header bytes).
func KeyFunc(fn func(req supersocket.Request) string) Option {
	return func(o *options) { o.keyFunc = fn }
}

// Recover makes the router recover a panic in a command, a middleware or the NotFound
// handler and pass it to OnError as a *PanicError, keeping the session open. Without it a
// panic reaches the server's recovery, which closes the session with
// CloseApplicationError.
func Recover() Option { return func(o *options) { o.recover = true } }

// Router routes requests to commands by key. Build it with New, configure it, then use its
// Request method as the server's Request handler. See the package documentation.
type Router[T any] struct {
	opts     options
	routes   []*route[T]          // in registration order
	exact    map[string]*route[T] // by the key as registered
	folded   map[string]*route[T] // by the ASCII upper case of ASCII keys (case-insensitive routers)
	unicode  []*route[T]          // routes whose key is not ASCII (case-insensitive routers)
	mw       []Middleware[T]
	notFound Handler[T]
	onError  func(ctx *Context[T], err error)
	pool     sync.Pool // of *Context[T]
	serving  atomic.Bool
}

type route[T any] struct {
	name string
	cmd  Command[T]
	mw   []Middleware[T] // the command's own, inside the router's
	run  Handler[T]      // cmd inside every middleware
}

// New returns an empty router for sessions whose state is T.
func New[T any](opts ...Option) *Router[T] {
	r := &Router[T]{
		exact:  make(map[string]*route[T]),
		folded: make(map[string]*route[T]),
	}
	for _, o := range opts {
		o(&r.opts)
	}
	r.pool.New = func() any { return new(Context[T]) }
	return r
}

// Handle registers cmd under key, with middleware of its own that runs inside the
// router's (the first given outermost). It panics if cmd is nil, if a command is already
// registered under key (under any case, unless the router is case-sensitive), or if the
// router has started serving.
func (r *Router[T]) Handle(key string, cmd Command[T], mw ...Middleware[T]) {
	r.configuring("Handle")
	if cmd == nil {
		panic("command: Handle " + strconv.Quote(key) + " with a nil command")
	}
	for _, rt := range r.routes {
		if rt.name == key || (!r.opts.caseSensitive && strings.EqualFold(rt.name, key)) {
			panic(fmt.Sprintf("command: key %q registered twice (already as %q)", key, rt.name))
		}
	}
	rt := &route[T]{name: key, cmd: cmd, mw: slices.Clone(mw)}
	r.compose(rt)
	r.routes = append(r.routes, rt)
	r.exact[key] = rt
	if !r.opts.caseSensitive {
		if isASCII(key) {
			r.folded[upperASCII(key)] = rt
		} else {
			r.unicode = append(r.unicode, rt)
		}
	}
}

// HandleFunc registers fn under key; see Handle.
func (r *Router[T]) HandleFunc(key string, fn func(ctx *Context[T]) error, mw ...Middleware[T]) {
	if fn == nil {
		panic("command: HandleFunc " + strconv.Quote(key) + " with a nil function")
	}
	r.Handle(key, Handler[T](fn), mw...)
}

// Register registers each command under its own Name, like SuperSocket's command loader;
// see Handle.
func (r *Router[T]) Register(cmds ...Named[T]) {
	for _, c := range cmds {
		if c == nil {
			panic("command: Register with a nil command")
		}
		r.Handle(c.Name(), c)
	}
}

// Use appends middleware that wraps every command, registered before or after; the first
// middleware ever given is the outermost. It panics once the router has started serving.
func (r *Router[T]) Use(mw ...Middleware[T]) {
	r.configuring("Use")
	for _, m := range mw {
		if m == nil {
			panic("command: Use with a nil middleware")
		}
	}
	r.mw = append(r.mw, mw...)
	for _, rt := range r.routes {
		r.compose(rt)
	}
}

// NotFound sets the handler of requests whose key names no command (SuperSocket's
// HandleUnknownRequest). Middleware does not wrap it; its error goes to OnError. By default
// such requests are ignored. It panics once the router has started serving.
func (r *Router[T]) NotFound(h func(ctx *Context[T]) error) {
	r.configuring("NotFound")
	r.notFound = h
}

// OnError sets the handler of errors that commands (after their middleware) and the
// NotFound handler return, and, with the Recover option, of their panics as *PanicError.
// It may reply or close the session through ctx. By default the error is logged at Warn
// level on the server's Logger and the session stays open. It panics once the router has
// started serving.
func (r *Router[T]) OnError(h func(ctx *Context[T], err error)) {
	r.configuring("OnError")
	r.onError = h
}

// Commands returns the registered keys in registration order, for a HELP command say.
func (r *Router[T]) Commands() []string {
	keys := make([]string, len(r.routes))
	for i, rt := range r.routes {
		keys[i] = rt.name
	}
	return keys
}

// Lookup returns the command key would run, applying the router's case rule.
func (r *Router[T]) Lookup(key string) (Command[T], bool) {
	if rt := r.lookup(key); rt != nil {
		return rt.cmd, true
	}
	return nil, false
}

// Request handles one request: it has the shape of supersocket.Handlers.Request, so a
// router plugs into a server as Handlers{Request: r.Request}. It finds the command, runs
// it inside its middleware, or runs the NotFound handler, and hands a returned error to
// OnError. Safe for concurrent use.
//
// s may be nil to drive a router without a server (in tests of commands): ctx.Session and
// ctx.Data are then nil and Reply returns supersocket.ErrSessionClosed.
func (r *Router[T]) Request(s *supersocket.Session[T], req supersocket.Request) {
	if !r.serving.Load() {
		r.serving.Store(true)
	}
	key := req.Key
	if r.opts.keyFunc != nil {
		key = r.opts.keyFunc(req)
	}
	ctx := r.pool.Get().(*Context[T])
	ctx.sess, ctx.req, ctx.key, ctx.route = s, req, key, r.lookup(key)
	var err error
	if r.opts.recover {
		err = r.runRecovered(ctx)
	} else {
		err = r.run(ctx)
	}
	if err != nil {
		if r.onError != nil {
			r.onError(ctx, err)
		} else {
			logError(ctx, err)
		}
	}
	// Drop references to the session and the receive buffer; keep the fields' backing
	// array for the next request.
	fields := ctx.fields[:0]
	clear(ctx.fields)
	*ctx = Context[T]{fields: fields}
	r.pool.Put(ctx)
}

func (r *Router[T]) run(ctx *Context[T]) error {
	if ctx.route != nil {
		return ctx.route.run(ctx)
	}
	if r.notFound != nil {
		return r.notFound(ctx)
	}
	return nil
}

func (r *Router[T]) runRecovered(ctx *Context[T]) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &PanicError{Value: p, Stack: debug.Stack()}
		}
	}()
	return r.run(ctx)
}

// logError is the default OnError.
func logError[T any](ctx *Context[T], err error) {
	log, server, session := slog.Default(), "", ""
	if s := ctx.sess; s != nil {
		cfg := s.Server().Config()
		log, server, session = cfg.Logger, cfg.Name, s.ID()
	}
	log.Warn("command failed", "server", server, "session", session, "key", ctx.key, "err", err)
}

// compose builds rt.run: the command inside its own middleware, inside the router's.
func (r *Router[T]) compose(rt *route[T]) {
	h, ok := rt.cmd.(Handler[T])
	if !ok {
		h = rt.cmd.Execute
	}
	for i := len(rt.mw) - 1; i >= 0; i-- {
		h = rt.mw[i](h)
	}
	for i := len(r.mw) - 1; i >= 0; i-- {
		h = r.mw[i](h)
	}
	if h == nil {
		panic("command: a middleware returned a nil handler")
	}
	rt.run = h
}

// configuring panics once the router serves: its maps are read without locks.
func (r *Router[T]) configuring(method string) {
	if r.serving.Load() {
		panic("command: Router." + method + " called after the router started serving")
	}
}

// maxFoldedKey bounds the keys folded through a stack buffer; longer keys are rare and
// take the slow path.
const maxFoldedKey = 64

// lookup finds the route of key without allocating, or returns nil.
func (r *Router[T]) lookup(key string) *route[T] {
	if rt, ok := r.exact[key]; ok {
		return rt
	}
	if r.opts.caseSensitive {
		return nil
	}
	if len(key) <= maxFoldedKey {
		var buf [maxFoldedKey]byte
		ascii := true
		for i := 0; i < len(key); i++ {
			c := key[i]
			if c >= utf8.RuneSelf {
				ascii = false
				break
			}
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			buf[i] = c
		}
		if ascii {
			if rt, ok := r.folded[string(buf[:len(key)])]; ok {
				return rt
			}
			// An ASCII key may still fold to a non-ASCII one: "k" matches "\u212a" (Kelvin).
			return foldScan(r.unicode, key)
		}
	}
	return foldScan(r.routes, key)
}

func foldScan[T any](routes []*route[T], key string) *route[T] {
	for _, rt := range routes {
		if strings.EqualFold(rt.name, key) {
			return rt
		}
	}
	return nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func upperASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - ('a' - 'A')
		}
	}
	return string(b)
}
