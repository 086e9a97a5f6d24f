package client_test

import (
	"testing"

	"github.com/supersocket-go/supersocket/client"
	"github.com/supersocket-go/supersocket/filter"
)

// BenchmarkRequest measures Request round trips over loopback against a supersocket
// echo server, one at a time and pipelined from parallel goroutines.
func BenchmarkRequest(b *testing.B) {
	msg := []byte("ECHO a short request of about fifty bytes ......\r\n")
	setup := func(b *testing.B) *client.Conn {
		srv := startServer(b, filter.CommandLine(), echoFrame)
		return dial(b, client.Config{Addr: addrOf(srv), Filter: filter.CommandLine()})
	}
	b.Run("sequential", func(b *testing.B) {
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
	b.Run("parallel", func(b *testing.B) {
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
