package filter

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestTerminator(t *testing.T) {
	crlf := Terminator([]byte("\r\n"))
	runCases(t, crlf, []filterCase{
		{name: "one", limit: 100, in: "hello\r\n", want: []event{req("", "", "hello", "hello\r\n")}},
		{name: "many in one read", limit: 100, in: "a\r\nbb\r\n\r\nccc",
			want: []event{req("", "", "a", "a\r\n"), req("", "", "bb", "bb\r\n"), req("", "", "", "\r\n")}, rest: "ccc"},
		{name: "partial terminator waits", limit: 100, in: "ab\r", rest: "ab\r"},
		{name: "lone cr and lf are data", limit: 100, in: "a\rb\nc\r\n", want: []event{req("", "", "a\rb\nc", "a\rb\nc\r\n")}},
		{name: "empty body", limit: 2, in: "\r\n", want: []event{req("", "", "", "\r\n")}},
		{name: "limit-1", limit: 5, in: "abc\r\n"[1:], want: []event{req("", "", "bc", "bc\r\n")}},
		{name: "limit", limit: 5, in: "abc\r\n", want: []event{req("", "", "abc", "abc\r\n")}},
		{name: "limit+1", limit: 5, in: "abcd\r\n", want: []event{fail(ErrTooLarge)}},
		{name: "limit+1 terminator half in", limit: 5, in: "abcd\r", want: []event{fail(ErrTooLarge)}},
		{name: "limit buffered without terminator", limit: 5, in: "abcde", want: []event{fail(ErrTooLarge)}},
		{name: "under limit without terminator waits", limit: 5, in: "abcd", rest: "abcd"},
		{name: "second frame over limit", limit: 5, in: "ab\r\nabcdef\r\n", want: []event{req("", "", "ab", "ab\r\n"), fail(ErrTooLarge)}},
		{name: "terminator longer than limit", limit: 1, in: "", want: []event{fail(ErrTooLarge)}},
	})
	// Terminators whose prefix repeats: resuming a scan must not skip a match that starts
	// inside the previously scanned bytes.
	runCases(t, Terminator([]byte("aab")), []filterCase{
		{name: "aab", limit: 100, in: "aaabaab", want: []event{req("", "", "a", "aaab"), req("", "", "", "aab")}},
	})
	runCases(t, Terminator([]byte("abab")), []filterCase{
		{name: "abab", limit: 100, in: "xabababyabab", want: []event{req("", "", "x", "xabab"), req("", "", "aby", "abyabab")}},
	})
	runCases(t, Terminator([]byte{0}), []filterCase{
		{name: "nul", limit: 100, in: "a\x00\x00b", want: []event{req("", "", "a", "a\x00"), req("", "", "", "\x00")}, rest: "b"},
	})
}

func TestTerminatorLimitIsEarly(t *testing.T) {
	f := Terminator([]byte("\n"))(10)
	data := []byte("0123456789")
	for i := 0; i < 10; i++ {
		if _, n, err := f.Filter(data[:i]); n != 0 || err != nil {
			t.Fatalf("%d bytes: n=%d err=%v, want to wait", i, n, err)
		}
	}
	_, _, err := f.Filter(data)
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "10") {
		t.Fatalf("10 bytes without terminator at limit 10: err = %v, want ErrTooLarge naming the limit", err)
	}
}

// TestTerminatorLinear feeds a megabyte one byte per call. The scan must resume where it
// stopped: a rescanning filter would do about 5e11 byte comparisons here and time out.
func TestTerminatorLinear(t *testing.T) {
	const size = 1 << 20
	data := bytes.Repeat([]byte("x"), size)
	data = append(data, "\r\n"...)
	f := Terminator([]byte("\r\n"))(len(data)).(*terminatorFilter)
	for i := 1; i < len(data); i++ {
		if _, n, err := f.Filter(data[:i]); n != 0 || err != nil {
			t.Fatalf("%d bytes: n=%d err=%v", i, n, err)
		}
		if f.scan.scanned != i {
			t.Fatalf("after %d bytes the filter has scanned %d", i, f.scan.scanned)
		}
	}
	r, n, err := f.Filter(data)
	if err != nil || n != len(data) || len(r.Body) != size {
		t.Fatalf("n=%d err=%v body %d bytes", n, err, len(r.Body))
	}
	if f.scan.scanned != 0 {
		t.Fatalf("scan state %d not reset after a request", f.scan.scanned)
	}
}

func TestTerminatorCopiesTerm(t *testing.T) {
	term := []byte("\r\n")
	fac := Terminator(term)
	term[0] = 'x'
	checkEvents(t, fac(100), "a\r\n", req("", "", "a", "a\r\n"))
}

func TestTerminatorPanics(t *testing.T) {
	mustPanic(t, "empty terminator", func() { Terminator(nil) })
}

// checkEvents feeds in whole to f and compares the events.
func checkEvents(t *testing.T, f Filter, in string, want ...event) {
	t.Helper()
	got, _ := feed(t, f, []byte(in), whole)
	if !sameEvents(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func FuzzTerminator(f *testing.F) {
	f.Add([]byte("hello\r\nworld\r\n"), []byte("\r\n"), uint16(100), []byte{0, 2, 5})
	f.Add([]byte("aaabaabaab"), []byte("aab"), uint16(4), []byte{1})
	f.Add([]byte("xabababyabab"), []byte("abab"), uint16(7), []byte{3, 0})
	f.Add([]byte("no terminator at all"), []byte("\n"), uint16(5), []byte{})
	f.Fuzz(func(t *testing.T, data, term []byte, limit uint16, chunks []byte) {
		if len(term) == 0 {
			return
		}
		term = term[:min(len(term), 8)]
		checkChunking(t, Terminator(term), int(limit)%600+1, fuzzInput(data), chunkSizes(chunks))
	})
}

func BenchmarkTerminator(b *testing.B) {
	buf := repeat(1000, "hello world, this is a line\r\n", "short\r\n")
	benchFilter(b, Terminator([]byte("\r\n")), 1024, buf)
}
