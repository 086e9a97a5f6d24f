// Package pool keeps byte buffers in power-of-two size classes so that receive buffers and
// send chunks are reused across sessions instead of pinned by them.
package pool

import (
	"math/bits"
	"sync"
)

const (
	minShift = 9  // 512 B, the smallest class
	maxShift = 22 // 4 MiB, the largest pooled class; larger buffers are left to the GC
)

var classes [maxShift - minShift + 1]sync.Pool

// headers recycles the *[]byte boxes that carry buffers through the class pools, so
// neither Get nor Put allocates in steady state.
var headers = sync.Pool{New: func() any { return new([]byte) }}

// class returns the index of the smallest class holding n bytes, or -1 past the largest.
func class(n int) int {
	if n <= 1<<minShift {
		return 0
	}
	s := bits.Len(uint(n - 1))
	if s > maxShift {
		return -1
	}
	return s - minShift
}

// Get returns a buffer of length n (its capacity is n rounded up to a class size).
// Its contents are undefined.
func Get(n int) []byte {
	c := class(n)
	if c < 0 {
		return make([]byte, n)
	}
	if p, ok := classes[c].Get().(*[]byte); ok {
		b := (*p)[:n]
		*p = nil
		headers.Put(p)
		return b
	}
	return make([]byte, n, 1<<(c+minShift))
}

// Put returns b to its class. Buffers whose capacity is not exactly a class size (for
// instance those Get allocated past the largest class) are dropped. The caller must not
// use b afterwards.
func Put(b []byte) {
	c := cap(b)
	if c < 1<<minShift || c > 1<<maxShift || c&(c-1) != 0 {
		return
	}
	p := headers.Get().(*[]byte)
	*p = b[:c]
	classes[class(c)].Put(p)
}

// Compact keeps rest, the unconsumed tail of the pooled buffer buf, for the next read:
// it moves rest to the front and returns a buffer holding it with spare capacity, at
// least minCap in all, and twice buf's capacity (bounded by maxCap) when rest fills buf.
// When a bigger buffer is needed, buf goes back to the pool.
func Compact(buf, rest []byte, minCap, maxCap int) []byte {
	n := len(rest)
	if n > 0 && &rest[0] != &buf[0] {
		// rest aliases buf's tail; copy handles the overlap. Nothing is copied when
		// nothing was consumed: a large frame arriving over many reads would be moved
		// onto itself after each of them, quadratic in its size.
		copy(buf, rest)
	}
	buf = buf[:n]
	want := minCap
	if n == cap(buf) {
		want = max(want, min(2*cap(buf), maxCap))
	}
	if cap(buf) >= want {
		return buf
	}
	bigger := Get(want)[:n]
	copy(bigger, buf)
	Put(buf)
	return bigger
}
