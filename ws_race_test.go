package supersocket

import (
	"testing"

	"github.com/supersocket-go/supersocket/internal/websocket"
)

// TestWebSocket_ClientCloseRacesServerClose documents a data race (found by the client
// package's tests under -race): when a client's close frame arrives, wsConn.control
// sets peerDone on the session's reader goroutine, queues the echo, and only then calls
// Session.Close; a Close from another goroutine in between (Stop, Shutdown, a handler of
// another session) wins the CAS and runs wsConn.wake, which reads peerDone without
// synchronisation (ws_conn.go: "if w.peerDone || …" in wake against "w.peerDone = true"
// in control). The echo is written before the reader's Close, so a client that waits
// for it (as client.Conn.Close does) and then stops the server hits the window
// naturally. Fix: make peerDone an atomic.Bool (or set it under the session's close).
// Under -race this test fails within a few hundred iterations.
func TestWebSocket_ClientCloseRacesServerClose(t *testing.T) {
	sessions := make(chan *Session[struct{}], 1)
	srv := startServer(t, Config{Listeners: wsListener(nil)}, Handlers[struct{}]{
		Connected: func(s *Session[struct{}]) { sessions <- s },
		Request:   echoFrame[struct{}],
	})
	for range 300 {
		c := dialWS(t, addrOf(srv))
		s := recv(t, sessions, "Connected")
		c.frame(true, 0, websocket.OpClose, websocket.AppendClose(nil, websocket.CloseNormal, ""), false)
		c.expectClose(websocket.CloseNormal)
		s.Close(CloseServerClosing) // may win the CAS while the reader is between its echo and its Close
		c.expectEOF()
		c.Close()
	}
}
