package wsclient

import (
	"encoding/binary"
	"math/rand/v2"

	"github.com/supersocket-go/supersocket/internal/websocket"
)

// NewMaskKey returns a fresh masking key. It draws from math/rand/v2's global source:
// ChaCha8, seeded by the runtime from the operating system's entropy, per thread, so it
// is unpredictable to the peer as RFC 6455 §5.3 asks, safe from any goroutine, and costs
// a few nanoseconds rather than crypto/rand's system call per frame.
func NewMaskKey() [4]byte {
	var k [4]byte
	binary.LittleEndian.PutUint32(k[:], rand.Uint32())
	return k
}

// FrameLen returns the length of a client frame (masked) with a payload of n bytes.
func FrameLen(n int) int {
	switch {
	case n <= 125:
		return 6 + n
	case n <= 0xFFFF:
		return 8 + n
	}
	return 14 + n
}

// AppendFrame appends one client frame to dst: fin, op, a fresh masking key, and the
// payload that parts make, masked. The parts are copied, never modified.
func AppendFrame(dst []byte, fin bool, op websocket.Opcode, parts ...[]byte) []byte {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	key := NewMaskKey()
	dst = websocket.AppendHeader(dst, fin, 0, op, n, &key)
	pos := 0
	for _, p := range parts {
		start := len(dst)
		dst = append(dst, p...)
		pos = websocket.Mask(key, pos, dst[start:])
	}
	return dst
}

// AppendClose appends a client close frame with code and reason.
func AppendClose(dst []byte, code websocket.CloseCode, reason string) []byte {
	var b [websocket.MaxControlPayload]byte
	return AppendFrame(dst, true, websocket.OpClose, websocket.AppendClose(b[:0], code, reason))
}
