package command_test

import (
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/supersocket-go/supersocket"
	"github.com/supersocket-go/supersocket/command"
	"github.com/supersocket-go/supersocket/filter"
)

// inspect runs fn on the context of one request with the given body.
func inspect(t *testing.T, body string, fn func(ctx *ctxN)) {
	t.Helper()
	ran := false
	r := command.New[none]()
	r.HandleFunc("X", func(ctx *ctxN) error { fn(ctx); ran = true; return nil })
	r.Request(nil, req("X", body))
	if !ran {
		t.Fatal("command did not run")
	}
}

func wantParamError(t *testing.T, err error, index int, value string, sentinel error) {
	t.Helper()
	var pe *command.ParamError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T), want a *ParamError", err, err)
	}
	if pe.Index != index || pe.Value != value || !errors.Is(err, sentinel) {
		t.Fatalf("ParamError %+v, want index %d, value %q, wrapping %v", pe, index, value, sentinel)
	}
}

func TestParams(t *testing.T) {
	inspect(t, "  12 -7  x 9223372036854775808 3.5 true ", func(ctx *ctxN) {
		if got, want := ctx.Params(), []string{"12", "-7", "x", "9223372036854775808", "3.5", "true"}; !slices.Equal(got, want) {
			t.Errorf("Params() = %q, want %q", got, want)
		}
		if n := ctx.NumParams(); n != 6 {
			t.Errorf("NumParams() = %d", n)
		}
		if v, err := ctx.Int(0); v != 12 || err != nil {
			t.Errorf("Int(0) = %d, %v", v, err)
		}
		if v, err := ctx.Int(1); v != -7 || err != nil {
			t.Errorf("Int(1) = %d, %v", v, err)
		}
		if s, err := ctx.String(2); s != "x" || err != nil {
			t.Errorf("String(2) = %q, %v", s, err)
		}
		if v, err := ctx.Uint(3); v != 1<<63 || err != nil {
			t.Errorf("Uint(3) = %d, %v", v, err)
		}
		if v, err := ctx.Float(4); v != 3.5 || err != nil {
			t.Errorf("Float(4) = %v, %v", v, err)
		}
		if v, err := ctx.Bool(5); !v || err != nil {
			t.Errorf("Bool(5) = %v, %v", v, err)
		}
	})
}

func TestParamErrors(t *testing.T) {
	inspect(t, "x 9223372036854775808 -1 1e999 maybe", func(ctx *ctxN) {
		_, err := ctx.Int(0)
		wantParamError(t, err, 0, "x", strconv.ErrSyntax)
		if got := err.Error(); got != `command: parameter 0 is not an integer: "x"` {
			t.Errorf("message %q", got)
		}
		_, err = ctx.Int(1)
		wantParamError(t, err, 1, "9223372036854775808", strconv.ErrRange)
		if got := err.Error(); got != `command: parameter 1 out of range: "9223372036854775808"` {
			t.Errorf("message %q", got)
		}
		_, err = ctx.Uint(2)
		wantParamError(t, err, 2, "-1", strconv.ErrSyntax)
		_, err = ctx.Float(3)
		wantParamError(t, err, 3, "1e999", strconv.ErrRange)
		_, err = ctx.Bool(4)
		wantParamError(t, err, 4, "maybe", strconv.ErrSyntax)
		if got := err.Error(); got != `command: parameter 4 is not a boolean: "maybe"` {
			t.Errorf("message %q", got)
		}
		for _, i := range []int{5, -1, math.MaxInt} {
			_, err = ctx.Int(i)
			wantParamError(t, err, i, "", command.ErrMissingParam)
			_, err = ctx.String(i)
			wantParamError(t, err, i, "", command.ErrMissingParam)
		}
		if got := err.Error(); !strings.Contains(got, "missing parameter") {
			t.Errorf("message %q", got)
		}
	})
}

func TestNoParams(t *testing.T) {
	inspect(t, "", func(ctx *ctxN) {
		if ctx.NumParams() != 0 || ctx.Params() != nil {
			t.Errorf("Params() = %q", ctx.Params())
		}
		_, err := ctx.Int(0)
		wantParamError(t, err, 0, "", command.ErrMissingParam)
	})
}

// TestParamsFollowTheFilter: parameters come from filter.Request.Params, so a
// count-split frame splits on its separator and keeps empty positional parameters.
func TestParamsFollowTheFilter(t *testing.T) {
	f := filter.CountSplitter('#', 5)(1024)
	q, n, err := f.Filter([]byte("#SET#a b##7#"))
	if n == 0 || err != nil {
		t.Fatalf("filter: n=%d err=%v", n, err)
	}
	r := command.New[none]()
	ran := false
	r.HandleFunc("set", func(ctx *ctxN) error {
		ran = true
		if got := ctx.Params(); !slices.Equal(got, []string{"a b", "", "7"}) {
			t.Errorf("Params() = %q", got)
		}
		if v, err := ctx.Int(2); v != 7 || err != nil {
			t.Errorf("Int(2) = %d, %v", v, err)
		}
		return nil
	})
	r.Request(nil, q)
	if !ran {
		t.Fatal("SET did not run")
	}
}

