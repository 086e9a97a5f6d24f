// Command netecho is the echo server a Go user writes with the standard library alone:
// a goroutine per connection, bufio for framing and for batching writes. It serves one of
// the three protocols of "supersocket bench" (-proto line|len|echo), as the baseline the
// supersocket benchmark compares against.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/supersocket-go/supersocket/bench/internal/proto"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9000", "listen address")
	protocol := flag.String("proto", proto.Echo, "protocol: line, len or echo")
	bufSize := flag.Int("buf", 4096, "size of each connection's bufio.Reader and bufio.Writer (4096 is bufio's default)")
	flag.Parse()
	if err := proto.Check(*protocol); err != nil {
		fmt.Fprintln(os.Stderr, "netecho: -proto:", err)
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("netecho: %s on %s", *protocol, ln.Addr())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() { <-ctx.Done(); ln.Close() }()

	var mu sync.Mutex
	conns := map[net.Conn]struct{}{}
	var wg sync.WaitGroup
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			log.Printf("accept: %v", err)
			continue
		}
		mu.Lock()
		conns[c] = struct{}{}
		mu.Unlock()
		wg.Go(func() {
			defer func() {
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
				c.Close()
			}()
			serve(c, *protocol, *bufSize)
		})
	}
	mu.Lock()
	for c := range conns {
		c.Close()
	}
	mu.Unlock()
	wg.Wait()
}

// serve echoes frames until the connection ends. Replies go through a bufio.Writer that
// is flushed whenever no further request is already buffered: one write per batch of
// pipelined requests, at once for a lone one.
func serve(c net.Conn, protocol string, bufSize int) {
	r := bufio.NewReaderSize(c, bufSize)
	w := bufio.NewWriterSize(c, bufSize)
	var body []byte // a frame's body, grown as needed
	var err error
	for err == nil {
		switch protocol {
		case proto.Line:
			err = echoLine(r, w)
		default:
			body, err = echoFrame(r, w, protocol, body)
		}
		if err == nil && r.Buffered() == 0 {
			err = w.Flush()
		}
	}
	if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
		log.Printf("%s: %v", c.RemoteAddr(), err)
	}
}

func echoLine(r *bufio.Reader, w *bufio.Writer) error {
	line, err := r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		// A line longer than the buffer: copy it through in pieces.
		for errors.Is(err, bufio.ErrBufferFull) {
			if _, werr := w.Write(line); werr != nil {
				return werr
			}
			line, err = r.ReadSlice('\n')
		}
	}
	if err != nil {
		return err
	}
	_, err = w.Write(line)
	return err
}

// echoFrame echoes one binary frame, reading its body into buf (grown as needed, and
// returned for the next frame).
func echoFrame(r *bufio.Reader, w *bufio.Writer, protocol string, buf []byte) ([]byte, error) {
	hs := proto.LenHeader
	if protocol == proto.Echo {
		hs = proto.EchoHeader
	}
	h, err := r.Peek(hs)
	if err != nil {
		return buf, err
	}
	n, err := proto.FrameLen(protocol, h)
	if err != nil {
		return buf, err
	}
	var hdr [proto.EchoHeader]byte
	copy(hdr[:], h)
	if protocol == proto.Echo {
		hdr[4] = 0
	}
	if _, err := r.Discard(hs); err != nil {
		return buf, err
	}
	if cap(buf) < n-hs {
		buf = make([]byte, n-hs)
	}
	body := buf[:n-hs]
	if _, err := io.ReadFull(r, body); err != nil {
		return buf, err
	}
	if _, err := w.Write(hdr[:hs]); err != nil {
		return buf, err
	}
	_, err = w.Write(body)
	return buf, err
}
