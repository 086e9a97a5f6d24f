package client

import (
	"bytes"
	"unsafe"

	"github.com/supersocket-go/supersocket/filter"
)

// Message is one message the server sent, as the receive filter framed it: Key, Header,
// Body and Frame mean what the filter's documentation says, and Params splits Body as the
// filter does.
//
// Unlike a filter.Request, a Message owns its bytes: they are a copy nobody else writes to,
// valid for as long as the receiver keeps them. Header and Body share the Frame's copy (one
// allocation per message) and are capped at their own length, so appending to one never
// overwrites another.
type Message struct {
	filter.Request
}

// own copies req out of the receive buffer.
func own(req filter.Request) Message {
	frame := bytes.Clone(req.Frame)
	m := Message{Request: req}
	m.Frame = frame
	m.Header = rebase(req.Header, req.Frame, frame)
	m.Body = rebase(req.Body, req.Frame, frame)
	return m
}

// rebase returns the part of dst that s is of src, or a copy of s when s does not lie
// within src.
func rebase(s, src, dst []byte) []byte {
	if len(s) == 0 {
		if s == nil {
			return nil
		}
		return []byte{}
	}
	if off, ok := offset(src, s); ok {
		end := off + len(s)
		return dst[off:end:end]
	}
	return bytes.Clone(s)
}

// offset reports where inner starts within outer, if it lies wholly within it. The
// pointers are only compared, never turned back into pointers.
func offset(outer, inner []byte) (int, bool) {
	if len(inner) > len(outer) {
		return 0, false
	}
	o := uintptr(unsafe.Pointer(unsafe.SliceData(outer)))
	i := uintptr(unsafe.Pointer(unsafe.SliceData(inner)))
	if i < o || i-o > uintptr(len(outer)-len(inner)) {
		return 0, false
	}
	return int(i - o), true
}
