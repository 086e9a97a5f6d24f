package filter

import (
	"bytes"
	"fmt"
)

// BeginEndMark returns a Factory of filters for frames enclosed in a begin and an end mark:
// SuperSocket's BeginEndMarkReceiveFilter.
//
// Every frame must start with begin: the filter fails with ErrMalformed as soon as the
// bytes received can no longer be a prefix of it (a first byte that differs fails at
// once). The end mark is searched for only after the begin mark, so the two may share
// bytes. Each Request has Body = the bytes between the marks and Frame = everything, marks
// included; Key and Header are empty. A frame, marks included, may be at most the
// factory's limit: once that many bytes are buffered without an end mark within them, the
// filter fails with ErrTooLarge (at once if the two marks alone are over the limit). The
// search resumes where the previous call stopped, so slow input costs linear time.
//
// BeginEndMark panics if either mark is empty. It copies both marks.
func BeginEndMark(begin, end []byte) Factory {
	if len(begin) == 0 {
		panic("filter: BeginEndMark: empty begin mark")
	}
	if len(end) == 0 {
		panic("filter: BeginEndMark: empty end mark")
	}
	begin, end = bytes.Clone(begin), bytes.Clone(end)
	return func(limit int) Filter {
		return &beginEndFilter{begin: begin, scan: markScanner{mark: end}, limit: limit}
	}
}

type beginEndFilter struct {
	begin []byte
	scan  markScanner
	limit int
	// begun records that the current frame's begin mark has been checked.
	begun bool
}

// Filter implements [Filter].
func (f *beginEndFilter) Filter(data []byte) (Request, int, error) {
	if len(f.begin) > f.limit-len(f.scan.mark) {
		return Request{}, 0, fmt.Errorf("%w: begin mark %q and end mark %q together are over the limit of %d bytes",
			ErrTooLarge, f.begin, f.scan.mark, f.limit)
	}
	if !f.begun || len(data) < len(f.begin) {
		k := min(len(data), len(f.begin))
		if !bytes.Equal(data[:k], f.begin[:k]) {
			f.begun = false
			f.scan.reset()
			return Request{}, 0, fmt.Errorf("%w: frame starts with %q, not the begin mark %q", ErrMalformed, data[:k], f.begin)
		}
		if k < len(f.begin) {
			return Request{}, 0, nil
		}
		f.begun = true
	}
	end, err := f.scan.find(data, len(f.begin), f.limit, "end mark")
	if end == 0 || err != nil {
		if err != nil {
			f.begun = false
		}
		return Request{}, 0, err
	}
	f.begun = false
	return Request{Body: data[len(f.begin) : end-len(f.scan.mark)], Frame: data[:end]}, end, nil
}
