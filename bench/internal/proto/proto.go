// Package proto holds what the two peer echo servers share: the protocol names and the
// framing of each protocol, the same three that "supersocket bench -proto" speaks.
package proto

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// The protocols.
const (
	Line = "line" // a line ending "\n", echoed byte for byte
	Len  = "len"  // uint32 big-endian body length, then the body; the frame is echoed
	Echo = "echo" // SuperSocketLite's EchoServer: uint16 LE totalSize (incl. the 5-byte header), uint16 LE packetID, uint8 reserved, body; reply with reserved = 0
)

// Names lists the protocols.
var Names = []string{Line, Len, Echo}

// Check returns an error for an unknown protocol name.
func Check(name string) error {
	for _, n := range Names {
		if n == name {
			return nil
		}
	}
	return fmt.Errorf("unknown protocol %q (known: %s)", name, strings.Join(Names, ", "))
}

// MaxFrame is the largest frame the servers accept, as supersocket's default
// MaxRequestLength (64 KiB).
const MaxFrame = 64 << 10

// Header sizes.
const (
	LenHeader  = 4
	EchoHeader = 5
)

// ErrTooLarge is returned for a frame over MaxFrame, ErrMalformed for an echo header
// whose total size is below the header's.
var (
	ErrTooLarge  = errors.New("frame too large")
	ErrMalformed = errors.New("malformed frame")
)

// FrameLen returns the length of the binary frame (Len or Echo) whose header starts b,
// or 0 when b does not hold the whole header yet.
func FrameLen(protocol string, b []byte) (int, error) {
	var n int
	switch protocol {
	case Len:
		if len(b) < LenHeader {
			return 0, nil
		}
		n = LenHeader + int(binary.BigEndian.Uint32(b))
	case Echo:
		if len(b) < EchoHeader {
			return 0, nil
		}
		n = int(binary.LittleEndian.Uint16(b))
		if n < EchoHeader {
			return 0, ErrMalformed
		}
	default:
		panic("proto: FrameLen of " + protocol)
	}
	if n > MaxFrame {
		return 0, ErrTooLarge
	}
	return n, nil
}
