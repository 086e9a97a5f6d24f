// Command udp is SuperSocketLite's SimpleUDPServer: UDP sessions keyed by an ID the
// client puts in every datagram, so that a session follows its client when the client's
// address changes (a new socket, a NAT rebinding, a phone moving networks).
//
// Each datagram, both ways:
//
//	bytes 0-3    key          4 ASCII bytes: the command
//	bytes 4-39   session ID   36 ASCII bytes, GUID text: 8-4-4-4-12 hex digits
//	bytes 40-    data         UTF-8
//
// Datagrams of 40 bytes or fewer, or whose ID is not GUID text, are ignored (and counted
// in Stats.DatagramsDropped). Commands:
//
//	ECHO data  → ECHO, the same ID, the same data
//	STAT data  → STAT, the same ID, "requests=N remote=ADDR": N counts this session's
//	             datagrams, ADDR is where the latest came from (and where replies go)
//	other      → "ERR ", the same ID, a message
//
// Config.UDPSessionKey returns bytes 4-39 as the session's key; the framework does the
// rest: a new ID makes a session (with Connected, Request…, Closed like TCP), a known ID
// from a new address moves the session's replies there, and idle sessions expire.
//
//	go run ./examples/udp                            # serve on 127.0.0.1:5556 (UDP)
//	go run ./examples/udp -client hello world        # ECHO each word, then STAT
//	printf 'ECHO0f8fad5b-d9cb-469f-a165-70867728950ehi' | nc -u -w1 127.0.0.1 5556
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/supersocket-go/supersocket"
	"github.com/supersocket-go/supersocket/filter"
)

const (
	keySize    = 4
	idSize     = 36
	headerSize = keySize + idSize
	maxPacket  = 1400 // a datagram; larger ones are cut by the read and refused
)

// validID reports whether id is GUID text: 8-4-4-4-12 hex digits.
func validID(id []byte) bool {
	if len(id) != idSize {
		return false
	}
	for i, c := range id {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// sessionKey is the server's Config.UDPSessionKey: the ID of a datagram worth handling.
func sessionKey(d []byte) ([]byte, bool) {
	if len(d) <= headerSize || !validID(d[keySize:headerSize]) {
		return nil, false
	}
	return d[keySize:headerSize], true
}

// datagrams is the filter both ways: each datagram one request (filter.Whole), its
// Header the key and ID, its Body the data.
func datagrams() filter.Factory { return filter.Whole(headerSize) }

// state is a session's own state.
type state struct {
	requests int
}

// newServer returns the server, not started, listening on addr (UDP).
func newServer(addr string, idle time.Duration) (*supersocket.Server[state], error) {
	return supersocket.New(supersocket.Config{
		Name:             "udp",
		Mode:             "udp",
		Listeners:        []supersocket.ListenerConfig{{Addr: addr}},
		Filter:           datagrams(),
		MaxRequestLength: maxPacket,
		MaxConnections:   100,
		UDPSessionKey:    sessionKey,
		IdleTimeout:      idle, // sessions expire after this long without a datagram
	}, supersocket.Handlers[state]{Request: request})
}

func request(s *supersocket.Session[state], req supersocket.Request) {
	s.Data().requests++
	id := []byte(s.ID()) // the ID UDPSessionKey returned
	switch key := string(req.Header[:keySize]); key {
	case "ECHO":
		s.Send([]byte("ECHO"), id, req.Body)
	case "STAT":
		s.Send([]byte("STAT"), id, fmt.Appendf(nil, "requests=%d remote=%s", s.Data().requests, s.RemoteAddr()))
	default:
		s.Send([]byte("ERR "), id, fmt.Appendf(nil, "unknown key %q", key))
	}
}

// newID returns a random (version 4) GUID as text.
func newID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func main() {
	addr := flag.String("addr", "127.0.0.1:5556", "UDP address to listen on (with -client: the server's)")
	idle := flag.Duration("idle-timeout", 2*time.Minute, "close sessions idle this long")
	asClient := flag.Bool("client", false, "ECHO each argument to -addr, then STAT, and print the replies")
	id := flag.String("id", "", "with -client: the session ID (default: a new one)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *asClient {
		if *id == "" {
			*id = newID()
		}
		if err := runClient(ctx, *addr, *id, flag.Args(), os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "udp:", err)
			os.Exit(1)
		}
		return
	}
	srv, err := newServer(*addr, *idle)
	if err != nil {
		fmt.Fprintln(os.Stderr, "udp:", err)
		os.Exit(2)
	}
	if err := srv.Serve(ctx); err != nil && !errors.Is(err, supersocket.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, "udp:", err)
		os.Exit(1)
	}
}
