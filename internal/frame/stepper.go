// Package frame steps a receive filter over buffered bytes: the rules every reader of
// requests needs, written once for the server's sessions and the client package.
//
// A [Stepper] holds a stream's current filter and its request-length limit. [Stepper.Next]
// runs the filter once and checks what it returns against the filter contract (package
// filter): a refusal, a request over the limit, or a wait for more bytes with the limit
// already buffered is the peer's fault ([ErrProtocol]); a filter that claims more bytes
// than it was given is a bug in the filter ([ErrFilterBug]). After the request has been
// handled, [Stepper.Advance] moves to the filter's chosen successor ([filter.Switcher]),
// unless the application set one itself meanwhile ([Stepper.Set]). [Stepper.Keep] keeps
// the unconsumed tail of a pooled buffer for the next read, growing it up to the limit.
package frame

import (
	"errors"
	"fmt"
	"math"

	"github.com/supersocket-go/supersocket/filter"
	"github.com/supersocket-go/supersocket/internal/pool"
)

// ErrFilterBug is wrapped by Next's error for a filter that broke its contract. Every
// other error of Next is the peer's fault: a protocol error.
var ErrFilterBug = errors.New("receive filter bug")

// Stepper runs one stream's filter. The zero value is not usable; call Use first. It is
// used by one goroutine at a time: the one reading the stream.
type Stepper struct {
	f     filter.Filter
	sw    filter.Switcher // f as a Switcher, or nil: asked once per filter, not per request
	limit int32           // int32 keeps the Stepper within 40 bytes (see supersocket's Session layout)
	set   bool            // Set was called since the last Next
}

// Use makes f the filter and limit the largest request, in bytes, from now on.
func (st *Stepper) Use(f filter.Filter, limit int) {
	st.limit = int32(min(limit, math.MaxInt32))
	st.use(f)
}

func (st *Stepper) use(f filter.Filter) {
	st.f = f
	st.sw, _ = f.(filter.Switcher)
}

// Set replaces the filter from the next request on, overriding the choice a Switcher
// would make for the request being handled.
func (st *Stepper) Set(f filter.Filter) {
	st.use(f)
	st.set = true
}

// Limit returns the largest request length.
func (st *Stepper) Limit() int { return int(st.limit) }

// Next runs the filter once over data. n > 0: req is the request at data's front, n bytes
// long; n == 0 with a nil error: more bytes are needed. An error is a protocol error (the
// filter's own, or one wrapping filter.ErrTooLarge) unless it wraps ErrFilterBug. A panic
// in the filter is not recovered here: the caller decides what it costs (the server
// guards a whole batch with one recover).
func (st *Stepper) Next(data []byte) (req filter.Request, n int, err error) {
	req, n, err = st.f.Filter(data)
	if err = st.Check(n, len(data), err); err != nil {
		return req, 0, err
	}
	return req, n, nil
}

// Filter returns the current filter, for a caller that runs it itself and hands its
// result to Check: the server's dispatch does, so that a request is copied once, from
// the filter to the handler, rather than once more through Next.
func (st *Stepper) Filter() filter.Filter { return st.f }

// Check sorts the filter's result for data of length have, as Next describes: nil for a
// request (n > 0) or a wait for more bytes (n == 0), else the error to close with.
func (st *Stepper) Check(n, have int, err error) error {
	switch {
	case err != nil:
		return err
	case n == 0:
		if have >= int(st.limit) {
			return fmt.Errorf("%w: %d bytes buffered without a complete request (MaxRequestLength %d)",
				filter.ErrTooLarge, have, st.limit)
		}
		return nil
	case n < 0 || n > have:
		return fmt.Errorf("%w: the filter consumed more bytes than it was given (%d of %d)", ErrFilterBug, n, have)
	case n > int(st.limit):
		return fmt.Errorf("%w: %d-byte request (MaxRequestLength %d)", filter.ErrTooLarge, n, st.limit)
	}
	st.set = false
	return nil
}

// Finish is Next at the end of a message-oriented unit (a WebSocket message, a UDP
// datagram) whose last bytes Next could not complete: the filter's Finisher takes them as
// the last request, if the filter has one; otherwise, or if it refuses them, the message
// is malformed (a protocol error).
func (st *Stepper) Finish(data []byte) (req filter.Request, n int, err error) {
	fin, ok := st.f.(filter.Finisher)
	if !ok {
		return req, 0, fmt.Errorf("%w: the message ends inside a request (%d bytes left over): a message must hold whole requests",
			filter.ErrMalformed, len(data))
	}
	req, n, err = fin.Finish(data)
	switch {
	case err != nil:
		return req, 0, err
	case n != len(data):
		return req, 0, fmt.Errorf("%w: Finish consumed %d of the %d bytes left in a message", ErrFilterBug, n, len(data))
	case n > int(st.limit):
		return req, 0, fmt.Errorf("%w: %d-byte request (MaxRequestLength %d)", filter.ErrTooLarge, n, st.limit)
	}
	st.set = false
	return req, n, nil
}

// Advance follows the filter's choice of a successor after the last request was
// handled, unless Set was called meanwhile.
func (st *Stepper) Advance() {
	// Only Set changes the filter between Next and Advance, so without a Set, sw is
	// still the filter that produced the request.
	if st.sw != nil && !st.set {
		if next := st.sw.Next(); next != nil {
			st.use(next)
		}
	}
}

// Keep returns the unconsumed tail rest of the pooled buffer buf moved to its front, in
// a buffer with spare capacity for the next read: at least minCap in all, and twice
// buf's capacity (up to the limit) when rest fills buf. A buffer that had to grow goes
// back to the pool.
func (st *Stepper) Keep(buf, rest []byte, minCap int) []byte {
	return pool.Compact(buf, rest, minCap, int(st.limit))
}
