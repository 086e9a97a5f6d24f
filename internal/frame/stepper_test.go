package frame

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/supersocket-go/supersocket/filter"
	"github.com/supersocket-go/supersocket/internal/pool"
)

// script is a filter that returns what its fields say.
type script struct {
	n    int
	err  error
	next filter.Filter // as a Switcher
	asks int           // Next calls
}

func (f *script) Filter(data []byte) (filter.Request, int, error) {
	return filter.Request{Frame: data[:min(max(f.n, 0), len(data))]}, f.n, f.err
}

func (f *script) Next() filter.Filter {
	f.asks++
	return f.next
}

func stepper(f filter.Filter, limit int) *Stepper {
	st := &Stepper{}
	st.Use(f, limit)
	return st
}

// Next sorts every filter result into request, wait, protocol error or filter bug.
func TestNext_Cases(t *testing.T) {
	malformed := errors.New("bad header")
	for _, tc := range []struct {
		name    string
		f       filter.Filter
		data    int
		wantN   int
		wantErr string // "" none, else a substring
		bug     bool
		tooBig  bool
	}{
		{"request", &script{n: 3}, 5, 3, "", false, false},
		{"needs more", &script{n: 0}, 5, 0, "", false, false},
		{"needs more, limit buffered", &script{n: 0}, 10, 0, "10 bytes buffered without a complete request (MaxRequestLength 10)", false, true},
		{"filter's own error", &script{err: malformed}, 5, 0, "bad header", false, false},
		{"over the limit", &script{n: 11}, 12, 0, "11-byte request (MaxRequestLength 10)", false, true},
		{"overrun", &script{n: 6}, 5, 0, "consumed more bytes than it was given (6 of 5)", true, false},
		{"negative", &script{n: -1}, 5, 0, "consumed more bytes than it was given (-1 of 5)", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, n, err := stepper(tc.f, 10).Next(make([]byte, tc.data))
			if n != tc.wantN {
				t.Errorf("n = %d, want %d", n, tc.wantN)
			}
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("err = %v, want none", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("err = %v, want it to say %q", err, tc.wantErr)
			}
			if got := errors.Is(err, ErrFilterBug); got != tc.bug {
				t.Errorf("errors.Is(err, ErrFilterBug) = %v, want %v", got, tc.bug)
			}
			if got := errors.Is(err, filter.ErrTooLarge); got != tc.tooBig {
				t.Errorf("errors.Is(err, filter.ErrTooLarge) = %v, want %v", got, tc.tooBig)
			}
			if tc.name == "filter's own error" && !errors.Is(err, malformed) {
				t.Errorf("the filter's error is not wrapped: %v", err)
			}
		})
	}
}

// Advance follows the Switcher's choice, keeps the filter when it names none, and yields
// to a Set made while the request was handled.
func TestAdvance_SwitcherAndSet(t *testing.T) {
	second := &script{n: 2}
	first := &script{n: 1, next: second}
	st := stepper(first, 10)
	if _, n, _ := st.Next([]byte("abc")); n != 1 {
		t.Fatalf("first filter: n = %d", n)
	}
	st.Advance()
	if _, n, _ := st.Next([]byte("abc")); n != 2 {
		t.Fatalf("after Advance: n = %d, want the second filter's 2", n)
	}
	st.Advance() // second names no successor: it stays
	if _, n, _ := st.Next([]byte("abc")); n != 2 || second.asks != 1 {
		t.Fatalf("after a nil Next: n = %d, asks %d", n, second.asks)
	}

	// A Set during the request overrides the Switcher, which is not even asked.
	third := &script{n: 3}
	first.asks = 0
	st = stepper(first, 10)
	st.Next([]byte("abc"))
	st.Set(third)
	st.Advance()
	if first.asks != 0 {
		t.Error("the Switcher was asked although Set chose the next filter")
	}
	if _, n, _ := st.Next([]byte("abc")); n != 3 {
		t.Fatalf("after Set: n = %d, want 3", n)
	}
	// The Set holds for one request only: the next Advance asks the (new) filter again.
	if st.set {
		t.Fatal("Set still marked after the next request")
	}
}

// Keep moves the unconsumed tail to the front and grows the buffer, bounded by the limit.
func TestKeep(t *testing.T) {
	st := stepper(&script{}, 1<<20)
	buf := pool.Get(512)
	copy(buf, bytes.Repeat([]byte{'x'}, 508))
	copy(buf[508:], "tail")
	kept := st.Keep(buf, buf[508:], 4096)
	if string(kept) != "tail" || cap(kept) < 4096 {
		t.Fatalf("Keep = %q (cap %d), want tail with room for 4096", kept, cap(kept))
	}
	full := pool.Get(512)
	kept = st.Keep(full, full, 0)
	if len(kept) != 512 || cap(kept) < 1024 {
		t.Fatalf("a full buffer kept whole: len %d cap %d, want it doubled", len(kept), cap(kept))
	}
	small := stepper(&script{}, 600)
	full = pool.Get(512)
	if kept = small.Keep(full, full, 0); cap(kept) > 1024 {
		t.Fatalf("growth past the limit: cap %d", cap(kept))
	}
}
