package supersocket

import (
	"bytes"
	"io"
	"net"
	"runtime"
	"testing"
	"time"
)

// BenchmarkWake measures requests that find their session idle, over 64 connections:
// each round sends one request on every connection and reads every reply, then waits
// (timer stopped) until every session has given up its goroutine again. "parked" wakes
// parked sessions (Linux: the parker starts a goroutine); "waiting" is the same traffic
// with sessions that keep their goroutine blocked in the runtime's poller. The difference
// is what parking adds to a request that follows an idle gap longer than parkAfter.
func BenchmarkWake(b *testing.B) {
	if runtime.GOOS != "linux" {
		b.Skip("parking needs epoll")
	}
	const conns = 64
	for _, bc := range []struct {
		name string
		park time.Duration
	}{{"waiting", time.Hour}, {"parked", time.Millisecond}} {
		b.Run(bc.name, func(b *testing.B) {
			srv, err := New(Config{Listeners: loopback(), Logger: quietLogger()}, Handlers[struct{}]{
				Request: func(s *Session[struct{}], r Request) { s.Send(r.Frame) },
			})
			if err != nil {
				b.Fatal(err)
			}
			srv.parkAfter = bc.park
			if err := srv.Start(); err != nil {
				b.Fatal(err)
			}
			defer srv.Stop()
			cs := make([]net.Conn, conns)
			for i := range cs {
				if cs[i], err = net.Dial("tcp", addrOf(srv)); err != nil {
					b.Fatal(err)
				}
				defer cs[i].Close()
			}
			reply := make([]byte, len(benchRequest))
			round := func() {
				for _, c := range cs {
					if _, err := c.Write(benchRequest); err != nil {
						b.Fatal(err)
					}
				}
				for _, c := range cs {
					if _, err := io.ReadFull(c, reply); err != nil || !bytes.Equal(reply, benchRequest) {
						b.Fatalf("echo: %q, %v", reply, err)
					}
				}
			}
			settle := func() {
				if bc.park > time.Second {
					return
				}
				deadline := time.Now().Add(waitLong)
				for srv.parkedCount() != conns {
					if time.Now().After(deadline) {
						b.Fatalf("%d of %d sessions parked", srv.parkedCount(), conns)
					}
					time.Sleep(bc.park)
				}
			}
			round()
			settle()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i += conns {
				round()
				b.StopTimer()
				settle()
				b.StartTimer()
			}
		})
	}
}