func TestContextAccessors(t *testing.T) {
	r := command.New[none]()
	r.HandleFunc("GET", func(ctx *ctxN) error {
		if ctx.Session() != nil || ctx.Data() != nil {
			t.Error("a nil session shows through the context")
		}
		if q := ctx.Request(); string(q.Frame) != "get a b\r\n" || string(ctx.Body()) != "a b" {
			t.Errorf("Request() = %+v", q)
		}
		if _, ok := ctx.Command().(command.Handler[none]); !ok {
			t.Errorf("Command() = %T", ctx.Command())
		}
		if err := ctx.Reply([]byte("x")); !errors.Is(err, supersocket.ErrSessionClosed) {
			t.Errorf("Reply without a session: %v", err)
		}
		return nil
	})
	r.NotFound(func(ctx *ctxN) error {
		if ctx.Command() != nil || ctx.Name() != "" || ctx.Key() != "PUT" {
			t.Errorf("NotFound context: command %v, name %q, key %q", ctx.Command(), ctx.Name(), ctx.Key())
		}
		return nil
	})
	r.Request(nil, req("get", "a b"))
	r.Request(nil, req("PUT", ""))
}

// TestContextReset: a pooled context carries nothing of one request into the next.
func TestContextReset(t *testing.T) {
	var got []int
	r := command.New[none]()
	r.HandleFunc("N", func(ctx *ctxN) error { got = append(got, ctx.NumParams()); return nil })
	for _, body := range []string{"1 2 3", "", "4", ""} {
		r.Request(nil, req("N", body))
	}
	if !slices.Equal(got, []int{3, 0, 1, 0}) {
		t.Fatalf("NumParams per request: %v", got)
	}
}

type loginArgs struct {
	User  string `json:"user"`
	Level int    `json:"level"`
}

func TestBind(t *testing.T) {
	inspect(t, `{"user":"ada","level":3,"extra":true}`, func(ctx *ctxN) {
		var a loginArgs
		if err := ctx.Bind(&a); err != nil || a != (loginArgs{"ada", 3}) {
			t.Errorf("Bind: %+v, %v", a, err)
		}
	})
	for _, body := range []string{`{"user":`, ``, `not json`, `{"level":"high"}`} {
		inspect(t, body, func(ctx *ctxN) {
			var a loginArgs
			err := ctx.Bind(&a)
			var be *command.BindError
			if !errors.As(err, &be) || be.Key != "X" {
				t.Fatalf("body %q: error %v (%T), want a *BindError", body, err, err)
			}
			if !strings.HasPrefix(err.Error(), "command X: bad JSON body: ") {
				t.Errorf("body %q: message %q", body, err)
			}
			var se *json.SyntaxError
			var te *json.UnmarshalTypeError
			if !errors.As(err, &se) && !errors.As(err, &te) {
				t.Errorf("body %q: %v does not wrap the json error", body, err)
			}
		})
	}
}

func TestJSONCommand(t *testing.T) {
	var got []loginArgs
	var errs []error
	r := command.New[none]()
	r.Handle("LOGIN", command.JSON(func(ctx *ctxN, a loginArgs) error {
		got = append(got, a)
		if a.Level < 0 {
			return errors.New("negative level")
		}
		return nil
	}))
	r.HandleFunc("PTR", command.JSON(func(ctx *ctxN, a *loginArgs) error {
		got = append(got, *a)
		return nil
	}))
	r.OnError(func(_ *ctxN, err error) { errs = append(errs, err) })
	r.Request(nil, req("login", `{"user":"ada","level":1}`))
	r.Request(nil, req("LOGIN", `{"user":"bob"`)) // bad JSON: the function does not run
	r.Request(nil, req("LOGIN", `{"user":"eve","level":-1}`))
	r.Request(nil, req("ptr", `{"user":"cy"}`))
	if want := []loginArgs{{"ada", 1}, {"eve", -1}, {"cy", 0}}; !slices.Equal(got, want) {
		t.Fatalf("decoded %+v, want %+v", got, want)
	}
	var be *command.BindError
	if len(errs) != 2 || !errors.As(errs[0], &be) || be.Key != "LOGIN" || errs[1].Error() != "negative level" {
		t.Fatalf("errors %v", errs)
	}
}
