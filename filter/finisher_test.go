package filter

import (
	"errors"
	"testing"
)

// The line filters end a message's last request without its terminator, reset their scan
// state for the next message, and keep the limit.
func TestFinisher_LineFilters(t *testing.T) {
	cl := CommandLine()(16).(Finisher)
	if _, n, _ := cl.(Filter).Filter([]byte("ECHO hel")); n != 0 {
		t.Fatalf("an unfinished line was a request (n %d)", n)
	}
	req, n, err := cl.Finish([]byte("ECHO hel"))
	if err != nil || n != 8 || req.Key != "ECHO" || string(req.Body) != "hel" || string(req.Frame) != "ECHO hel" {
		t.Fatalf("Finish = %+v, %d, %v", req, n, err)
	}
	if req, n, _ := cl.(Filter).Filter([]byte("QUIT\r\n")); n != 6 || req.Key != "QUIT" {
		t.Fatalf("the next message after Finish: %+v, %d", req, n)
	}
	if req, _, _ := cl.Finish([]byte("ADD 1 2\r")); req.Key != "ADD" || string(req.Body) != "1 2" {
		t.Fatalf("a trailing CR is dropped: %+v", req)
	}
	if _, _, err := cl.Finish(make([]byte, 17)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Finish over the limit: %v", err)
	}

	term := Terminator([]byte("||"))(16).(Finisher)
	req, n, err = term.Finish([]byte("abc"))
	if err != nil || n != 3 || string(req.Body) != "abc" || string(req.Frame) != "abc" {
		t.Fatalf("Terminator Finish = %+v, %d, %v", req, n, err)
	}
	if _, _, err := term.Finish(make([]byte, 17)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Terminator Finish over the limit: %v", err)
	}
}
