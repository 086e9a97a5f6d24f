package client_test

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"github.com/supersocket-go/supersocket"
	"github.com/supersocket-go/supersocket/filter"
	"github.com/supersocket-go/supersocket/internal/websocket"
)

// startWSServer runs a supersocket server with one WebSocket listener on addr
// ("127.0.0.1:0" for any port) until the test ends.
func startWSServer[T any](t testing.TB, addr string, ws *supersocket.WebSocketConfig, tlsc *supersocket.TLSConfig,
	f filter.Factory, h supersocket.Handlers[T]) *supersocket.Server[T] {
	t.Helper()
	srv := startServerL(t, supersocket.ListenerConfig{Network: "ws", Addr: addr, WebSocket: ws, TLS: tlsc}, f, h)
	// Runs after the test's clients have closed (registered after them) and before the
	// server's Stop: the sessions of the closed clients finish first. Stop racing a
	// session that is answering its client's close frame trips a data race in the
	// server (TestWebSocket_ClientCloseRacesServerClose in the root package); remove
	// this wait once that is fixed. A bounded poll: nothing signals a session's end here.
	t.Cleanup(func() {
		for deadline := time.Now().Add(waitLong); srv.Stats().Sessions > 0 && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
	})
	return srv
}

// wsURL is the ws:// URL of a server's WebSocket at the default path.
func wsURL[T any](srv *supersocket.Server[T]) string { return "ws://" + addrOf(srv) + "/ws" }

// rawWS is the server's end of a WebSocket for tests that need frames no supersocket
// server sends (fragments, pings, chosen close codes, broken frames). It checks the
// client's side of the protocol as it reads: every client frame must be masked.
type rawWS struct {
	t *testing.T
	net.Conn
	r *bufio.Reader
}

// rawWSServer accepts WebSocket connections on 127.0.0.1, answers each upgrade with 101
// (and extra header lines), and runs handle on its own goroutine; it returns the ws://
// URL. Cleanup as rawServer.
func rawWSServer(t *testing.T, extra string, handle func(ws *rawWS)) string {
	addr := rawServer(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(waitLong))
		r := bufio.NewReader(c)
		var head []byte
		for !bytes.HasSuffix(head, []byte("\r\n\r\n")) {
			line, err := r.ReadBytes('\n')
			if err != nil {
				return
			}
			head = append(head, line...)
		}
		req, _, herr := websocket.ParseRequest(head, 8192)
		if herr != nil {
			t.Errorf("the client's upgrade request: %v", herr)
			return
		}
		u, herr := websocket.CheckUpgrade(req)
		if herr != nil {
			t.Errorf("the client's upgrade request: %v", herr)
			return
		}
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "+
			websocket.AcceptKey(u.Key)+"\r\n"+extra+"\r\n")
		handle(&rawWS{t: t, Conn: c, r: r})
	})
	return "ws://" + addr + "/ws"
}

// send writes one server frame (unmasked).
func (ws *rawWS) send(fin bool, op websocket.Opcode, payload string) {
	ws.Write(append(websocket.AppendHeader(nil, fin, 0, op, len(payload), nil), payload...))
}

// sendClose writes a close frame with code and reason.
func (ws *rawWS) sendClose(code websocket.CloseCode, reason string) {
	ws.send(true, websocket.OpClose, string(websocket.AppendClose(nil, code, reason)))
}

// read reads one client frame and returns its header and unmasked payload; ok is false
// when the connection ended first.
func (ws *rawWS) read() (h websocket.Header, payload []byte, ok bool) {
	var hb []byte
	for {
		b, err := ws.r.ReadByte()
		if err != nil {
			return h, nil, false
		}
		hb = append(hb, b)
		h, n, err := websocket.ParseHeader(hb, 1<<20)
		if err != nil {
			ws.t.Errorf("a client frame header: %v", err)
			return h, nil, false
		}
		if n == 0 {
			continue
		}
		if !h.Masked {
			ws.t.Errorf("a client frame is not masked")
		}
		p := make([]byte, h.Length)
		if _, err := io.ReadFull(ws.r, p); err != nil {
			return h, nil, false
		}
		websocket.Mask(h.Key, 0, p)
		return h, p, true
	}
}

// expect reads one client frame and checks its opcode and payload.
func (ws *rawWS) expect(op websocket.Opcode, payload string) bool {
	h, p, ok := ws.read()
	if !ok || h.Op != op || string(p) != payload {
		ws.t.Errorf("client frame %v %q (ok %v), want %v %q", h.Op, p, ok, op, payload)
		return false
	}
	return true
}

// expectClose reads one client frame and checks that it is a close frame with code.
func (ws *rawWS) expectClose(code websocket.CloseCode) bool {
	h, p, ok := ws.read()
	if !ok || h.Op != websocket.OpClose {
		ws.t.Errorf("client frame %v %q (ok %v), want a close frame", h.Op, p, ok)
		return false
	}
	if got, _, err := websocket.ParseClose(p); err != nil || got != code {
		ws.t.Errorf("client close frame %v (%v), want %v", got, err, code)
		return false
	}
	return true
}
