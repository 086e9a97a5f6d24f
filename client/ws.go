package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/textproto"
	"net/url"
	"slices"
	"strings"

	"github.com/supersocket-go/supersocket/internal/websocket"
	"github.com/supersocket-go/supersocket/internal/wsclient"
)

// WebSocketConfig configures the WebSocket of a ws:// or wss:// Config.Addr. Its zero
// value sends binary messages and offers no subprotocol.
type WebSocketConfig struct {
	// Origin, when set, is sent as the Origin field: a server may accept only some
	// origins (a browser always sends one).
	Origin string
	// Subprotocols are offered in Sec-WebSocket-Protocol, in order of preference; the
	// server's choice, if any, is Conn.Subprotocol. A server that picks one not offered
	// fails the handshake. Each must be a token, offered once.
	Subprotocols []string
	// Header holds further fields of the upgrade request (Authorization, Cookie, …). The
	// fields the handshake sets itself (Host, Upgrade, Connection, Origin,
	// Sec-WebSocket-*) may not appear. An http.Header converts to it.
	Header textproto.MIMEHeader
	// Text makes Send, TrySend, Request and RequestID send text messages, which must be
	// valid UTF-8 (else ErrInvalidUTF8, and nothing is sent), rather than binary ones.
	Text bool
}

func (w *WebSocketConfig) isZero() bool {
	return w.Origin == "" && len(w.Subprotocols) == 0 && len(w.Header) == 0 && !w.Text
}

// CloseError is why a WebSocket connection ended when the server closed it with a close
// frame (the client answered it): Code is the frame's status code (RFC 6455 §7.4 — 1000
// normal closure, 1001 going away, which a supersocket server sends when it shuts down,
// 1002 protocol error, 1008 policy violation, 1009 message too big, 1011 internal error;
// 1005 when the frame carried none), Reason its text. Like any cause of a lost
// connection it is wrapped by ErrConnectionLost (the Requests that were waiting) and,
// without Reconnect, by ErrClosed (Err): find it with errors.As.
type CloseError struct {
	Code   int
	Reason string
}

func (e *CloseError) Error() string {
	s := "the server closed the WebSocket: " + websocket.CloseCode(e.Code).String()
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	return s
}

// HandshakeError is a WebSocket opening handshake that the server refused: Status is its
// HTTP status (a supersocket server answers 404 for another path, 403 for an origin it
// does not allow, 426 for a request that is not an upgrade), Reason its reason phrase
// and the start of its body. Dial's error wraps it.
type HandshakeError struct {
	Status int
	Reason string
}

func (e *HandshakeError) Error() string {
	return fmt.Sprintf("websocket handshake refused: %d %s", e.Status, e.Reason)
}

// ErrInvalidUTF8 is returned by Send, TrySend, Request and RequestID for a text message
// (WebSocketConfig.Text) that is not valid UTF-8; nothing is sent.
var ErrInvalidUTF8 = errors.New("client: a text message must be valid UTF-8")

// wsTarget is a parsed ws:// or wss:// Addr.
type wsTarget struct {
	dialAddr string // host:port to dial
	hs       wsclient.Handshake
}

func isWebSocketURL(addr string) bool {
	return strings.HasPrefix(addr, "ws://") || strings.HasPrefix(addr, "wss://")
}

// webSocketDefaults validates a WebSocket Config: the URL, the network, TLS (default for
// wss), and the handshake's fields.
func (c *Config) webSocketDefaults() error {
	u, err := url.Parse(c.Addr)
	switch {
	case err != nil:
		return bad("Addr", "%q is not a URL: %v", c.Addr, err)
	case u.Host == "" || u.Hostname() == "":
		return bad("Addr", "%q has no host", c.Addr)
	case u.User != nil:
		return bad("Addr", "%q carries user information; send credentials in WebSocket.Header", c.Addr)
	case u.Fragment != "" || strings.Contains(c.Addr, "#"):
		return bad("Addr", "%q has a fragment, which a WebSocket URL may not", c.Addr)
	}
	switch c.Network {
	case "":
		c.Network = "tcp"
	case "tcp", "tcp4", "tcp6":
	default:
		return bad("Network", "%q: a WebSocket runs over tcp, tcp4 or tcp6", c.Network)
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"ws": "80", "wss": "443"}[u.Scheme]
	}
	if u.Scheme == "wss" && c.TLS == nil {
		c.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	} else if u.Scheme == "ws" && c.TLS != nil {
		return bad("TLS", "set, but Addr %q is ws://; WebSocket over TLS is wss://", c.Addr)
	}
	ws := &c.WebSocket
	if err := wsclient.CheckProtocols(ws.Subprotocols); err != nil {
		return bad("WebSocket.Subprotocols", "%v", err)
	}
	if err := wsclient.CheckHeader(ws.Header); err != nil {
		return bad("WebSocket.Header", "%v", err)
	}
	if strings.ContainsAny(ws.Origin, "\r\n\x00") {
		return bad("WebSocket.Origin", "%q holds a line break or NUL", ws.Origin)
	}
	c.ws = &wsTarget{
		dialAddr: net.JoinHostPort(u.Hostname(), port),
		hs: wsclient.Handshake{Host: u.Host, Target: u.RequestURI(), Origin: ws.Origin,
			Protocols: slices.Clone(ws.Subprotocols), Header: maps.Clone(ws.Header)},
	}
	return nil
}

// dialAddr is the host:port to dial.
func (c *Config) dialAddr() string {
	if c.ws != nil {
		return c.ws.dialAddr
	}
	return c.Addr
}

// upgrade makes the opening handshake on nc, within ctx, and returns the WebSocket layer
// of the link to be.
func (c *Conn) upgrade(ctx context.Context, nc net.Conn) (*wsLink, error) {
	if d, ok := ctx.Deadline(); ok {
		nc.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(aLongTimeAgo) })
	resp, rest, err := c.cfg.ws.hs.Do(nc)
	if !stop() && err == nil {
		err = ctx.Err() // ctx ended as the handshake did: nc's deadline is in the past
	}
	var refused *wsclient.Refused
	if errors.As(err, &refused) {
		err = &HandshakeError{Status: refused.Status, Reason: refused.Reason}
	}
	if err != nil {
		return nil, err
	}
	w := &wsLink{rd: wsclient.NewReader(c.cfg.MaxRequestLength), initial: rest, subprotocol: resp.Subprotocol,
		op: websocket.OpBinary}
	if c.cfg.WebSocket.Text {
		w.op = websocket.OpText
	}
	return w, nil
}

// Subprotocol returns the subprotocol the server chose for the live WebSocket
// connection, "" for none, without a connection, or for a Conn that is not a WebSocket.
// Safe from any goroutine.
func (c *Conn) Subprotocol() string {
	if l := c.cur.Load(); l != nil && l.ws != nil {
		return l.ws.subprotocol
	}
	return ""
}
