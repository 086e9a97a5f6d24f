package filter

import (
	"errors"
	"fmt"
)

// FixedHeader returns a Factory of filters for frames made of a fixed-size header that
// declares the length of the body after it: SuperSocket's FixedHeaderReceiveFilter.
//
// Once headerSize bytes have arrived, the filter calls bodyLength with them (once per
// frame; the result is remembered while the body arrives). bodyLength must not keep the
// header slice, which aliases the caller's buffer. Each Request has Header = the first
// headerSize bytes, Body = the bodyLength(header) bytes after them, and Frame = both; Key
// is empty. A body of length 0 completes the request with the header.
//
// Errors: an error from bodyLength is returned wrapped, and wraps ErrMalformed unless it
// already wraps ErrTooLarge or ErrMalformed; a negative length is ErrMalformed; a frame
// (header plus body) over the factory's limit is ErrTooLarge as soon as the header is
// complete, before any body byte is waited for. A headerSize over the limit fails at the
// first call.
//
// FixedHeader panics if headerSize <= 0 or bodyLength is nil.
func FixedHeader(headerSize int, bodyLength func(header []byte) (int, error)) Factory {
	if headerSize <= 0 {
		panic(fmt.Sprintf("filter: FixedHeader: header size %d must be positive", headerSize))
	}
	if bodyLength == nil {
		panic("filter: FixedHeader: nil bodyLength")
	}
	return func(limit int) Filter {
		return &fixedHeaderFilter{headerSize: headerSize, bodyLength: bodyLength, limit: limit, bodyLen: -1}
	}
}

type fixedHeaderFilter struct {
	headerSize int
	bodyLength func([]byte) (int, error)
	limit      int
	// bodyLen is the current frame's body length once its header has been read, else -1.
	bodyLen int
}

// Filter implements [Filter].
func (f *fixedHeaderFilter) Filter(data []byte) (Request, int, error) {
	if f.headerSize > f.limit {
		return Request{}, 0, fmt.Errorf("%w: header of %d bytes is over the limit of %d", ErrTooLarge, f.headerSize, f.limit)
	}
	if len(data) < f.headerSize {
		return Request{}, 0, nil
	}
	if f.bodyLen < 0 {
		n, err := f.bodyLength(data[:f.headerSize])
		switch {
		case err != nil:
			if errors.Is(err, ErrTooLarge) || errors.Is(err, ErrMalformed) {
				return Request{}, 0, fmt.Errorf("filter: fixed header: %w", err)
			}
			return Request{}, 0, fmt.Errorf("%w: fixed header: body length: %w", ErrMalformed, err)
		case n < 0:
			return Request{}, 0, fmt.Errorf("%w: header declares a negative body length %d", ErrMalformed, n)
		case n > f.limit-f.headerSize: // headerSize <= limit, so this cannot overflow
			return Request{}, 0, fmt.Errorf("%w: %d-byte header declares a %d-byte body, over the limit of %d bytes per frame",
				ErrTooLarge, f.headerSize, n, f.limit)
		}
		f.bodyLen = n
	}
	end := f.headerSize + f.bodyLen
	if len(data) < end {
		return Request{}, 0, nil
	}
	f.bodyLen = -1
	return Request{Header: data[:f.headerSize], Body: data[f.headerSize:end], Frame: data[:end]}, end, nil
}
