// Command wsecho is the WebSocket echo server a Go user writes: gorilla/websocket
// (v1.5.3) on net/http, a goroutine per connection, ReadMessage then WriteMessage. It is
// the baseline the supersocket benchmark compares its WebSocket transport against. Each
// message is one request of "supersocket bench -ws" and is echoed as one message of the
// same type; for -proto echo the reply's reserved byte is zeroed, as the echo protocol
// asks (the only byte that differs from the request).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/gorilla/websocket"

	"github.com/supersocket-go/supersocket/bench/internal/proto"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9000", "listen address")
	path := flag.String("path", "/ws", "the WebSocket's path")
	protocol := flag.String("proto", proto.Echo, "protocol: line, len or echo")
	bufSize := flag.Int("buf", 4096, "gorilla's read and write buffer sizes (4096, gorilla's default)")
	flag.Parse()
	if err := proto.Check(*protocol); err != nil {
		fmt.Fprintln(os.Stderr, "wsecho: -proto:", err)
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("wsecho: %s on ws://%s%s", *protocol, ln.Addr(), *path)

	upgrader := websocket.Upgrader{
		ReadBufferSize:  *bufSize,
		WriteBufferSize: *bufSize,
		CheckOrigin:     func(*http.Request) bool { return true },
	}
	var mu sync.Mutex
	conns := map[*websocket.Conn]struct{}{}
	closing := false // set at the signal: later connections are refused
	var wg sync.WaitGroup
	mux := http.NewServeMux()
	mux.HandleFunc(*path, func(w http.ResponseWriter, r *http.Request) {
		c, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return // Upgrade has answered the request with an error
		}
		mu.Lock()
		if closing {
			mu.Unlock()
			c.Close()
			return
		}
		conns[c] = struct{}{}
		wg.Add(1)
		mu.Unlock()
		defer func() {
			mu.Lock()
			delete(conns, c)
			mu.Unlock()
			c.Close()
			wg.Done()
		}()
		serve(c, *protocol)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		srv.Shutdown(context.Background()) // stops accepting; hijacked connections are ours to close
		mu.Lock()
		closing = true
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
	wg.Wait()
}

// serve echoes messages until the connection ends.
func serve(c *websocket.Conn, protocol string) {
	c.SetReadLimit(proto.MaxFrame)
	for {
		mt, msg, err := c.ReadMessage()
		if err != nil {
			if websocket.IsUnexpectedCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway,
				websocket.CloseNoStatusReceived, websocket.CloseAbnormalClosure) && !errors.Is(err, net.ErrClosed) {
				log.Printf("%s: %v", c.RemoteAddr(), err)
			}
			return
		}
		if protocol == proto.Echo && len(msg) >= proto.EchoHeader {
			msg[4] = 0 // the reply's reserved byte
		}
		if err := c.WriteMessage(mt, msg); err != nil {
			return
		}
	}
}
