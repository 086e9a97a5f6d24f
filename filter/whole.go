package filter

import "fmt"

// Whole returns a Factory of filters for transports that deliver whole messages — a UDP
// datagram, a WebSocket message — that make each message one request: its first
// headerSize bytes are Header (0: none), the rest Body, all of it Frame; Key is empty.
// A message shorter than headerSize is malformed (ErrMalformed), one over the factory's
// limit too large (ErrTooLarge).
//
// Only for message transports: the server hands the filter one message at a time. Over a
// TCP stream nothing marks where a request ends, and the filter would take whatever one
// read delivered.
//
// Whole panics if headerSize < 0.
func Whole(headerSize int) Factory {
	if headerSize < 0 {
		panic(fmt.Sprintf("filter: Whole: header size %d is negative", headerSize))
	}
	return func(limit int) Filter { return &wholeFilter{header: headerSize, limit: limit} }
}

type wholeFilter struct {
	header, limit int
}

// Filter implements [Filter].
func (f *wholeFilter) Filter(data []byte) (Request, int, error) {
	switch {
	case len(data) > f.limit:
		return Request{}, 0, fmt.Errorf("%w: a %d-byte message is over the limit of %d", ErrTooLarge, len(data), f.limit)
	case len(data) < f.header:
		return Request{}, 0, fmt.Errorf("%w: a %d-byte message is shorter than its %d-byte header", ErrMalformed, len(data), f.header)
	}
	return Request{Header: data[:f.header], Body: data[f.header:], Frame: data}, len(data), nil
}
