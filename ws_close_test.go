package supersocket

import (
	"net"
	"sync"
	"testing"
	"time"

	"github.com/supersocket-go/supersocket/filter"
	"github.com/supersocket-go/supersocket/internal/websocket"
)

// The close handshake and the close codes of a session's ends: the server's close sends
// the code its reason maps to (ServerClosing 1000, ServerShutdown 1001, a protocol error
// 1002, a handler's panic 1011) after what was queued before it, and waits at most
// CloseTimeout for the client's close frame; the session's close reason is what the
// Closed handler gets.

// closeServer is a whole-message echo server whose handler closes its session on "bye"
// (after replying "bye!") and panics on "panic"; Closed handlers report to the returned
// channel.
func closeServer(t *testing.T, ws *WebSocketConfig, tweak func(*Config)) (*Server[struct{}], chan closeEvent) {
	closed := make(chan closeEvent, 16)
	cfg := Config{Listeners: wsListener(ws), Filter: func(int) filter.Filter { return wholeMessage{} }}
	if tweak != nil {
		tweak(&cfg)
	}
	srv := startServer(t, cfg, Handlers[struct{}]{
		Request: func(s *Session[struct{}], r Request) {
			switch string(r.Body) {
			case "bye":
				s.Send([]byte("bye!"))
				s.Close(CloseServerClosing)
			case "panic":
				panic("the handler panics")
			default:
				s.Send(r.Frame)
			}
		},
		Closed: closedInto[struct{}](closed),
	})
	return srv, closed
}

// byeClosed asks a closeServer to close the session: its reply, then its close frame.
func byeClosed(c *wsClient) {
	c.t.Helper()
	c.binary([]byte("bye"))
	c.expect(websocket.OpBinary, "bye!")
	c.expectClose(websocket.CloseNormal)
}

// The server closes: what it sent before comes first, then a close frame with 1000; the
// client's answer completes the handshake at once (CloseTimeout is 30 s), and the session
// closes with ServerClosing.
func TestWebSocket_ServerClosesAndTheClientAnswers(t *testing.T) {
	srv, closed := closeServer(t, &WebSocketConfig{CloseTimeout: 30 * time.Second}, nil)
	c := dialWS(t, addrOf(srv))
	byeClosed(c)
	c.binary([]byte("after the server's close")) // discarded: not echoed
	c.closeWith(websocket.CloseNormal, "")
	c.expectEOF()
	expectReason(t, srv, closed, CloseServerClosing)
}

// A client that never answers the server's close frame is cut off once CloseTimeout has
// passed, not after CloseTimeout and CloseLinger (20 s here): nothing was queued.
func TestWebSocket_CloseTimeoutBoundsTheWait(t *testing.T) {
	const timeout = 200 * time.Millisecond
	srv, closed := closeServer(t, &WebSocketConfig{CloseTimeout: timeout}, func(cfg *Config) { cfg.CloseLinger = 20 * time.Second })
	c := dialWS(t, addrOf(srv))
	byeClosed(c)
	start := time.Now()
	c.expectEOF()
	waited := time.Since(start)
	if waited > 5*time.Second {
		t.Errorf("the server waited %v for a close frame, CloseTimeout is %v", waited, timeout)
	}
	expectReason(t, srv, closed, CloseServerClosing)
}

// A client may answer the server's close frame by ending the connection instead of with
// a close frame: the session ends on that, not at CloseTimeout (30 s).
func TestWebSocket_ClientEndsTheConnectionAfterTheServersClose(t *testing.T) {
	srv, closed := closeServer(t, &WebSocketConfig{CloseTimeout: 30 * time.Second}, nil)
	c := dialWS(t, addrOf(srv))
	byeClosed(c)
	if err := c.Conn.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	c.expectEOF()
	expectReason(t, srv, closed, CloseServerClosing)
}

// Both ends close at once: the client's close frame arrives after the server sent its
// own, and is taken as the answer (not echoed).
func TestWebSocket_ClosesCross(t *testing.T) {
	srv, closed := closeServer(t, &WebSocketConfig{CloseTimeout: 30 * time.Second}, nil)
	c := dialWS(t, addrOf(srv))
	c.write(append(encodeFrame(true, 0, websocket.OpBinary, []byte("bye"), &c.key),
		encodeFrame(true, 0, websocket.OpClose, []byte{0x0f, 0xa0}, &c.key)...), 0) // bye, close 4000
	c.expect(websocket.OpBinary, "bye!")
	c.expectClose(websocket.CloseNormal)
	c.expectEOF()
	expectReason(t, srv, closed, CloseServerClosing)
}

