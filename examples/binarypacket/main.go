// Command binarypacket is SuperSocketLite's BinaryPacketServer: a fixed 12-byte binary
// header and a table of handlers keyed by packet ID.
//
// Wire format (little-endian), both ways:
//
//	offset 0   int32 packetID
//	offset 4   int16 value1
//	offset 6   int16 value2
//	offset 8   int32 bodySize   the body only, not the header
//	offset 12  body             bodySize bytes
//
// Packet IDs the server answers:
//
//	1 echo     reply: the same packet
//	2 reverse  reply: id 2, the same values, the body's bytes reversed
//	3 sum      reply: id 3, the same values, a 4-byte int32 body = value1 + value2
//	other      reply: id 999 (error), value1 = 1 (unknown packet), body = a message;
//	           the session stays open
//
// A bodySize that is negative, or that makes the frame longer than the request limit,
// closes the session with ProtocolError as soon as the header has arrived: a client that
// lies about its body size cannot make the server allocate or wait for it.
//
//	go run ./examples/binarypacket            # serve on 127.0.0.1:11021
//	go run ./examples/binarypacket -client    # send one packet of each kind, print replies
package main

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"syscall"

	"github.com/supersocket-go/supersocket"
	"github.com/supersocket-go/supersocket/filter"
)

const (
	headerSize       = 12
	maxRequestLength = 4 << 10 // header included
)

// Packet IDs.
const (
	idEcho    int32 = 1
	idReverse int32 = 2
	idSum     int32 = 3
	idError   int32 = 999
)

// Error codes, in value1 of an error packet.
const errUnknownPacket int16 = 1

// packet is one decoded packet. Body aliases the receive buffer on the server.
type packet struct {
	ID             int32
	Value1, Value2 int16
	Body           []byte
}

// bodySize reads the body size from a header; a negative one cannot be right.
func bodySize(h []byte) (int, error) {
	n := int32(binary.LittleEndian.Uint32(h[8:]))
	if n < 0 {
		return 0, fmt.Errorf("negative body size %d", n)
	}
	return int(n), nil
}

// packetFilter frames the 12-byte-header packets. FixedHeader checks the declared size
// against the limit before it waits for the body.
func packetFilter() filter.Factory { return filter.FixedHeader(headerSize, bodySize) }

func parse(header, body []byte) packet {
	return packet{
		ID:     int32(binary.LittleEndian.Uint32(header[0:])),
		Value1: int16(binary.LittleEndian.Uint16(header[4:])),
		Value2: int16(binary.LittleEndian.Uint16(header[6:])),
		Body:   body,
	}
}

// header encodes p's header for a body of n bytes.
func (p packet) header(n int) []byte {
	h := make([]byte, headerSize)
	binary.LittleEndian.PutUint32(h[0:], uint32(p.ID))
	binary.LittleEndian.PutUint16(h[4:], uint16(p.Value1))
	binary.LittleEndian.PutUint16(h[6:], uint16(p.Value2))
	binary.LittleEndian.PutUint32(h[8:], uint32(n))
	return h
}

// encode returns p on the wire.
func (p packet) encode() []byte { return append(p.header(len(p.Body)), p.Body...) }

type session = supersocket.Session[struct{}]

// handler answers one packet ID.
type handler func(s *session, p packet)

// handlers is the packet-ID table; it is only read once the server runs.
var handlers = map[int32]handler{
	idEcho: func(s *session, p packet) {
		s.Send(p.header(len(p.Body)), p.Body)
	},
	idReverse: func(s *session, p packet) {
		rev := slices.Clone(p.Body) // p.Body aliases the receive buffer: never modify it
		slices.Reverse(rev)
		s.Send(p.header(len(rev)), rev)
	},
	idSum: func(s *session, p packet) {
		sum := binary.LittleEndian.AppendUint32(nil, uint32(int32(p.Value1)+int32(p.Value2)))
		s.Send(p.header(len(sum)), sum)
	},
}

func request(s *session, req supersocket.Request) {
	p := parse(req.Header, req.Body)
	h, ok := handlers[p.ID]
	if !ok {
		reply := packet{ID: idError, Value1: errUnknownPacket, Body: fmt.Appendf(nil, "unknown packet id %d", p.ID)}
		s.Send(reply.encode())
		return
	}
	h(s, p)
}

// newServer returns the server, not started, listening on addr.
func newServer(addr string) (*supersocket.Server[struct{}], error) {
	return supersocket.New(supersocket.Config{
		Name:             "binarypacket",
		Listeners:        []supersocket.ListenerConfig{{Addr: addr}},
		Filter:           packetFilter(),
		MaxRequestLength: maxRequestLength,
	}, supersocket.Handlers[struct{}]{Request: request})
}

func main() {
	addr := flag.String("addr", "127.0.0.1:11021", "address to listen on (with -client: the server's)")
	asClient := flag.Bool("client", false, "send one packet of each kind to -addr and print the replies")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *asClient {
		if err := runClient(ctx, *addr, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "binarypacket:", err)
			os.Exit(1)
		}
		return
	}
	srv, err := newServer(*addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "binarypacket:", err)
		os.Exit(2)
	}
	if err := srv.Serve(ctx); err != nil && !errors.Is(err, supersocket.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, "binarypacket:", err)
		os.Exit(1)
	}
}
