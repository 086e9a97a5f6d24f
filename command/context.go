package command

import (
	"encoding/json"
	"strconv"

	"github.com/supersocket-go/supersocket"
)

// Context is one request on its way through the router: the session, the request, the
// command it found, and typed access to the parameters and the body.
//
// A Context is pooled: it is valid only until the router's Request call returns. Do not
// keep it, or hand it to another goroutine; copy what must outlive the request. Its
// methods are for the goroutine running the request.
type Context[T any] struct {
	sess  *supersocket.Session[T]
	req   supersocket.Request
	key   string
	route *route[T]
	// fields are the parameters as sub-slices of the body, split once per request on
	// first use into a slice the pooled Context keeps; params are their strings, made
	// only if Params is called.
	fields [][]byte
	split  bool
	params []string
}

// Session returns the session the request came from (nil when the router was called
// with a nil session).
func (c *Context[T]) Session() *supersocket.Session[T] { return c.sess }

// Data returns the session's state, a shortcut for Session().Data() (nil when there is
// no session). Middleware keeps its per-session state here.
func (c *Context[T]) Data() *T {
	if c.sess == nil {
		return nil
	}
	return c.sess.Data()
}

// Request returns the request. Its byte slices alias the session's receive buffer: valid
// until the Request handler returns.
func (c *Context[T]) Request() supersocket.Request { return c.req }

// Body returns the request's body: for a command line, everything after the key and its
// space, verbatim. It aliases the receive buffer.
func (c *Context[T]) Body() []byte { return c.req.Body }

// Key returns the request's key as it arrived (or as the KeyFunc option derived it).
func (c *Context[T]) Key() string { return c.key }

// Name returns the key the running command was registered under, which differs from
// Key in case when keys fold; it is "" in the NotFound handler.
func (c *Context[T]) Name() string {
	if c.route == nil {
		return ""
	}
	return c.route.name
}

// Command returns the command the key found, nil in the NotFound handler. Middleware may
// inspect it, e.g. for an interface that marks commands needing a login.
func (c *Context[T]) Command() Command[T] {
	if c.route == nil {
		return nil
	}
	return c.route.cmd
}

// Params returns the request's parameters, as filter.Request.Params splits them (on
// spaces for a command line, empty ones dropped). They are split once per request, on
// first use; the strings are the caller's to keep, the slice is shared by later calls.
// The typed accessors (Int, Uint, Float, Bool) and NumParams allocate nothing; Params
// and String allocate the strings they return.
func (c *Context[T]) Params() []string {
	if c.params == nil && c.NumParams() > 0 {
		c.params = make([]string, len(c.fields))
		for i, f := range c.fields {
			c.params[i] = string(f)
		}
	}
	return c.params
}

// NumParams returns the number of parameters.
func (c *Context[T]) NumParams() int {
	if !c.split {
		c.fields, c.split = c.req.AppendParams(c.fields[:0]), true
	}
	return len(c.fields)
}

// field returns parameter i, or a *ParamError wrapping ErrMissingParam.
func (c *Context[T]) field(i int) ([]byte, error) {
	if i < 0 || i >= c.NumParams() {
		return nil, &ParamError{Index: i, Err: ErrMissingParam}
	}
	return c.fields[i], nil
}

// String returns parameter i, counting from 0, or a *ParamError wrapping
// ErrMissingParam.
func (c *Context[T]) String(i int) (string, error) {
	f, err := c.field(i)
	if err != nil {
		return "", err
	}
	return string(f), nil
}

// The typed accessors below convert a field with string(f) right in the strconv call:
// strconv keeps no reference to its argument (its errors clone it), so the conversion
// does not escape, and for parameters up to 32 bytes it costs no allocation.

// Int returns parameter i as a base-10 int64. A missing or malformed parameter is a
// *ParamError wrapping ErrMissingParam, strconv.ErrSyntax or strconv.ErrRange.
func (c *Context[T]) Int(i int) (int64, error) {
	f, err := c.field(i)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseInt(string(f), 10, 64)
	if err != nil {
		return 0, paramError(i, string(f), "an integer", err)
	}
	return v, nil
}

// Uint returns parameter i as a base-10 uint64; errors as for Int.
func (c *Context[T]) Uint(i int) (uint64, error) {
	f, err := c.field(i)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseUint(string(f), 10, 64)
	if err != nil {
		return 0, paramError(i, string(f), "an unsigned integer", err)
	}
	return v, nil
}

// Float returns parameter i as a float64 (strconv.ParseFloat syntax); errors as for Int.
func (c *Context[T]) Float(i int) (float64, error) {
	f, err := c.field(i)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseFloat(string(f), 64)
	if err != nil {
		return 0, paramError(i, string(f), "a number", err)
	}
	return v, nil
}

// Bool returns parameter i as a bool (strconv.ParseBool: 1, t, true, 0, f, false…);
// errors as for Int.
func (c *Context[T]) Bool(i int) (bool, error) {
	f, err := c.field(i)
	if err != nil {
		return false, err
	}
	v, err := strconv.ParseBool(string(f))
	if err != nil {
		return false, paramError(i, string(f), "a boolean", err)
	}
	return v, nil
}

// Bind decodes the request's body as JSON into v, with encoding/json's rules (unknown
// fields are ignored). A body that is not valid JSON for v is a *BindError.
func (c *Context[T]) Bind(v any) error {
	if err := json.Unmarshal(c.req.Body, v); err != nil {
		return &BindError{Key: c.key, Err: err}
	}
	return nil
}

// Reply sends parts as one message on the session: Session().Send(parts...). The parts
// are copied before Reply returns. It returns supersocket.ErrSessionClosed when there
// is no session.
func (c *Context[T]) Reply(parts ...[]byte) error {
	if c.sess == nil {
		return supersocket.ErrSessionClosed
	}
	return c.sess.Send(parts...)
}
