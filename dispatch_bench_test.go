package supersocket

import (
	"encoding/binary"
	"net"
	"testing"

	"github.com/supersocket-go/supersocket/filter"
	"github.com/supersocket-go/supersocket/internal/pool"
)

// discardDirect is a sendq.Direct that takes every byte at once and keeps none.
type discardDirect struct{ n int64 }

func (d *discardDirect) Try(b []byte) (int, error) { d.n += int64(len(b)); return len(b), nil }

func (d *discardDirect) TryVec(bufs [][]byte) (int64, error) {
	var n int64
	for _, b := range bufs {
		n += int64(len(b))
	}
	d.n += n
	return n, nil
}

// BenchmarkDispatch measures the server's own work for one read's batch of requests,
// without a socket or the scheduler: the filter, the Request handler (an echo of the
// frame), Send into the held send queue, and Release's write, into a writer that takes
// everything. It is the user-space part of a pipelined cell of the bench matrix (`len`,
// 64-byte frames); one op is one request.
func BenchmarkDispatch(b *testing.B) {
	for _, depth := range []int{1, 16} {
		b.Run(map[int]string{1: "pipeline=1", 16: "pipeline=16"}[depth], func(b *testing.B) {
			srv, err := New(Config{
				Listeners: []ListenerConfig{{Addr: "127.0.0.1:0"}},
				Filter:    filter.Uint32BE(),
			}, Handlers[struct{}]{Request: func(s *Session[struct{}], req Request) { s.Send(req.Frame) }})
			if err != nil {
				b.Fatal(err)
			}
			a, peer := net.Pipe() // the session's conn; never read or written here
			defer a.Close()
			defer peer.Close()
			s := newSession(srv, newRun())
			s.bindStream(a, nil)
			if !s.begin() {
				b.Fatal("session did not begin")
			}
			out := &discardDirect{}
			s.tcp.queue.SetDirect(out)

			frame := make([]byte, 64)
			binary.BigEndian.PutUint32(frame, uint32(len(frame)-4))
			var batch []byte
			for range depth {
				batch = append(batch, frame...)
			}
			b.SetBytes(int64(len(frame)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i += depth {
				buf := append(pool.Get(len(batch))[:0], batch...)
				rest := s.dispatch(buf, srv.cfg.ReceiveBufferSize)
				if s.tcp.held {
					s.tcp.flush()
				}
				if rest != nil {
					b.Fatalf("%d bytes left over", len(rest))
				}
			}
			b.StopTimer()
			if want := int64(b.N+depth-1) / int64(depth) * int64(len(batch)); out.n != want {
				b.Fatalf("%d bytes written, want %d", out.n, want)
			}
		})
	}
}
