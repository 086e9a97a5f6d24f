package filter

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// event is one outcome of a Filter call that a test records: a request (copied out of the
// buffer) or the error that ended the stream.
type event struct {
	Key                 string
	Header, Body, Frame []byte
	Err                 error
}

// req builds the expected event of a request.
func req(key, header, body, frame string) event {
	return event{Key: key, Header: []byte(header), Body: []byte(body), Frame: []byte(frame)}
}

// fail builds the expected event of an error wrapping sentinel.
func fail(sentinel error) event { return event{Err: sentinel} }

func (e event) String() string {
	if e.Err != nil {
		return fmt.Sprintf("error(%v)", e.Err)
	}
	return fmt.Sprintf("{Key:%q Header:%q Body:%q Frame:%q}", e.Key, e.Header, e.Body, e.Frame)
}

// kind returns the sentinel an error wraps, or nil.
func kind(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrTooLarge):
		return ErrTooLarge
	case errors.Is(err, ErrMalformed):
		return ErrMalformed
	}
	return err
}

// sameEvent compares two events: fields byte for byte, errors by the sentinel they wrap.
func sameEvent(a, b event) bool {
	if (a.Err == nil) != (b.Err == nil) {
		return false
	}
	if a.Err != nil {
		return kind(a.Err) == kind(b.Err)
	}
	return a.Key == b.Key && bytes.Equal(a.Header, b.Header) && bytes.Equal(a.Body, b.Body) && bytes.Equal(a.Frame, b.Frame)
}

// within reports whether s lies inside frame's backing array at the right place: the
// built-ins never copy request bytes, so every slice of a request must alias its frame.
func within(s, frame []byte) bool {
	if len(s) == 0 {
		return true
	}
	off := cap(frame) - cap(s)
	return off >= 0 && off+len(s) <= len(frame) && &frame[:cap(frame)][off] == &s[0]
}

// feed drives f the way a server does: it appends each chunk (of the sizes next returns)
// to a pending buffer, then calls f in a loop, consuming n bytes per request, until f asks
// for more (n == 0). It stops at the first error. It returns the events and the bytes left
// unconsumed at the end (nil after an error). It checks the contract as it goes: 0 <= n <=
// len(data), Frame == data[:n], every slice aliases the frame, and errors wrap a sentinel.
func feed(tb testing.TB, f Filter, data []byte, next func() int) ([]event, []byte) {
	tb.Helper()
	var evs []event
	var pending []byte
	for off := 0; ; {
		for {
			r, n, err := f.Filter(pending)
			if err != nil {
				if k := kind(err); k != ErrTooLarge && k != ErrMalformed {
					tb.Fatalf("error %v wraps neither ErrTooLarge nor ErrMalformed", err)
				}
				return append(evs, event{Err: err}), nil
			}
			if n < 0 || n > len(pending) {
				tb.Fatalf("n = %d with %d bytes pending", n, len(pending))
			}
			if n == 0 {
				break
			}
			if !bytes.Equal(r.Frame, pending[:n]) || &r.Frame[0] != &pending[0] {
				tb.Fatalf("Frame %q is not data[:%d] = %q", r.Frame, n, pending[:n])
			}
			if !within(r.Header, r.Frame) || !within(r.Body, r.Frame) {
				tb.Fatalf("Header %q or Body %q does not alias Frame %q", r.Header, r.Body, r.Frame)
			}
			evs = append(evs, event{Key: r.Key, Header: bytes.Clone(r.Header), Body: bytes.Clone(r.Body), Frame: bytes.Clone(r.Frame)})
			pending = pending[n:]
		}
		if off == len(data) {
			return evs, pending
		}
		size := min(max(next(), 1), len(data)-off)
		pending = append(pending, data[off:off+size]...)
		off += size
	}
}

// whole, ones and cycle are chunk-size sources for feed.
func whole() int { return 1 << 30 }
func ones() int  { return 1 }
func cycle(sizes []int) func() int {
	i := 0
	return func() int {
		if len(sizes) == 0 {
			return 1
		}
		s := sizes[i%len(sizes)]
		i++
		return s
	}
}

// maxFuzzInput caps the stream a fuzz target feeds. Longer inputs add little: limits in
// the targets are small, so a few hundred bytes already cross them. And Go's minimizer
// spends time quadratic in an input's length on every new interesting input, which with
// kilobyte inputs ate whole fuzzing runs; bytes past the cap change no coverage, so the
// minimizer cuts them at once.
const maxFuzzInput = 512

