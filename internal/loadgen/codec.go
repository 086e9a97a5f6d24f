package loadgen

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"strings"
)

// The protocols the load generator speaks.
const (
	protoLine = "line" // payload + "\r\n"; the reply is the same line (optionally after a command prefix)
	protoLen  = "len"  // 4-byte big-endian body length, then the body; the reply is the same frame
	protoEcho = "echo" // the echo app: 5-byte little-endian header (totalSize, packetID, reserved), body
)

var protos = []string{protoLine, protoLen, protoEcho}

// codec writes requests and checks replies for one protocol and message size.
//
// Every payload is stamped with its connection and sequence number, so a reply that
// comes back corrupted, out of order, duplicated or on the wrong connection differs
// from the one expected. The stamp is hex digits, the rest of the payload is drawn from
// a fixed pseudo-random text whose offset moves with the sequence number; a payload is
// printable and never holds a space, "\r" or "\n", so it also travels as a line.
type codec struct {
	proto   string
	prefix  []byte // line protocol: what precedes the payload in a request ("ECHO ")
	size    int    // payload bytes
	stampN  int    // payload bytes that hold the stamp
	reqLen  int    // request frame bytes
	repLen  int    // reply frame bytes
	pattern []byte // size + patternSpan bytes of filler
}

const (
	patternSpan  = 61 // filler offsets cycle through this many positions
	stampDigits  = 16
	stampSeqBits = 40 // the low bits of a stamp are the sequence number, the high ones the connection
	echoReserved = 0xA5
	lenHeader    = 4
	echoHeader   = 5
)

const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

// newCodec returns the codec of proto for size-byte payloads; prefix is -line-prefix. Its
// errors name the flag at fault.
func newCodec(proto, prefix string, size int) (*codec, error) {
	if size < 1 {
		return nil, fmt.Errorf("-size: %d: a message needs at least 1 byte", size)
	}
	c := &codec{proto: proto, size: size, stampN: min(size, stampDigits)}
	switch proto {
	case protoLine:
		if strings.ContainsAny(prefix, "\r\n") {
			return nil, fmt.Errorf("-line-prefix: %q holds a line break", prefix)
		}
		c.prefix = []byte(prefix)
		c.reqLen = len(prefix) + size + 2
		c.repLen = size + 2
	case protoLen:
		if size > math.MaxInt32 {
			return nil, fmt.Errorf("-size: %d is too large for a 4-byte length", size)
		}
		c.reqLen = lenHeader + size
		c.repLen = c.reqLen
	case protoEcho:
		if echoHeader+size > math.MaxUint16 {
			return nil, fmt.Errorf("-size: %d is too large for the echo header's uint16 total size (at most %d)", size, math.MaxUint16-echoHeader)
		}
		c.reqLen = echoHeader + size
		c.repLen = c.reqLen
	default:
		return nil, fmt.Errorf("-proto: unknown protocol %q (known: %s)", proto, strings.Join(protos, ", "))
	}
	if prefix != "" && proto != protoLine {
		return nil, fmt.Errorf("-line-prefix is for -proto %s only", protoLine)
	}
	c.pattern = make([]byte, size+patternSpan)
	x := uint64(0x9E3779B97F4A7C15)
	for i := range c.pattern {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		c.pattern[i] = alphabet[x&63]
	}
	return c, nil
}

// stamp returns the stamp of message seq of connection id: 16 hex digits.
func stamp(id, seq uint64) [stampDigits]byte {
	const hex = "0123456789abcdef"
	v := id<<stampSeqBits | seq&(1<<stampSeqBits-1)
	var s [stampDigits]byte
	for i := stampDigits - 1; i >= 0; i-- {
		s[i] = hex[v&15]
		v >>= 4
	}
	return s
}

// putPayload writes the payload of message seq of connection id into dst[:size].
func (c *codec) putPayload(dst []byte, id, seq uint64) {
	s := stamp(id, seq)
	n := copy(dst, s[stampDigits-c.stampN:])
	off := int(seq % patternSpan)
	copy(dst[n:c.size], c.pattern[off:])
}

// payloadOK reports whether p (size bytes) is the payload of message seq of connection id.
func (c *codec) payloadOK(p []byte, id, seq uint64) bool {
	s := stamp(id, seq)
	if !bytes.Equal(p[:c.stampN], s[stampDigits-c.stampN:]) {
		return false
	}
	off := int(seq % patternSpan)
	return bytes.Equal(p[c.stampN:], c.pattern[off:off+c.size-c.stampN])
}

// putRequest writes request seq of connection id into dst[:reqLen].
func (c *codec) putRequest(dst []byte, id, seq uint64) {
	dst = dst[:c.reqLen]
	switch c.proto {
	case protoLine:
		n := copy(dst, c.prefix)
		c.putPayload(dst[n:], id, seq)
		dst[c.reqLen-2], dst[c.reqLen-1] = '\r', '\n'
	case protoLen:
		binary.BigEndian.PutUint32(dst, uint32(c.size))
		c.putPayload(dst[lenHeader:], id, seq)
	case protoEcho:
		binary.LittleEndian.PutUint16(dst, uint16(c.reqLen))
		binary.LittleEndian.PutUint16(dst[2:], uint16(seq))
		dst[4] = echoReserved
		c.putPayload(dst[echoHeader:], id, seq)
	}
}

// replyOK reports whether b (repLen bytes) is the reply to request seq of connection id.
func (c *codec) replyOK(b []byte, id, seq uint64) bool {
	switch c.proto {
	case protoLine:
		n := c.size
		return b[n] == '\r' && b[n+1] == '\n' && c.payloadOK(b[:n], id, seq)
	case protoLen:
		return binary.BigEndian.Uint32(b) == uint32(c.size) && c.payloadOK(b[lenHeader:], id, seq)
	default: // protoEcho
		return binary.LittleEndian.Uint16(b) == uint16(c.repLen) &&
			binary.LittleEndian.Uint16(b[2:]) == uint16(seq) &&
			b[4] == 0 &&
			c.payloadOK(b[echoHeader:], id, seq)
	}
}

// describeMismatch says how got differs from the reply expected for seq, for the report.
func (c *codec) describeMismatch(got []byte, id, seq uint64) string {
	want := make([]byte, c.repLen)
	switch c.proto {
	case protoLine:
		c.putPayload(want, id, seq)
		want[c.size], want[c.size+1] = '\r', '\n'
	default:
		c.putRequest(want, id, seq)
		if c.proto == protoEcho {
			want[4] = 0
		}
	}
	i := 0
	for i < len(got) && got[i] == want[i] {
		i++
	}
	if i == len(got) {
		return fmt.Sprintf("reply %d: differs from the one expected", seq)
	}
	return fmt.Sprintf("reply %d: byte %d is %q, want %q", seq, i, got[i], want[i])
}
