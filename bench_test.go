package supersocket

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"sync"
	"testing"
)

// benchRequest is one echo request: a 40-byte command line.
var benchRequest = []byte("ECHO 0123456789abcdef0123456789abcdef\r\n")

func benchServer(b *testing.B) *Server[struct{}] {
	b.Helper()
	srv, err := New(Config{Listeners: loopback(), Logger: quietLogger()}, Handlers[struct{}]{
		Request: func(s *Session[struct{}], r Request) { s.Send(r.Frame) },
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Stop() })
	return srv
}

// echoLoop sends n requests over c, pipeline at a time, and reads every reply. It is
// allocation-free, so allocs/op is the server's cost per request.
func echoLoop(c net.Conn, n, pipeline int, batch, reply []byte) error {
	for done := 0; done < n; {
		k := min(pipeline, n-done)
		size := k * len(benchRequest)
		if _, err := c.Write(batch[:size]); err != nil {
			return err
		}
		if _, err := io.ReadFull(c, reply[:size]); err != nil {
			return err
		}
		done += k
	}
	return nil
}

// BenchmarkEcho measures one request/reply round over loopback TCP, end to end: client
// write, server read, filter, handler, send queue, write, client read. One op is one
// request; with pipeline > 1 that many requests are in flight per write.
func BenchmarkEcho(b *testing.B) {
	for _, bc := range echoBenchCases {
		b.Run(bc.name, func(b *testing.B) { runEchoBench(b, addrOf(benchServer(b)), bc.pipeline) })
	}
}

var echoBenchCases = []struct {
	name     string
	pipeline int
}{{"conn=1/pipeline=1", 1}, {"conn=1/pipeline=16", 16}}

// runEchoBench measures b.N echoed requests over one connection to addr, pipeline at a
// time, after checking that the server echoes.
func runEchoBench(b *testing.B, addr string, pipeline int) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	batch := bytes.Repeat(benchRequest, pipeline)
	reply := make([]byte, len(batch))
	// Warm up, and check that the server echoes.
	if err := echoLoop(c, pipeline, pipeline, batch, reply); err != nil || !bytes.Equal(reply, batch) {
		b.Fatalf("echo: %q, %v", reply, err)
	}
	b.SetBytes(int64(len(benchRequest)))
	b.ReportAllocs()
	b.ResetTimer()
	start := readCost()
	if err := echoLoop(c, b.N, pipeline, batch, reply); err != nil {
		b.Fatal(err)
	}
	reportCostSince(b, start)
}

// BenchmarkEchoParallel runs GOMAXPROCS connections at once, each pipelining 16 requests.
func BenchmarkEchoParallel(b *testing.B) {
	const pipeline = 16
	srv := benchServer(b)
	b.SetBytes(int64(len(benchRequest)))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		c, err := net.Dial("tcp", addrOf(srv))
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		batch := bytes.Repeat(benchRequest, pipeline)
		reply := make([]byte, len(batch))
		for {
			// Each PB.Next is one request; send them in groups of pipeline.
			k := 0
			for k < pipeline && pb.Next() {
				k++
			}
			if k == 0 {
				return
			}
			if err := echoLoop(c, k, pipeline, batch, reply); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// netEchoServer is the baseline a Go user would write instead: Go's net, a goroutine per
// connection, bufio line reading and one Write per reply.
func netEchoServer(b *testing.B) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	var conns sync.WaitGroup
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Go(func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadSlice('\n')
					if err != nil {
						return
					}
					if _, err := c.Write(line); err != nil {
						return
					}
				}
			})
		}
	}()
	b.Cleanup(func() { ln.Close(); <-done; conns.Wait() })
	return ln.Addr().String()
}

// BenchmarkEchoNetBaseline runs BenchmarkEcho's client against netEchoServer, so the two
// can be compared in one run (benchstat, or the ratio of ns/op).
func BenchmarkEchoNetBaseline(b *testing.B) {
	for _, bc := range echoBenchCases {
		b.Run(bc.name, func(b *testing.B) { runEchoBench(b, netEchoServer(b), bc.pipeline) })
	}
}
