package client_test

import (
	"errors"
	"testing"

	"github.com/supersocket-go/supersocket"
	"github.com/supersocket-go/supersocket/filter"
	"github.com/supersocket-go/supersocket/internal/websocket"
	"github.com/supersocket-go/supersocket/internal/wstest"
)

// startWSServer runs a supersocket server with one WebSocket listener on addr
// ("127.0.0.1:0" for any port) until the test ends.
func startWSServer[T any](t testing.TB, addr string, ws *supersocket.WebSocketConfig, tlsc *supersocket.TLSConfig,
	f filter.Factory, h supersocket.Handlers[T]) *supersocket.Server[T] {
	t.Helper()
	srv := startServerL(t, supersocket.ListenerConfig{Network: "ws", Addr: addr, WebSocket: ws, TLS: tlsc}, f, h)
	return srv
}

// wsURL is the ws:// URL of a server's WebSocket at the default path.
func wsURL[T any](srv *supersocket.Server[T]) string { return "ws://" + addrOf(srv) + "/ws" }

// rawWS is the server's end of a WebSocket (internal/wstest) for tests that need frames
// no supersocket server sends (fragments, pings, chosen close codes, broken frames). Its
// reads fail the test on an unmasked client frame.
type rawWS struct {
	t *testing.T
	*wstest.Conn
}

// rawWSServer serves WebSockets on 127.0.0.1 (the 101 with extra header lines) and runs
// handle for each; it returns the ws:// URL.
func rawWSServer(t *testing.T, extra string, handle func(ws *rawWS)) string {
	return "ws://" + wstest.Serve(t, extra, waitLong, func(c *wstest.Conn) { handle(&rawWS{t: t, Conn: c}) }) + "/ws"
}

// send writes one server frame (unmasked).
func (ws *rawWS) send(fin bool, op websocket.Opcode, payload string) { ws.Send(fin, op, payload) }

// sendClose writes a close frame with code and reason.
func (ws *rawWS) sendClose(code websocket.CloseCode, reason string) { ws.SendClose(code, reason) }

// read reads one client frame and returns its header and unmasked payload; ok is false
// when the connection ended first.
func (ws *rawWS) read() (h websocket.Header, payload []byte, ok bool) {
	h, p, err := ws.ReadFrame()
	if errors.Is(err, wstest.ErrUnmasked) {
		ws.t.Errorf("a client frame is not masked")
	}
	return h, p, err == nil
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
