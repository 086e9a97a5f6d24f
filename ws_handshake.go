package supersocket

import (
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/supersocket-go/supersocket/internal/pool"
	"github.com/supersocket-go/supersocket/internal/websocket"
)

// upgradeWebSocket reads and answers the opening handshake on c (the socket, or TLS over
// it) on the connection's own goroutine, bounded by HandshakeTimeout, before any session
// exists. It returns what the session's WebSocket layer keeps of the handshake, and the
// bytes the client sent after its request (its first frames), in a pooled buffer or nil. A refused request
// is a *websocket.HandshakeError, which the caller answers (refuseUpgrade) once it has
// counted the failure.
func (srv *Server[T]) upgradeWebSocket(c net.Conn, cfg *WebSocketConfig, h *handshaking) (wsHandshake, []byte, error) {
	var w wsHandshake
	if srv.State() == StateStopping {
		return w, nil, ErrNotRunning
	}
	c.SetDeadline(time.Now().Add(srv.cfg.HandshakeTimeout))
	buf := pool.Get(min(4096, cfg.MaxHeaderBytes+1))[:0]
	// req's strings are views of buf, valid until buf goes back to the pool: what the
	// session keeps of them is copied (KeptHead).
	var req websocket.Request
	var n int
	for {
		if len(buf) == cap(buf) {
			bigger := append(pool.Get(min(2*cap(buf), cfg.MaxHeaderBytes+1))[:0], buf...)
			pool.Put(buf)
			buf = bigger
		}
		k, err := c.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+k]
		var herr *websocket.HandshakeError
		if n, herr = req.Parse(buf, cfg.MaxHeaderBytes); herr != nil {
			pool.Put(buf)
			return w, nil, herr
		}
		if n > 0 {
			break
		}
		if err != nil {
			pool.Put(buf)
			return w, nil, fmt.Errorf("websocket handshake: reading the request: %w", err)
		}
	}
	resp := pool.Get(256)[:0]
	w, resp, herr := acceptUpgrade(&req, cfg, resp)
	if herr != nil {
		pool.Put(resp)
		pool.Put(buf)
		return w, nil, herr
	}
	if !h.claim() { // the 101 makes a session for the client: a stop must find it as one
		pool.Put(resp)
		pool.Put(buf)
		return wsHandshake{}, nil, errStoppedInHandshake
	}
	_, err := c.Write(resp)
	pool.Put(resp)
	if err != nil {
		pool.Put(buf)
		return wsHandshake{}, nil, fmt.Errorf("websocket handshake: writing the response: %w", err)
	}
	c.SetDeadline(time.Time{})
	if h := srv.hooks; h != nil && h.upgraded != nil {
		h.upgraded()
	}
	var rest []byte
	if n < len(buf) {
		rest = append(pool.Get(max(len(buf)-n, srv.cfg.ReceiveBufferSize))[:0], buf[n:]...)
	}
	pool.Put(buf)
	return w, rest, nil
}

// wsHandshake is what a WebSocket session keeps of its opening handshake (see wsConn).
type wsHandshake struct {
	cfg        *WebSocketConfig
	head       string // the request line and header fields, less the handshake's own
	sub        uint8  // 1 + the index in cfg.Subprotocols of the subprotocol chosen; 0 for none
	compressed bool   // permessage-deflate was negotiated
}

// acceptUpgrade checks an upgrade request against the listener's configuration and
// returns what the session keeps of it and the 101 response, appended to resp.
func acceptUpgrade(req *websocket.Request, cfg *WebSocketConfig, resp []byte) (wsHandshake, []byte, *websocket.HandshakeError) {
	var w wsHandshake
	path := websocket.Path(req.Target)
	u, herr := websocket.CheckUpgrade(req)
	switch {
	case path != cfg.Path:
		return w, resp, &websocket.HandshakeError{Status: 404, Reason: "no WebSocket at " + path}
	case herr != nil:
		return w, resp, herr
	case !cfg.allowsOrigin(u.Origin):
		return w, resp, &websocket.HandshakeError{Status: 403, Reason: "origin not allowed: " + u.Origin}
	}
	// The session keeps the request's head without the handshake's own fields, one
	// string, and parses it only if WebSocket() is asked: a map for every idle session
	// would cost more than the rest of its WebSocket state.
	w.cfg, w.head = cfg, req.KeptHead()
	resp = append(resp, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "...)
	resp = websocket.AppendAcceptKey(resp, u.Key)
	resp = append(resp, "\r\n"...)
	if i := chooseSubprotocol(cfg.Subprotocols, u.Protocols); i >= 0 {
		w.sub = uint8(i + 1)
		resp = append(resp, "Sec-WebSocket-Protocol: "...)
		resp = append(resp, cfg.Subprotocols[i]...)
		resp = append(resp, "\r\n"...)
	}
	if cfg.Compression && websocket.AcceptDeflate(u.Extensions) {
		w.compressed = true
		resp = append(resp, "Sec-WebSocket-Extensions: "+websocket.DeflateResponse+"\r\n"...)
	}
	return w, append(resp, "\r\n"...), nil
}

// chooseSubprotocol returns the index of the first of the server's subprotocols the
// client offered, -1 for none.
func chooseSubprotocol(ours, offered []string) int {
	for i, p := range ours {
		for _, o := range offered {
			if p == o {
				return i
			}
		}
	}
	return -1
}

// refuseUpgrade answers a refused upgrade request with its HTTP status and reason.
func refuseUpgrade(c net.Conn, herr *websocket.HandshakeError) {
	body := herr.Reason + "\n"
	connection, extra := "close", ""
	if herr.Status == 426 {
		// RFC 9110 §15.5.22: a 426 names the protocol to upgrade to (Upgrade, with
		// "upgrade" in Connection); RFC 6455 §4.4: and the versions spoken.
		connection, extra = "Upgrade, close", "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
	}
	fmt.Fprintf(c, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: %s\r\n%s\r\n%s",
		herr.Status, statusText[herr.Status], len(body), connection, extra, body)
}

// isWebSocket reports whether a listener network is the WebSocket one.
func isWebSocket(network string) bool { return strings.HasPrefix(network, "ws") }

// statusText names the statuses a refused upgrade is answered with.
var statusText = map[int]string{
	400: "Bad Request", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
	426: "Upgrade Required", 431: "Request Header Fields Too Large", 505: "HTTP Version Not Supported",
}
