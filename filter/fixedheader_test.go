package filter

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

var errCustom = errors.New("custom failure")

// typeLength is a two-byte header: a type byte and a one-byte body length. Some types
// make bodyLength fail, to test how its results are handled.
func typeLength(h []byte) (int, error) {
	switch h[0] {
	case 'E':
		return 0, errCustom
	case 'M':
		return 0, fmt.Errorf("%w: bad type", ErrMalformed)
	case 'T':
		return 0, fmt.Errorf("%w: huge", ErrTooLarge)
	case 'N':
		return -int(h[1]) - 1, nil
	}
	return int(h[1]), nil
}

func TestFixedHeader(t *testing.T) {
	runCases(t, FixedHeader(2, typeLength), []filterCase{
		{name: "one", limit: 100, in: "A\x03abc", want: []event{req("", "A\x03", "abc", "A\x03abc")}},
		{name: "empty body completes at once", limit: 100, in: "A\x00", want: []event{req("", "A\x00", "", "A\x00")}},
		{name: "many and rest", limit: 100, in: "A\x01xB\x00C\x02yzD\x05ab",
			want: []event{req("", "A\x01", "x", "A\x01x"), req("", "B\x00", "", "B\x00"), req("", "C\x02", "yz", "C\x02yz")}, rest: "D\x05ab"},
		{name: "header incomplete", limit: 100, in: "A", rest: "A"},
		{name: "body incomplete", limit: 100, in: "A\x03ab", rest: "A\x03ab"},
		{name: "limit-1", limit: 5, in: "A\x02ab", want: []event{req("", "A\x02", "ab", "A\x02ab")}},
		{name: "limit", limit: 5, in: "A\x03abc", want: []event{req("", "A\x03", "abc", "A\x03abc")}},
		{name: "limit+1", limit: 5, in: "A\x04abcd", want: []event{fail(ErrTooLarge)}},
		{name: "too large with only the header", limit: 5, in: "A\xff", want: []event{fail(ErrTooLarge)}},
		{name: "header over limit", limit: 1, in: "", want: []event{fail(ErrTooLarge)}},
		{name: "header at limit", limit: 2, in: "A\x00", want: []event{req("", "A\x00", "", "A\x00")}},
		{name: "plain error is malformed", limit: 100, in: "E\x00", want: []event{fail(ErrMalformed)}},
		{name: "malformed kept", limit: 100, in: "M\x00", want: []event{fail(ErrMalformed)}},
		{name: "too large kept", limit: 100, in: "T\x00", want: []event{fail(ErrTooLarge)}},
		{name: "negative", limit: 100, in: "A\x00N\x00", want: []event{req("", "A\x00", "", "A\x00"), fail(ErrMalformed)}},
	})
}

func TestFixedHeaderErrors(t *testing.T) {
	f := FixedHeader(2, typeLength)
	_, _, err := f(100).Filter([]byte("E\x00"))
	if !errors.Is(err, errCustom) || !errors.Is(err, ErrMalformed) {
		t.Errorf("bodyLength error: %v, want it wrapped with ErrMalformed", err)
	}
	_, _, err = f(100).Filter([]byte("T\x00"))
	if !errors.Is(err, ErrTooLarge) || errors.Is(err, ErrMalformed) {
		t.Errorf("bodyLength ErrTooLarge: %v, want it kept as is", err)
	}
	_, _, err = f(10).Filter([]byte("A\xc8"))
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "200") || !strings.Contains(err.Error(), "10") {
		t.Errorf("declared too large: %v, want ErrTooLarge naming the length 200 and the limit 10", err)
	}
	_, _, err = f(100).Filter([]byte("N\x06"))
	if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "-7") {
		t.Errorf("negative length: %v, want ErrMalformed naming -7", err)
	}
}

func TestFixedHeaderCallsBodyLengthOncePerFrame(t *testing.T) {
	calls := 0
	f := FixedHeader(2, func(h []byte) (int, error) {
		calls++
		return int(h[1]), nil
	})(100)
	data := []byte("A\x05abcdeB\x00")
	got, _ := feed(t, f, data, ones)
	if len(got) != 2 || calls != 2 {
		t.Fatalf("%d requests, %d calls to bodyLength; want 2 and 2", len(got), calls)
	}
}

func TestFixedHeaderPanics(t *testing.T) {
	mustPanic(t, "header size 0", func() { FixedHeader(0, typeLength) })
	mustPanic(t, "nil bodyLength", func() { FixedHeader(2, nil) })
}

func FuzzFixedHeader(f *testing.F) {
	f.Add([]byte("A\x03abcB\x00C\x01x"), uint16(100), []byte{0, 1})
	f.Add([]byte("A\x00E\x00"), uint16(10), []byte{})
	f.Add([]byte("N\x01"), uint16(10), []byte{})
	f.Add([]byte("T\x01M\x00"), uint16(10), []byte{})
	f.Add([]byte("A\xff"), uint16(30), []byte{2})
	f.Fuzz(func(t *testing.T, data []byte, limit uint16, chunks []byte) {
		checkChunking(t, FixedHeader(2, typeLength), int(limit)%512+1, fuzzInput(data), chunkSizes(chunks))
	})
}

func BenchmarkFixedHeader(b *testing.B) {
	buf := repeat(1000, "A\x05hello", "B\x00", "C\x1athe quick brown fox jumps!")
	benchFilter(b, FixedHeader(2, typeLength), 1024, buf)
}
