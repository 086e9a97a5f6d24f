// Command multiport is SuperSocketLite's MultiPortServer: two servers in one process, on
// two ports, each with its own protocol, limits and handlers.
//
// The client side (127.0.0.1:32452) speaks the echo example's 5-byte-header packets
// (uint16 totalSize, uint16 packetID, uint8 reserved, little-endian) and echoes them.
//
// The admin side (127.0.0.1:11021) speaks lines, for nc or telnet:
//
//	COUNT           → SESSIONS n      live sessions on the client side
//	BROADCAST text  → SENT n          a notice packet (ID 9000, body = text) to every
//	                                  client session; n is how many queued it
//	STATS           → requests=… bytes_in=… bytes_out=… accepted=…  (the client side's)
//	QUIT            → BYE, then the admin session closes
//
// The admin side reaches the client side through its *Server: SessionCount, Broadcast and
// Stats are safe from any goroutine. Each server has its own limits: 256 client sessions,
// 16 admin sessions (SuperSocketLite's numbers). The two start together or not at all.
//
//	go run ./examples/multiport                 # both servers
//	go run ./examples/multiport -client         # a client-side session printing notices
//	nc 127.0.0.1 11021                          # then: COUNT, BROADCAST hello
package main

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/supersocket-go/supersocket"
	"github.com/supersocket-go/supersocket/filter"
)

const (
	headerSize       = 5
	maxRequestLength = 8 << 10
	noticeID         = 9000 // the packet ID of a notice from the admin side
)

// packetFilter frames the client side's 5-byte-header packets.
func packetFilter() filter.Factory {
	return filter.LengthPrefixed(filter.LengthField{HeaderSize: headerSize, Size: 2, LittleEndian: true, IncludesHeader: true})
}

// encode builds a client-side packet.
func encode(id uint16, body []byte) []byte {
	b := make([]byte, headerSize, headerSize+len(body))
	binary.LittleEndian.PutUint16(b[0:], uint16(headerSize+len(body)))
	binary.LittleEndian.PutUint16(b[2:], id)
	return append(b, body...)
}

// app is the two servers.
type app struct {
	clients *supersocket.Server[struct{}]
	admin   *supersocket.Server[struct{}]
}

// newApp returns both servers, not started.
func newApp(clientAddr, adminAddr string) (*app, error) {
	a := &app{}
	var err error
	a.clients, err = supersocket.New(supersocket.Config{
		Name:             "client-side",
		Listeners:        []supersocket.ListenerConfig{{Addr: clientAddr}},
		Filter:           packetFilter(),
		MaxRequestLength: maxRequestLength,
		MaxConnections:   256,
	}, supersocket.Handlers[struct{}]{
		Request: func(s *supersocket.Session[struct{}], req supersocket.Request) {
			var h [headerSize]byte
			copy(h[:], req.Header)
			h[4] = 0
			s.Send(h[:], req.Body)
		},
	})
	if err != nil {
		return nil, err
	}
	a.admin, err = supersocket.New(supersocket.Config{
		Name:             "admin-side",
		Listeners:        []supersocket.ListenerConfig{{Addr: adminAddr}},
		Filter:           filter.CommandLine(),
		MaxRequestLength: 1024,
		MaxConnections:   16,
		IdleTimeout:      10 * time.Minute,
	}, supersocket.Handlers[struct{}]{Request: a.adminRequest})
	if err != nil {
		return nil, err
	}
	return a, nil
}

func (a *app) adminRequest(s *supersocket.Session[struct{}], req supersocket.Request) {
	reply := func(format string, args ...any) { s.Send(fmt.Appendf(nil, format+"\r\n", args...)) }
	switch strings.ToUpper(req.Key) {
	case "COUNT":
		reply("SESSIONS %d", a.clients.SessionCount())
	case "BROADCAST":
		if len(req.Body) == 0 {
			reply("ERR usage: BROADCAST text")
			return
		}
		// Broadcast uses TrySend: a client whose queue is full misses the notice rather
		// than stalling the admin session.
		reply("SENT %d", a.clients.Broadcast(encode(noticeID, req.Body), nil))
	case "STATS":
		st := a.clients.Stats()
		reply("requests=%d bytes_in=%d bytes_out=%d accepted=%d", st.Requests, st.BytesIn, st.BytesOut, st.Accepted)
	case "QUIT":
		reply("BYE")
		s.Close(supersocket.CloseServerClosing)
	default:
		reply("ERR unknown command: %s", req.Key)
	}
}

// start starts both servers, or neither.
func (a *app) start() error {
	if err := a.clients.Start(); err != nil {
		return err
	}
	if err := a.admin.Start(); err != nil {
		a.clients.Stop()
		return err
	}
	return nil
}

// shutdown stops the admin side, then the client side, gracefully.
func (a *app) shutdown(ctx context.Context) error {
	return errors.Join(a.admin.Shutdown(ctx), a.clients.Shutdown(ctx))
}

func main() {
	clientAddr := flag.String("addr", "127.0.0.1:32452", "client-side address (with -client: the server's)")
	adminAddr := flag.String("admin-addr", "127.0.0.1:11021", "admin-side address")
	asClient := flag.Bool("client", false, "connect to the client side, echo one packet, then print notices until interrupted")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *asClient {
		if err := runClient(ctx, *clientAddr, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "multiport:", err)
			os.Exit(1)
		}
		return
	}
	a, err := newApp(*clientAddr, *adminAddr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "multiport:", err)
		os.Exit(2)
	}
	if err := a.start(); err != nil {
		fmt.Fprintln(os.Stderr, "multiport:", err)
		os.Exit(1)
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.shutdown(sctx); err != nil {
		fmt.Fprintln(os.Stderr, "multiport:", err)
		os.Exit(1)
	}
}
