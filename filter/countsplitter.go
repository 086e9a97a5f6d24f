package filter

import (
	"bytes"
	"fmt"
)

// CountSplitter returns a Factory of filters for frames made of a fixed number of
// separators: SuperSocket's CountSpliterReceiveFilter. A frame ends at the n-th occurrence
// of sep, which is part of the frame.
//
// Frame is everything up to and including that separator. Of the frame without its last
// separator and without one leading separator (if it starts with one), Key is the text
// before the first separator and Body the text after it; Params splits Body on sep and
// keeps empty parameters, since their positions matter. With sep '#' and n 4, the frame
// "#ADD#1#2#" gives Key "ADD", Body "1#2" and Params ["1" "2"]. Keys are interned per
// filter, as for [CommandLine]. A frame may be at most the factory's limit: once that many
// bytes are buffered without the n-th separator, the filter fails with ErrTooLarge (at once
// if n itself is over the limit). Counting resumes where the previous call stopped.
//
// CountSplitter panics if n <= 0.
func CountSplitter(sep byte, n int) Factory {
	if n <= 0 {
		panic(fmt.Sprintf("filter: CountSplitter: count %d must be positive", n))
	}
	return func(limit int) Filter { return &countSplitterFilter{sep: sep, n: n, limit: limit} }
}

type countSplitterFilter struct {
	sep   byte
	n     int
	limit int
	keys  keyCache
	// count separators lie in data[:pos], the part already scanned.
	count, pos int
}

// Filter implements [Filter].
func (f *countSplitterFilter) Filter(data []byte) (Request, int, error) {
	if f.n > f.limit {
		return Request{}, 0, fmt.Errorf("%w: %d separators cannot fit the limit of %d bytes", ErrTooLarge, f.n, f.limit)
	}
	if f.pos > len(data) {
		// A shorter buffer than last time breaks the contract; start over.
		f.count, f.pos = 0, 0
	}
	window := data[:min(len(data), f.limit)]
	for f.pos < len(window) {
		i := bytes.IndexByte(window[f.pos:], f.sep)
		if i < 0 {
			f.pos = len(window)
			break
		}
		f.pos += i + 1
		f.count++
		if f.count == f.n {
			end := f.pos
			f.count, f.pos = 0, 0
			return f.request(data[:end]), end, nil
		}
	}
	if len(data) >= f.limit {
		count := f.count
		f.count, f.pos = 0, 0
		return Request{}, 0, fmt.Errorf("%w: only %d of %d separators %q within the first %d bytes (the limit)",
			ErrTooLarge, count, f.n, f.sep, f.limit)
	}
	return Request{}, 0, nil
}

// request splits a complete frame into Key and Body.
func (f *countSplitterFilter) request(frame []byte) Request {
	inner := frame[:len(frame)-1]
	if len(inner) > 0 && inner[0] == f.sep {
		inner = inner[1:]
	}
	req := Request{Frame: frame, sep: f.sep, keepEmpty: true}
	if i := bytes.IndexByte(inner, f.sep); i >= 0 {
		req.Key = f.keys.intern(inner[:i])
		req.Body = inner[i+1:]
	} else {
		req.Key = f.keys.intern(inner)
		req.Body = inner[len(inner):]
	}
	return req
}
