package command

// JSON returns a command whose request body is JSON: each request's body is decoded into
// a fresh Args (Context.Bind) and handed to fn. A body that does not decode never
// reaches fn: the command returns the *BindError, which goes to OnError.
//
//	type loginArgs struct{ User, Password string }
//	r.Handle("LOGIN", command.JSON(func(ctx *command.Context[Player], a loginArgs) error {
//		…
//	}))
func JSON[T, Args any](fn func(ctx *Context[T], args Args) error) Handler[T] {
	if fn == nil {
		panic("command: JSON with a nil function")
	}
	return func(ctx *Context[T]) error {
		var args Args
		if err := ctx.Bind(&args); err != nil {
			return err
		}
		return fn(ctx, args)
	}
}
