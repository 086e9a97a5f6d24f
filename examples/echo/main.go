// Command echo is SuperSocketLite's EchoServer: every packet is answered with the same
// packet ID and body.
//
// Wire format (little-endian), both ways:
//
//	offset 0  uint16 totalSize   header + body, so at least 5
//	offset 2  uint16 packetID
//	offset 4  uint8  reserved    0 in replies
//	offset 5  body               totalSize-5 bytes
//
// The server is a filter.LengthPrefixed (a length field that counts the header) and a
// Request handler of three lines. A totalSize below 5, or above the request limit, closes
// the session with ProtocolError before any body byte is buffered.
//
//	go run ./examples/echo                       # serve on 127.0.0.1:32452
//	go run ./examples/echo -client hello world   # send two packets, print the replies
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/supersocket-go/supersocket"
	"github.com/supersocket-go/supersocket/filter"
)

const (
	headerSize       = 5
	maxRequestLength = 8 << 10 // header included
)

// packetFilter frames the 5-byte-header packets: the length field is the first two bytes,
// little-endian, and counts the header too.
func packetFilter() filter.Factory {
	return filter.LengthPrefixed(filter.LengthField{
		HeaderSize:     headerSize,
		Size:           2,
		LittleEndian:   true,
		IncludesHeader: true,
	})
}

// newServer returns the echo server, not started, listening on addr.
func newServer(addr string) (*supersocket.Server[struct{}], error) {
	return supersocket.New(supersocket.Config{
		Name:             "echo",
		Listeners:        []supersocket.ListenerConfig{{Addr: addr}},
		Filter:           packetFilter(),
		MaxRequestLength: maxRequestLength,
	}, supersocket.Handlers[struct{}]{
		Request: func(s *supersocket.Session[struct{}], req supersocket.Request) {
			// req.Header and req.Body alias the receive buffer; Send copies them.
			var h [headerSize]byte
			copy(h[:], req.Header) // same totalSize and packetID
			h[4] = 0               // reserved
			s.Send(h[:], req.Body)
		},
	})
}

func main() {
	addr := flag.String("addr", "127.0.0.1:32452", "address to listen on (with -client: the server's)")
	asClient := flag.Bool("client", false, "send each argument as a packet to -addr and print the replies")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: echo [-addr host:port]\n       echo -client [-addr host:port] [text...]\n")
		flag.PrintDefaults()
	}
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *asClient {
		if err := runClient(ctx, *addr, flag.Args(), os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "echo:", err)
			os.Exit(1)
		}
		return
	}
	srv, err := newServer(*addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "echo:", err)
		os.Exit(2)
	}
	// Serve runs until SIGINT/SIGTERM, then shuts down gracefully.
	if err := srv.Serve(ctx); err != nil && !errors.Is(err, supersocket.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, "echo:", err)
		os.Exit(1)
	}
}
