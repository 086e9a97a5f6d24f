package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"time"

	"github.com/supersocket-go/supersocket/client"
)

// packet is one decoded packet.
type packet struct {
	ID       uint16
	Reserved byte
	Body     []byte
}

// encode builds a packet. The body must fit a uint16 total size.
func encode(id uint16, body []byte) []byte {
	if len(body) > 0xFFFF-headerSize {
		panic(fmt.Sprintf("echo: %d-byte body is too long for a packet", len(body)))
	}
	b := make([]byte, headerSize, headerSize+len(body))
	binary.LittleEndian.PutUint16(b[0:], uint16(headerSize+len(body)))
	binary.LittleEndian.PutUint16(b[2:], id)
	return append(b, body...)
}

// decode reads a packet out of a message framed by packetFilter.
func decode(m client.Message) packet {
	return packet{
		ID:       binary.LittleEndian.Uint16(m.Header[2:]),
		Reserved: m.Header[4],
		Body:     m.Body,
	}
}

// dial connects a client that frames replies with the server's own filter.
func dial(ctx context.Context, addr string) (*client.Conn, error) {
	return client.Dial(ctx, client.Config{Addr: addr, Filter: packetFilter(), MaxRequestLength: maxRequestLength})
}

// runClient sends each text as a packet (IDs 1, 2, …) and prints each reply to out.
func runClient(ctx context.Context, addr string, texts []string, out io.Writer) error {
	if len(texts) == 0 {
		texts = []string{"hello"}
	}
	c, err := dial(ctx, addr)
	if err != nil {
		return err
	}
	defer c.Close()
	for i, text := range texts {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		m, err := c.Request(rctx, encode(uint16(i+1), []byte(text)))
		cancel()
		if err != nil {
			return err
		}
		p := decode(m)
		fmt.Fprintf(out, "packet %d: %q\n", p.ID, p.Body)
	}
	return nil
}
