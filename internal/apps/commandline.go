package apps

import (
	"bytes"
	"errors"
	"math"
	"strconv"
	"strings"

	"github.com/supersocket-go/supersocket"
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
func CommandLine(cfg supersocket.Config) (Server, error) {
	cfg.Filter = filter.CommandLine()
	return supersocket.New(cfg, supersocket.Handlers[struct{}]{Request: commandLineRequest})
}

var crlf = []byte("\r\n")

func commandLineRequest(s *supersocket.Session[struct{}], req supersocket.Request) {
	switch key := req.Key; {
	case key == "":
		// A blank line: telnet users press Enter; nothing to answer.
	case strings.EqualFold(key, "ECHO"):
		s.Send(req.Body, crlf)
	case strings.EqualFold(key, "ADD"):
		n, err := fold(req.Body, 0, addInt64)
		replyNumber(s, n, err)
	case strings.EqualFold(key, "MULT"):
		n, err := fold(req.Body, 1, mulInt64)
		replyNumber(s, n, err)
	case strings.EqualFold(key, "QUIT"):
		s.Send([]byte("BYE\r\n"))
		s.Close(supersocket.CloseServerClosing)
	default:
		s.Send([]byte("ERR unknown command: "), []byte(key), crlf)
	}
}

func replyNumber(s *supersocket.Session[struct{}], n int64, err error) {
	var buf [32]byte
	if err != nil {
		s.Send([]byte("ERR "), []byte(err.Error()), crlf)
		return
	}
	s.Send(strconv.AppendInt(buf[:0], n, 10), crlf)
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
