package filter

import (
	"bytes"
	"fmt"
)

// Terminator returns a Factory of filters that end each request at term: SuperSocket's
// TerminatorReceiveFilter.
//
// Each Request has Body = the bytes before term and Frame = the same bytes plus term; Key
// and Header are empty. At the end of a message (a WebSocket message, a UDP datagram) the
// bytes left without term are the last request ([Finisher]). The frame, term included, may be at most the factory's limit: once
// that many bytes are buffered without a term ending within them, the filter fails with
// ErrTooLarge (at once if term itself is longer than the limit). The search resumes where
// the previous call stopped, so a request delivered one byte per read costs linear time.
//
// Terminator panics if term is empty. It copies term, so the caller may reuse its slice.
func Terminator(term []byte) Factory {
	if len(term) == 0 {
		panic("filter: Terminator: empty terminator")
	}
	term = bytes.Clone(term)
	return func(limit int) Filter {
		return &terminatorFilter{scan: markScanner{mark: term}, limit: limit}
	}
}

type terminatorFilter struct {
	scan  markScanner
	limit int
}

// Filter implements [Filter].
func (f *terminatorFilter) Filter(data []byte) (Request, int, error) {
	term := f.scan.mark
	if len(term) > f.limit {
		return Request{}, 0, fmt.Errorf("%w: terminator %q is longer than the limit of %d bytes", ErrTooLarge, term, f.limit)
	}
	end, err := f.scan.find(data, 0, f.limit, "terminator")
	if end == 0 || err != nil {
		return Request{}, 0, err
	}
	return Request{Body: data[:end-len(term)], Frame: data[:end]}, end, nil
}

// Finish implements [Finisher]: the bytes at the end of a message, without the
// terminator, are its last request (Body and Frame alike).
func (f *terminatorFilter) Finish(data []byte) (Request, int, error) {
	f.scan.reset()
	if len(data) > f.limit {
		return Request{}, 0, fmt.Errorf("%w: a %d-byte request (the limit is %d)", ErrTooLarge, len(data), f.limit)
	}
	return Request{Body: data, Frame: data}, len(data), nil
}
