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
// exists. It returns the WebSocket layer of the session to be, and the bytes the client
// sent after its request (its first frames), in a pooled buffer or nil. A refused request
// is a *websocket.HandshakeError, which the caller answers (refuseUpgrade) once it has
// counted the failure.
func (srv *Server[T]) upgradeWebSocket(c net.Conn, cfg *WebSocketConfig) (*wsConn[T], []byte, error) {
	if srv.State() == StateStopping {
		return nil, nil, ErrNotRunning
	}
	c.SetDeadline(time.Now().Add(srv.cfg.HandshakeTimeout))
	buf := pool.Get(min(4096, cfg.MaxHeaderBytes+1))[:0]
	var req *websocket.Request
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
		if req, n, herr = websocket.ParseRequest(buf, cfg.MaxHeaderBytes); herr != nil {
			pool.Put(buf)
			return nil, nil, herr
		}
		if req != nil {
			break
		}
		if err != nil {
			pool.Put(buf)
			return nil, nil, fmt.Errorf("websocket handshake: reading the request: %w", err)
		}
	}
	w, resp, herr := srv.acceptUpgrade(req, cfg)
	if herr != nil {
		pool.Put(buf)
		return nil, nil, herr
	}
	if _, err := c.Write(resp); err != nil {
		pool.Put(buf)
		return nil, nil, fmt.Errorf("websocket handshake: writing the response: %w", err)
	}
	c.SetDeadline(time.Time{})
	var rest []byte
	if n < len(buf) {
		rest = append(pool.Get(max(len(buf)-n, srv.cfg.ReceiveBufferSize))[:0], buf[n:]...)
	}
	pool.Put(buf)
	return w, rest, nil
}

// acceptUpgrade checks an upgrade request against the listener's configuration and
// returns the WebSocket layer and the 101 response.
func (srv *Server[T]) acceptUpgrade(req *websocket.Request, cfg *WebSocketConfig) (*wsConn[T], []byte, *websocket.HandshakeError) {
	path := websocket.Path(req.Target)
	u, herr := websocket.CheckUpgrade(req)
	switch {
	case path != cfg.Path:
		return nil, nil, &websocket.HandshakeError{Status: 404, Reason: "no WebSocket at " + path}
	case herr != nil:
		return nil, nil, herr
	case !cfg.allowsOrigin(u.Origin):
		return nil, nil, &websocket.HandshakeError{Status: 403, Reason: "origin not allowed: " + u.Origin}
	}
	w := &wsConn[T]{cfg: cfg, limit: int64(srv.cfg.MaxRequestLength)}
	// The session keeps the request's head, one string (the target and path are slices
	// of it), and parses the header fields into a map only if WebSocket() is asked: a
	// map for every idle session would cost more than the rest of its WebSocket state.
	w.head = req.Head
	w.info = WebSocketInfo{Target: req.Target, Path: websocket.Path(req.Target)}
	w.text.Store(cfg.Text)
	w.heard.Store(time.Now().UnixNano())
	resp := make([]byte, 0, 256)
	resp = append(resp, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "...)
	resp = append(resp, websocket.AcceptKey(u.Key)...)
	resp = append(resp, "\r\n"...)
	if p := chooseSubprotocol(cfg.Subprotocols, u.Protocols); p != "" {
		w.info.Subprotocol = p
		resp = append(resp, "Sec-WebSocket-Protocol: "+p+"\r\n"...)
	}
	if cfg.Compression && websocket.AcceptDeflate(u.Extensions) {
		w.info.Compressed = true
		resp = append(resp, "Sec-WebSocket-Extensions: "+websocket.DeflateResponse+"\r\n"...)
	}
	return w, append(resp, "\r\n"...), nil
}

// chooseSubprotocol returns the first of the server's subprotocols the client offered.
func chooseSubprotocol(ours, offered []string) string {
	for _, p := range ours {
		for _, o := range offered {
			if p == o {
				return p
			}
		}
	}
	return ""
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
