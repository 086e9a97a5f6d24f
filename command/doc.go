// Package command is SuperSocket's command framework, the Go way: a [Router] finds the
// command a request names by its key, runs it inside the router's middleware (SuperSocket's
// command filters), and sends requests nobody handles to a NotFound handler (SuperSocket's
// HandleUnknownRequest).
//
//	r := command.New[Player]()
//	r.HandleFunc("ECHO", func(ctx *command.Context[Player]) error {
//		return ctx.Reply(ctx.Body(), []byte("\r\n"))
//	})
//	r.Handle("LOGIN", command.JSON(login))     // the body is JSON, decoded into login's argument
//	r.Register(MoveCommand{}, AttackCommand{}) // command types that know their own key
//	r.Use(countRequests)                       // middleware around every command
//	r.NotFound(func(ctx *command.Context[Player]) error { ... })
//
//	srv, err := supersocket.New(cfg, supersocket.Handlers[Player]{Request: r.Request})
//
// # Keys
//
// The key of a request is its Key field (the first word of a command line, as
// filter.CommandLine finds it), or what the [KeyFunc] option derives from the request for
// protocols whose key lives elsewhere (a binary header). By default keys match without
// regard to case, under Unicode simple case folding ([strings.EqualFold]), as SuperSocket's
// OrdinalIgnoreCase did; [CaseSensitive] makes them exact. The empty key is a key like any
// other: registering it handles requests without one (a blank command line).
//
// Looking a key up allocates nothing: an exact-match map is tried first, then, for a key of
// at most 64 ASCII bytes, a map of upper-cased keys indexed through a stack buffer. Longer
// or non-ASCII keys fall back to a scan with strings.EqualFold.
//
// # Commands
//
// A command is anything with an Execute(*Context[T]) error method ([Command]); a function
// of that shape is a [Handler], which is a Command too. A command type that also has a
// Name() string method ([Named]) can be registered without repeating its key, as
// SuperSocket's command loader did with ICommand.Name. [JSON] turns a function of a typed
// argument into a command that decodes the request body into it.
//
// A command reads its request through the [Context]: the session and its state (T, see
// supersocket.Session.Data), the key, the body, the parameters with typed accessors
// (Int, Uint, Float, Bool, String: a malformed or missing one is a *[ParamError]) and JSON
// binding (Bind: a *[BindError]). It answers with Context.Reply or the session's own
// methods.
//
// # Middleware
//
// A [Middleware] wraps the handler that runs a command: code before next(ctx) runs before
// the command (SuperSocket's OnCommandExecuting), code after it runs after and sees the
// command's error (OnCommandExecuted), and a middleware that returns without calling next
// short-circuits: the command and the middleware inside it do not run. Middleware given to
// Use wraps every command, the first given outermost; middleware given to Handle wraps
// that one command, inside the router's:
//
//	r.Use(A, B)
//	r.Handle("X", cmd, C)
//
//	request ─► A ─► B ─► C ─► cmd.Execute ─► C ─► B ─► A ─► OnError (when an error came back)
//
// Middleware wraps found commands only; an unknown key goes straight to the NotFound
// handler, as SuperSocket's HandleUnknownRequest bypassed command filters.
//
// Middleware is shared by every session, and sessions run in parallel: a middleware keeps
// per-session state in the session's T, reached through ctx.Data() or through an accessor
// the user supplies (a func(*T) *S), never in its closure. Handlers of one session never
// run concurrently, so that state needs no locking (see the supersocket package's event
// order).
//
// # Errors and panics
//
// A command that returns an error (after its middleware had its say) goes to the OnError
// handler, which may reply, close the session, or nothing. The default OnError logs the
// error at Warn level on the server's Logger and keeps the session open; it replies
// nothing, since only the application knows its protocol's error format. Set OnError
// when clients can trigger errors routinely, or the log grows with every bad request.
// The NotFound handler's error goes to OnError too.
//
// A panic in a command, a middleware or the NotFound handler is not recovered by
// default: it reaches the server's own recovery, which logs it and closes the session
// with CloseApplicationError, as SuperSocket's HandleException did; middleware code after
// next does not run. With the [Recover] option the router recovers it instead and hands
// OnError a *[PanicError]; the session stays open unless OnError closes it. A panic in
// OnError itself always reaches the server.
//
// # Lifetimes and cost
//
// A Context is pooled: it is valid only until the Request call that made it returns, and
// must not be kept or used by other goroutines (copy what must outlive it). The request's
// bytes follow the server's rule: valid until the Request handler returns. Routing a
// request to a command costs no allocation; reading parameters costs the allocations of
// filter.Request.Params, once per request.
//
// A Router is configured (Handle, Use, NotFound, OnError…) before it serves; once its
// Request method has run, the configuring methods panic. Request is safe for concurrent
// use by the sessions of any number of servers.
package command