// fuzzInput caps a fuzz target's stream at maxFuzzInput bytes.
func fuzzInput(data []byte) []byte { return data[:min(len(data), maxFuzzInput)] }

// chunkSizes derives chunk sizes from fuzz input: one size per byte, 1 to 256, at most 32
// of them (cycled).
func chunkSizes(spec []byte) []int {
	spec = spec[:min(len(spec), 32)]
	sizes := make([]int, len(spec))
	for i, b := range spec {
		sizes[i] = int(b) + 1
	}
	return sizes
}

// checkChunking is the property every filter must have: however the stream is cut into
// reads, the filter finds the same requests (Key, Header, Body, Frame), fails (with the
// same sentinel) at the same point, and leaves the same bytes unconsumed. It compares
// feeding data whole, one byte at a time, and in the given chunk sizes. feed checks the
// per-call contract on the way. The factory is called afresh for every run.
func checkChunking(tb testing.TB, fac Factory, limit int, data []byte, sizes []int) {
	tb.Helper()
	want, wantRest := feed(tb, fac(limit), data, whole)
	for i, next := range []func() int{ones, cycle(sizes)} {
		got, rest := feed(tb, fac(limit), data, next)
		if !sameEvents(got, want) || !bytes.Equal(rest, wantRest) {
			how := "one byte per read"
			if i == 1 {
				how = fmt.Sprintf("chunks %v", sizes)
			}
			tb.Fatalf("limit %d, input %q\n%s:\n  %v rest %q\nwhole:\n  %v rest %q",
				limit, data, how, got, rest, want, wantRest)
		}
	}
}

func sameEvents(a, b []event) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !sameEvent(a[i], b[i]) {
			return false
		}
	}
	return true
}

// filterCase is one row of a filter's table test.
type filterCase struct {
	name  string
	limit int
	in    string
	want  []event
	// rest is what must be left unconsumed (when no error ends the stream).
	rest string
}

// runCases runs a table test. Each case is fed whole, one byte per read, split in two at
// every position, and in chunks of 2, 3 and 7 bytes: all must give the expected events.
func runCases(t *testing.T, fac Factory, cases []filterCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data := []byte(c.in)
			check := func(how string, next func() int) {
				t.Helper()
				got, rest := feed(t, fac(c.limit), data, next)
				if !sameEvents(got, c.want) {
					t.Fatalf("%s: got\n  %v\nwant\n  %v", how, got, c.want)
				}
				if len(got) > 0 && got[len(got)-1].Err != nil {
					return
				}
				if string(rest) != c.rest {
					t.Fatalf("%s: rest %q, want %q", how, rest, c.rest)
				}
			}
			check("whole", whole)
			check("one byte per read", ones)
			for _, k := range []int{2, 3, 7} {
				check(fmt.Sprintf("chunks of %d", k), cycle([]int{k}))
			}
			for i := 1; i < len(data); i++ {
				check(fmt.Sprintf("split at %d", i), cycle([]int{i, len(data)}))
			}
		})
	}
}

// mustPanic checks that f panics with a message containing want.
func mustPanic(t *testing.T, want string, f func()) {
	t.Helper()
	defer func() {
		t.Helper()
		r := recover()
		if r == nil {
			t.Fatalf("no panic, want one mentioning %q", want)
		}
		if msg := fmt.Sprint(r); !strings.Contains(msg, want) {
			t.Fatalf("panic %q does not mention %q", msg, want)
		}
	}()
	f()
}

// drain runs f over buf as a server would over a full buffer, and returns the number of
// requests. It is the body of the benchmarks, so it must not allocate.
func drain(f Filter, buf []byte) (int, error) {
	count := 0
	for len(buf) > 0 {
		_, n, err := f.Filter(buf)
		if err != nil {
			return count, err
		}
		if n == 0 {
			break
		}
		buf = buf[n:]
		count++
	}
	return count, nil
}

// benchFilter measures f over buf, a buffer of whole frames: b.N passes over it. Steady
// state must be allocation-free, so one warm-up pass (which may fill key caches) runs
// before the timer.
func benchFilter(b *testing.B, fac Factory, limit int, buf []byte) {
	f := fac(limit)
	count, err := drain(f, buf)
	if err != nil || count == 0 {
		b.Fatalf("warm-up: %d requests, error %v", count, err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		if _, err := drain(f, buf); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(count), "ns/req")
}

// repeat concatenates frames n times over.
func repeat(n int, frames ...string) []byte {
	var buf []byte
	for range n {
		for _, f := range frames {
			buf = append(buf, f...)
		}
	}
	return buf
}
