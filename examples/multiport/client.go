package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/supersocket-go/supersocket/client"
)

// dialClientSide connects to the client side. A notice is a pushed packet: IsPush keeps it
// from being taken as the reply of a Request.
func dialClientSide(ctx context.Context, addr string) (*client.Conn, error) {
	return client.Dial(ctx, client.Config{
		Addr:             addr,
		Filter:           packetFilter(),
		MaxRequestLength: maxRequestLength,
		IsPush:           func(m client.Message) bool { return packetID(m) == noticeID },
	})
}

func packetID(m client.Message) uint16 { return binary.LittleEndian.Uint16(m.Header[2:]) }

// runClient echoes one packet on the client side, then prints every notice until ctx ends.
func runClient(ctx context.Context, addr string, out io.Writer) error {
	c, err := dialClientSide(ctx, addr)
	if err != nil {
		return err
	}
	defer c.Close()
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	m, err := c.Request(rctx, encode(1, []byte("hello")))
	cancel()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "packet %d: %s\n", packetID(m), m.Body)
	for {
		m, err := c.Receive(ctx)
		if err != nil {
			if errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		}
		fmt.Fprintf(out, "notice: %s\n", m.Body)
	}
}
