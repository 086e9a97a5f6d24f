package supersocket

import (
	"encoding/binary"
	"net"
	"testing"
	"time"

	"github.com/supersocket-go/supersocket/filter"
	"github.com/supersocket-go/supersocket/internal/pool"
	"github.com/supersocket-go/supersocket/internal/websocket"
)

// wsEcho is a WebSocket session of an echo server (filter.Uint32BE, each request's frame
// sent back) without a socket: step hands its reader one read's batch of depth masked
// client frames, each a binary message of one 64-byte request, and writes the replies
// into a writer that takes everything.
type wsEcho struct {
	step    func() // one batch
	written func() int64
	reqLen  int // bytes of one request
	reply   int // bytes of one reply frame
}

func newWSEcho(tb testing.TB, depth int) *wsEcho {
	srv, err := New(Config{
		Listeners: wsListener(nil),
		Filter:    filter.Uint32BE(),
	}, Handlers[struct{}]{Request: func(s *Session[struct{}], req Request) { s.Send(req.Frame) }})
	if err != nil {
		tb.Fatal(err)
	}
	a, peer := net.Pipe() // the session's conn; never read or written here
	tb.Cleanup(func() { a.Close(); peer.Close() })
	s := newWSSession(srv, newRun(), &wsHandshake{cfg: srv.cfg.Listeners[0].WebSocket, head: "GET /ws HTTP/1.1\r\nHost: pipe\r\n"})
	s.bindStream(a, nil)
	w := s.tcp.ws
	if !s.begin() {
		tb.Fatal("session did not begin")
	}
	out := &discardDirect{}
	s.tcp.queue.SetDirect(out)

	req := make([]byte, 64)
	binary.BigEndian.PutUint32(req, uint32(len(req)-4))
	key := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	var batch []byte
	for range depth {
		batch = websocket.AppendHeader(batch, true, 0, websocket.OpBinary, len(req), &key)
		batch = append(batch, req...)
		websocket.Mask(key, 0, batch[len(batch)-len(req):])
	}
	return &wsEcho{
		// What the stream's Received does with a read: the WebSocket layer's received,
		// then the flush of replies held for the batch.
		step: func() {
			buf := append(pool.Get(len(batch))[:0], batch...)
			rest := w.received(buf, srv.cfg.ReceiveBufferSize)
			if s.tcp.held {
				s.tcp.flush()
			}
			if rest != nil {
				tb.Fatalf("%d bytes left over", len(rest))
			}
		},
		written: func() int64 { return out.n },
		reqLen:  len(req),
		reply:   len(websocket.AppendHeader(nil, true, 0, websocket.OpBinary, len(req), nil)) + len(req),
	}
}

// BenchmarkWebSocketDispatch is BenchmarkDispatch over WebSocket: the server's own work
// for one read's batch of client frames, without a socket or the scheduler — the frame
// headers parsed, the payloads unmasked in place, each message (unfragmented,
// uncompressed, binary) handed to the filter, the Request handler (an echo of the frame),
// Send framing the reply as a message into the send queue, and the write. One op is one
// message of one 64-byte request (`len`): the user-space part of the bench matrix's
// WebSocket cells.
func BenchmarkWebSocketDispatch(b *testing.B) {
	for _, depth := range []int{1, 16} {
		b.Run(map[int]string{1: "pipeline=1", 16: "pipeline=16"}[depth], func(b *testing.B) {
			e := newWSEcho(b, depth)
			b.SetBytes(int64(e.reqLen))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i += depth {
				e.step()
			}
			b.StopTimer()
			if want := int64(b.N+depth-1) / int64(depth) * int64(depth*e.reply); e.written() != want {
				b.Fatalf("%d bytes written, want %d", e.written(), want)
			}
		})
	}
}

// TestWebSocketDispatchAllocs: the per-message path over WebSocket allocates nothing,
// like the TCP one.
func TestWebSocketDispatchAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are checked without -race (go test -run WebSocketDispatchAllocs .)")
	}
	e := newWSEcho(t, 1)
	if n := testing.AllocsPerRun(1000, e.step); n != 0 {
		t.Fatalf("%.1f allocations per message, want 0", n)
	}
}

// handshakeConn is a net.Conn that serves one request to Read and takes every Write.
type handshakeConn struct {
	net.Conn // nil: the methods upgradeWebSocket does not call panic
	req      []byte
	off      int
	wrote    int
}

func (c *handshakeConn) Read(b []byte) (int, error) {
	n := copy(b, c.req[c.off:])
	c.off += n
	return n, nil
}
func (c *handshakeConn) Write(b []byte) (int, error)      { c.wrote += len(b); return len(b), nil }
func (c *handshakeConn) SetDeadline(time.Time) error      { return nil }
func (c *handshakeConn) SetReadDeadline(time.Time) error  { return nil }
func (c *handshakeConn) SetWriteDeadline(time.Time) error { return nil }

// BenchmarkWebSocketUpgrade measures the opening handshake alone, on a connection in
// memory: the request read and parsed, checked, answered. Every connection pays it, and
// what it allocates beyond what the session keeps is garbage that raises the server's
// memory while connections arrive (idle RSS per connection is a target against raw TCP):
// one allocation per upgrade is the kept head; a browser's request (more fields,
// an Origin) takes the same.
func BenchmarkWebSocketUpgrade(b *testing.B) {
	srv, err := New(Config{Listeners: wsListener(nil)}, Handlers[struct{}]{Request: echoFrame[struct{}]})
	if err != nil {
		b.Fatal(err)
	}
	cfg := srv.cfg.Listeners[0].WebSocket
	for _, bc := range []struct{ name, req string }{
		{"bench-client", upgradeRequest("/ws")},
		{"browser", upgradeRequest("/ws", "Origin: https://example.com\r\n", "User-Agent: Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0\r\n",
			"Accept-Language: en-US,en;q=0.9\r\n", "Accept-Encoding: gzip, deflate\r\n", "Cache-Control: no-cache\r\n", "Pragma: no-cache\r\n",
			"Cookie: session=0123456789abcdef\r\n", "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n")},
	} {
		b.Run(bc.name, func(b *testing.B) {
			c := &handshakeConn{req: []byte(bc.req)}
			h := &handshaking{c: c} // claimed by the first upgrade, and so for the rest
			b.ReportAllocs()
			for b.Loop() {
				c.off = 0
				hs, rest, err := srv.upgradeWebSocket(c, cfg, h)
				if err != nil || rest != nil || hs.head == "" {
					b.Fatalf("upgrade: %v (rest %d bytes)", err, len(rest))
				}
			}
		})
	}
}
