package client_test

import (
	"testing"

	"github.com/supersocket-go/supersocket"
	"github.com/supersocket-go/supersocket/client"
	"github.com/supersocket-go/supersocket/filter"
)

// BenchmarkRequest measures Request round trips over loopback against a supersocket
// echo server, one at a time and pipelined from parallel goroutines, over TCP and over
// WebSocket.
func BenchmarkRequest(b *testing.B) {
	msg := []byte("ECHO a short request of about fifty bytes ......\r\n")
	for _, transport := range []string{"tcp", "ws"} {
		setup := func(b *testing.B) *client.Conn {
			h := supersocket.Handlers[struct{}]{Request: echoFrame}
			if transport == "ws" {
				srv := startWSServer(b, "127.0.0.1:0", nil, nil, filter.CommandLine(), h)
				return dial(b, client.Config{Addr: wsURL(srv), Filter: filter.CommandLine()})
			}
			srv := startServerT(b, "127.0.0.1:0", filter.CommandLine(), h)
			return dial(b, client.Config{Addr: addrOf(srv), Filter: filter.CommandLine()})
		}
		b.Run(transport+"/sequential", func(b *testing.B) {
			c := setup(b)
			ctx := testCtx(b)
			b.ReportAllocs()
			b.SetBytes(int64(len(msg)))
			for b.Loop() {
				if _, err := c.Request(ctx, msg); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(transport+"/parallel", func(b *testing.B) {
			c := setup(b)
			b.ReportAllocs()
			b.SetBytes(int64(len(msg)))
			b.RunParallel(func(pb *testing.PB) {
				ctx := b.Context()
				for pb.Next() {
					if _, err := c.Request(ctx, msg); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