// A handler's panic closes with 1011 (ApplicationError); a request the filter refuses
// with 1002 (ProtocolError).
func TestWebSocket_PanicAndProtocolErrorCodes(t *testing.T) {
	srv, closed := closeServer(t, &WebSocketConfig{CloseTimeout: 30 * time.Second}, nil)
	c := dialWS(t, addrOf(srv))
	c.binary([]byte("panic"))
	c.expectClose(websocket.CloseInternalError)
	c.closeWith(websocket.CloseInternalError, "")
	c.expectEOF()
	expectReason(t, srv, closed, CloseApplicationError)

	lines, linesClosed := closeServer(t, nil, func(cfg *Config) {
		cfg.Filter = filter.Uint16BE()
	})
	c = dialWS(t, addrOf(lines))
	c.binary([]byte{0, 5, 'x'}) // a message that ends inside a request
	c.expectClose(websocket.CloseProtocolError)
	c.closeWith(websocket.CloseProtocolError, "")
	c.expectEOF()
	expectReason(t, lines, linesClosed, CloseProtocolError)
}

// Shutdown says goodbye to every session with 1001 and returns once they answered (or
// CloseTimeout passed for one that does not); the sessions close with ServerShutdown.
// Clients that close at the same moment cross the server's close (race detector).
func TestWebSocket_ShutdownGoingAway(t *testing.T) {
	srv, closed := closeServer(t, &WebSocketConfig{CloseTimeout: 300 * time.Millisecond}, nil)
	const answering, crossing = 4, 4
	var clients []*wsClient
	for range answering + crossing + 1 {
		c := dialWS(t, addrOf(srv))
		c.binary([]byte("hello"))
		c.expect(websocket.OpBinary, "hello")
		clients = append(clients, c)
	}
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(t.Context()) }()
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Go(func() {
			switch {
			case i < answering:
				c.expectClose(websocket.CloseGoingAway)
				c.closeWith(websocket.CloseGoingAway, "")
			case i < answering+crossing:
				c.closeWith(websocket.CloseNormal, "")
				if got := c.next(); got.op != websocket.OpClose || got.code != websocket.CloseGoingAway && got.code != websocket.CloseNormal {
					t.Errorf("a crossing close: got %v, want 1001 or the echo of 1000", got)
				}
			default: // never answers
				c.expectClose(websocket.CloseGoingAway)
			}
			c.expectEOF()
		})
	}
	wg.Wait()
	if err := recv(t, shut, "Shutdown"); err != nil {
		t.Fatal(err)
	}
	clientFirst := 0
	for range clients {
		switch ev := recv(t, closed, "Closed"); ev.reason {
		case CloseServerShutdown:
		case CloseClientClosing: // a crossing client's close came first
			clientFirst++
		default:
			t.Errorf("a session closed with %v, want ServerShutdown", ev.reason)
		}
	}
	if clientFirst > crossing {
		t.Errorf("%d sessions closed with ClientClosing; only %d clients closed", clientFirst, crossing)
	}
}

// PingInterval pings a session that has sent nothing; the client's pong keeps it, the
// next ping too, and one left unanswered for PongTimeout closes it with TimeOut.
func TestWebSocket_PingsAndPongTimeout(t *testing.T) {
	srv, closed := closeServer(t, &WebSocketConfig{PingInterval: 50 * time.Millisecond, PongTimeout: 100 * time.Millisecond,
		CloseTimeout: 30 * time.Second}, nil)
	c := dialWS(t, addrOf(srv))
	for range 2 {
		ev := c.next()
		if ev.op != websocket.OpPing {
			t.Fatalf("got %v, want a ping", ev)
		}
		c.frame(true, 0, websocket.OpPong, []byte(ev.payload), false)
	}
	if ev := c.next(); ev.op != websocket.OpPing {
		t.Fatalf("got %v, want a third ping", ev)
	}
	c.expectClose(websocket.CloseNormal)
	c.closeWith(websocket.CloseNormal, "")
	c.expectEOF()
	expectReason(t, srv, closed, CloseTimeOut)
}
