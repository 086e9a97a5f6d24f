package websocket

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
)

// Opcode is a frame's opcode (RFC 6455 §5.2).
type Opcode uint8

// The opcodes RFC 6455 defines; the others are reserved.
const (
	OpContinuation Opcode = 0x0
	OpText         Opcode = 0x1
	OpBinary       Opcode = 0x2
	OpClose        Opcode = 0x8
	OpPing         Opcode = 0x9
	OpPong         Opcode = 0xA
)

// IsControl reports whether op is a control opcode (close, ping, pong, or reserved 0xB–0xF).
func (op Opcode) IsControl() bool { return op&0x8 != 0 }

// IsReserved reports whether op is one RFC 6455 reserves (0x3–0x7, 0xB–0xF).
func (op Opcode) IsReserved() bool {
	switch op {
	case OpContinuation, OpText, OpBinary, OpClose, OpPing, OpPong:
		return false
	}
	return true
}

// Header is a frame's header.
type Header struct {
	Fin    bool
	Rsv    uint8 // RSV1..RSV3 as bits 2..0 (RSV1 = 4: a compressed message)
	Op     Opcode
	Masked bool
	Key    [4]byte // the masking key, when Masked
	Length int64   // the payload length
}

// Rsv1 is Header.Rsv's RSV1 bit: permessage-deflate marks a compressed message with it.
const Rsv1 = 4

// MaxControlPayload is the largest payload of a control frame (RFC 6455 §5.5).
const MaxControlPayload = 125

// MaxHeaderLen is the longest frame header: 2 bytes, 8 of extended length, 4 of mask key.
const MaxHeaderLen = 14

// ErrFrameTooLarge reports a frame whose declared length is over the limit it was read
// with; the caller closes with CloseMessageTooBig.
var ErrFrameTooLarge = errors.New("websocket: frame too large")

// ProtocolError is a frame that breaks RFC 6455; the caller closes with Code.
type ProtocolError struct {
	Code   CloseCode
	Reason string
}

func (e *ProtocolError) Error() string { return "websocket: " + e.Reason }

func protocolError(format string, args ...any) error {
	return &ProtocolError{Code: CloseProtocolError, Reason: fmt.Sprintf(format, args...)}
}

// ParseHeader reads a frame header at the front of b. n > 0 is the header's length; n ==
// 0 with a nil error means b does not hold a whole header yet. A declared payload over
// limit is ErrFrameTooLarge, refused before anything is buffered for it; a malformed
// length is a *ProtocolError. ParseHeader checks only the header's own encoding: the
// caller checks what the header means in its state (masking, opcodes, RSV bits,
// fragmentation).
func ParseHeader(b []byte, limit int64) (h Header, n int, err error) {
	if len(b) < 2 {
		return h, 0, nil
	}
	h.Fin = b[0]&0x80 != 0
	h.Rsv = (b[0] >> 4) & 0x7
	h.Op = Opcode(b[0] & 0x0F)
	h.Masked = b[1]&0x80 != 0
	n = 2
	switch l := int64(b[1] & 0x7F); l {
	case 126:
		if len(b) < 4 {
			return h, 0, nil
		}
		h.Length = int64(binary.BigEndian.Uint16(b[2:]))
		n = 4
	case 127:
		if len(b) < 10 {
			return h, 0, nil
		}
		v := binary.BigEndian.Uint64(b[2:])
		if v>>63 != 0 {
			return h, 0, protocolError("64-bit payload length with its most significant bit set")
		}
		h.Length = int64(v)
		n = 10
	default:
		h.Length = l
	}
	if h.Length > limit {
		return h, 0, fmt.Errorf("%w: %d-byte payload (limit %d)", ErrFrameTooLarge, h.Length, limit)
	}
	if h.Masked {
		if len(b) < n+4 {
			return h, 0, nil
		}
		copy(h.Key[:], b[n:n+4])
		n += 4
	}
	return h, n, nil
}

// AppendHeader appends a frame header to dst: fin, rsv (Header.Rsv's bits), op, the
// payload length, and, with key non-nil, the mask bit and key (a client's frames).
func AppendHeader(dst []byte, fin bool, rsv uint8, op Opcode, length int, key *[4]byte) []byte {
	b0 := byte(op) | rsv<<4
	if fin {
		b0 |= 0x80
	}
	var m byte
	if key != nil {
		m = 0x80
	}
	switch {
	case length <= 125:
		dst = append(dst, b0, m|byte(length))
	case length <= 0xFFFF:
		dst = append(dst, b0, m|126, byte(length>>8), byte(length))
	default:
		dst = append(dst, b0, m|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(length))
	}
	if key != nil {
		dst = append(dst, key[:]...)
	}
	return dst
}

// Mask XORs b with key, as the payload bytes from offset pos of a frame (masking is its
// own inverse: it also unmasks). It returns the position after b, for the next call on
// the same frame.
func Mask(key [4]byte, pos int, b []byte) int {
	k := uint32(key[0]) | uint32(key[1])<<8 | uint32(key[2])<<16 | uint32(key[3])<<24
	k = bits.RotateLeft32(k, -8*(pos&3))
	i := 0
	if len(b) >= 8 {
		k64 := uint64(k) | uint64(k)<<32
		for ; i+8 <= len(b); i += 8 {
			v := binary.LittleEndian.Uint64(b[i:])
			binary.LittleEndian.PutUint64(b[i:], v^k64)
		}
	}
	for ; i < len(b); i++ {
		b[i] ^= byte(k >> (8 * (i & 3)))
	}
	return pos + len(b)
}
