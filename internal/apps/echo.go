package apps

import (
	"github.com/supersocket-go/supersocket"
	"github.com/supersocket-go/supersocket/filter"
)

// EchoHeaderSize is the header of SuperSocketLite's EchoServer packets.
const EchoHeaderSize = 5

// EchoFilter frames SuperSocketLite's EchoServer packets: a 5-byte little-endian header,
// uint16 totalSize (header + body), uint16 packetID, uint8 reserved, then totalSize-5
// body bytes. A totalSize below 5 or above the request limit is a protocol error.
func EchoFilter() filter.Factory {
	return filter.LengthPrefixed(filter.LengthField{
		HeaderSize:     EchoHeaderSize,
		Size:           2,
		LittleEndian:   true,
		IncludesHeader: true,
	})
}

// Echo answers every packet with the same packetID and body and reserved = 0.
func Echo(cfg supersocket.Config) (Server, error) {
	cfg.Filter = EchoFilter()
	return supersocket.New(cfg, supersocket.Handlers[struct{}]{Request: echoRequest})
}

func echoRequest(s *supersocket.Session[struct{}], req supersocket.Request) {
	// The reply differs from the request only in the reserved byte: it is cleared in the
	// request's own bytes, which are the handler's until it returns, and the frame goes
	// back as it is (as bench/gnetecho does). A header built in a local array would cost
	// an allocation per request: Send's parts escape, for the WebSocket path.
	req.Frame[4] = 0
	s.Send(req.Frame)
}
