package cluster

import (
	"encoding/binary"
	"errors"
	"sync"
	"unsafe"
)

// The binary frames of the hot paths (sends, closes, kicks, their acks, room
// publishes): uvarint lengths and numbers, no reflection, buffers from a pool. The
// control paths (heartbeats, queries) use JSON.

var errBadFrame = errors.New("cluster: malformed frame")

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// reader takes a frame apart; a short or malformed frame sets bad, and every later
// read returns zero values.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.bad = true
		r.b = nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) byte() byte {
	if len(r.b) == 0 {
		r.bad = true
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

// bytes returns the next length-prefixed field, aliasing the frame.
func (r *reader) bytes() []byte {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.bad = true
		r.b = nil
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) string() string { return string(r.bytes()) }

// rest returns what is left of the frame, aliasing it.
func (r *reader) rest() []byte {
	v := r.b
	r.b = nil
	return v
}

// unsafeString views b as a string without copying, for a lookup that does not keep
// the string while b is unchanged.
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// framePool holds frame buffers: nats.go copies a published payload before Publish
// returns, so a buffer goes back to the pool at once.
var framePool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

func getFrame() *[]byte { return framePool.Get().(*[]byte) }

func putFrame(b *[]byte) {
	if cap(*b) > 2*maxBatchBytes {
		return // a rare large message: do not keep its buffer
	}
	*b = (*b)[:0]
	framePool.Put(b)
}
