package filter

import (
	"bytes"
	"fmt"
)

// markScanner finds a terminator or end mark in a growing buffer without rescanning it.
//
// A filter is called again with the same bytes plus whatever arrived since, so a naive
// search from the start would make one-byte-per-read input quadratic. The scanner remembers
// how many bytes it has already searched and resumes len(mark)-1 bytes before that point,
// since a mark may straddle the old end of the data.
type markScanner struct {
	mark []byte
	// scanned is the length of the data already searched without finding mark.
	scanned int
}

// find returns the end (exclusive) of the first mark that starts at or after from and ends
// within the first limit bytes of data; 0 and a nil error when more bytes are needed; or
// an error wrapping ErrTooLarge once limit bytes are buffered without such a mark. what
// names the mark in that error. The scanner resets itself whenever it returns a result
// other than "need more", ready for the next frame.
func (s *markScanner) find(data []byte, from, limit int, what string) (int, error) {
	if s.scanned > len(data) {
		// The caller handed over a shorter buffer than last time, which the contract does
		// not allow; start over rather than skip bytes.
		s.scanned = 0
	}
	window := data
	if len(window) > limit {
		window = window[:limit]
	}
	start := max(from, s.scanned-len(s.mark)+1)
	if start < len(window) {
		if i := bytes.Index(window[start:], s.mark); i >= 0 {
			s.scanned = 0
			return start + i + len(s.mark), nil
		}
	}
	if len(data) >= limit {
		s.scanned = 0
		return 0, fmt.Errorf("%w: no %s %q within the first %d bytes (the limit)", ErrTooLarge, what, s.mark, limit)
	}
	s.scanned = len(data)
	return 0, nil
}

// reset forgets the scan position.
func (s *markScanner) reset() { s.scanned = 0 }

// Key interning bounds.
const (
	// maxInternedKeys caps the per-filter key cache: a protocol has a handful of commands,
	// and a peer sending endless distinct keys must not grow the cache without bound.
	maxInternedKeys = 64
	// maxInternedKeyLen keeps long (likely bogus) keys out of the cache.
	maxInternedKeyLen = 64
)

// keyCache interns request keys so that Request.Key costs no allocation once a stream has
// seen its commands. Lookups use m[string(b)], which the compiler performs without
// converting b. Beyond the cap, keys are allocated as ordinary strings.
type keyCache struct {
	m map[string]string
}

// intern returns b as a string, from the cache when possible.
func (c *keyCache) intern(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if s, ok := c.m[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(b) <= maxInternedKeyLen {
		if c.m == nil {
			c.m = make(map[string]string)
		}
		if len(c.m) < maxInternedKeys {
			c.m[s] = s
		}
	}
	return s
}
