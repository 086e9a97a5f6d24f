// Command gnetecho is the echo server a Go user writes with gnet v2, the event-loop
// framework: one event loop per CPU (multicore), and in OnTraffic every complete frame
// that has arrived is answered with a single write. It serves one of the three protocols
// of "supersocket bench" (-proto line|len|echo), as a baseline the supersocket benchmark
// compares against.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/supersocket-go/supersocket/bench/internal/proto"
)

type echoServer struct {
	gnet.BuiltinEventEngine
	protocol string
	eng      gnet.Engine
	booted   chan struct{}
}

func (s *echoServer) OnBoot(eng gnet.Engine) gnet.Action {
	s.eng = eng
	close(s.booted)
	return gnet.None
}

// OnTraffic answers every complete frame buffered on c with one Write, and leaves an
// incomplete frame for the next call.
func (s *echoServer) OnTraffic(c gnet.Conn) gnet.Action {
	buf, err := c.Peek(-1)
	if err != nil || len(buf) == 0 {
		return gnet.None
	}
	n := 0
	switch s.protocol {
	case proto.Line:
		n = bytes.LastIndexByte(buf, '\n') + 1
		if n == 0 && len(buf) > proto.MaxFrame {
			return gnet.Close
		}
	default:
		for {
			size, err := proto.FrameLen(s.protocol, buf[n:])
			if err != nil {
				return gnet.Close
			}
			if size == 0 || n+size > len(buf) {
				break
			}
			if s.protocol == proto.Echo {
				// The reply differs from the request only in the reserved byte; Peek's
				// bytes are ours until Discard.
				buf[n+4] = 0
			}
			n += size
		}
	}
	if n == 0 {
		return gnet.None
	}
	if _, err := c.Write(buf[:n]); err != nil {
		return gnet.Close
	}
	if _, err := c.Discard(n); err != nil {
		return gnet.Close
	}
	return gnet.None
}

func main() {
	addr := flag.String("addr", "127.0.0.1:9000", "listen address")
	protocol := flag.String("proto", proto.Echo, "protocol: line, len or echo")
	flag.Parse()
	if err := proto.Check(*protocol); err != nil {
		fmt.Fprintln(os.Stderr, "gnetecho: -proto:", err)
		os.Exit(2)
	}
	s := &echoServer{protocol: *protocol, booted: make(chan struct{})}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		select {
		case <-s.booted:
		case <-ctx.Done():
			return
		}
		log.Printf("gnetecho: %s on %s", *protocol, *addr)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.eng.Stop(sctx); err != nil {
			log.Printf("stop: %v", err)
		}
	}()
	err := gnet.Run(s, "tcp4://"+*addr, gnet.WithMulticore(true), gnet.WithTCPNoDelay(gnet.TCPNoDelay))
	if err != nil {
		log.Fatal(err)
	}
}
