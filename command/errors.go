package command

import (
	"errors"
	"fmt"
	"strconv"
)

// ErrMissingParam is wrapped by the *ParamError of a parameter the request does not have.
var ErrMissingParam = errors.New("missing parameter")

// ParamError is a missing or malformed parameter, from the typed accessors of Context.
type ParamError struct {
	Index int    // the parameter's index, counting from 0
	Value string // the parameter as received ("" when missing)
	Want  string // what it should have been: "an integer", "a boolean"…; "" when missing
	// Err is ErrMissingParam, strconv.ErrSyntax (not a Want) or strconv.ErrRange (a Want
	// out of range).
	Err error
}

// Error describes the bad or missing parameter.
func (e *ParamError) Error() string {
	switch {
	case errors.Is(e.Err, ErrMissingParam):
		return fmt.Sprintf("command: missing parameter %d", e.Index)
	case errors.Is(e.Err, strconv.ErrRange):
		return fmt.Sprintf("command: parameter %d out of range: %q", e.Index, e.Value)
	default:
		return fmt.Sprintf("command: parameter %d is not %s: %q", e.Index, e.Want, e.Value)
	}
}

// Unwrap returns e.Err.
func (e *ParamError) Unwrap() error { return e.Err }

// paramError wraps a strconv error.
func paramError(i int, value, want string, err error) *ParamError {
	var ne *strconv.NumError
	if errors.As(err, &ne) {
		err = ne.Err
	}
	return &ParamError{Index: i, Value: value, Want: want, Err: err}
}

// BindError is a request body that Context.Bind (or a JSON command) could not decode.
type BindError struct {
	Key string // the request's key
	Err error  // from encoding/json: a *json.SyntaxError, *json.UnmarshalTypeError…
}

// Error names the command and what was wrong with its JSON body.
func (e *BindError) Error() string {
	return fmt.Sprintf("command %s: bad JSON body: %v", e.Key, e.Err)
}

// Unwrap returns e.Err.
func (e *BindError) Unwrap() error { return e.Err }

// PanicError is a panic the router recovered (with the Recover option), as given to
// OnError.
type PanicError struct {
	Value any    // what was passed to panic
	Stack []byte // the panicking goroutine's stack
}

// Error reports the recovered panic value.
func (e *PanicError) Error() string { return fmt.Sprintf("command: panic: %v", e.Value) }

// Unwrap returns Value when it is an error.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}
