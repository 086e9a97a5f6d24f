package main

import (
	"encoding/binary"

	"github.com/supersocket-go/supersocket/filter"
)

// Packets are the echo example's, on both sides of the gate (little-endian):
//
//	offset 0  uint16 totalSize   header + body
//	offset 2  uint16 packetID
//	offset 4  uint8  reserved    in replies to clients: 0 = the back end's reply,
//	                             1 = the gate's error (the body says why)
//	offset 5  body
const (
	headerSize       = 5
	maxRequestLength = 8 << 10

	replyOK    = 0
	replyError = 1
)

func packetFilter() filter.Factory {
	return filter.LengthPrefixed(filter.LengthField{HeaderSize: headerSize, Size: 2, LittleEndian: true, IncludesHeader: true})
}

// header returns a packet header for a body of n bytes.
func header(id uint16, reserved byte, n int) []byte {
	h := make([]byte, headerSize)
	binary.LittleEndian.PutUint16(h[0:], uint16(headerSize+n))
	binary.LittleEndian.PutUint16(h[2:], id)
	h[4] = reserved
	return h
}

// encode returns a whole packet.
func encode(id uint16, reserved byte, body []byte) []byte {
	return append(header(id, reserved, len(body)), body...)
}

func packetID(h []byte) uint16 { return binary.LittleEndian.Uint16(h[2:]) }
