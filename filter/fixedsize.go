package filter

import "fmt"

// FixedSize returns a Factory of filters that cut the stream into requests of exactly size
// bytes: SuperSocket's FixedSizeReceiveFilter. Body and Frame are those bytes; Key and
// Header are empty. If size is over the factory's limit, the filter fails with ErrTooLarge
// at its first call, since no request could ever fit.
//
// FixedSize panics if size <= 0.
func FixedSize(size int) Factory {
	if size <= 0 {
		panic(fmt.Sprintf("filter: FixedSize: size %d must be positive", size))
	}
	return func(limit int) Filter { return &fixedSizeFilter{size: size, limit: limit} }
}

type fixedSizeFilter struct {
	size, limit int
}

// Filter implements [Filter].
func (f *fixedSizeFilter) Filter(data []byte) (Request, int, error) {
	if f.size > f.limit {
		return Request{}, 0, fmt.Errorf("%w: fixed size of %d bytes is over the limit of %d", ErrTooLarge, f.size, f.limit)
	}
	if len(data) < f.size {
		return Request{}, 0, nil
	}
	frame := data[:f.size]
	return Request{Body: frame, Frame: frame}, f.size, nil
}
