package supersocket

import (
	"bytes"
	"net"
	"time"
)

// DetectConfig serves several protocols on one TCP port (ListenerConfig.Detect): the
// listener looks at a connection's first bytes, after its PROXY header if it has one,
// and picks
//
//   - TLS, for a ClientHello (0x16 0x03), when the listener has TLS; after the
//     handshake it looks again at the first decrypted bytes, so wss and TLS-wrapped raw
//     protocols share the port;
//   - WebSocket, for an HTTP GET request line ("GET <target> HTTP/1.x"), when the
//     listener has a WebSocketConfig: the upgrade is read as on a "ws" listener (a GET
//     that is not a valid upgrade is answered with its HTTP error);
//   - the raw protocol otherwise: the session's filter gets every byte, those looked at
//     included, and decides (garbage is the filter's to refuse).
//
// Detection waits at most Timeout for bytes that decide; a connection still undecided
// then (silent, or a few bytes that could start either) is served raw. A protocol where
// the server speaks first cannot be detected: its client waits for the server's greeting
// while the server waits for the client's first bytes, so such a client is served only
// after Timeout, as raw. Give such protocols a port of their own.
type DetectConfig struct {
	// Timeout bounds the wait for bytes that decide. Default 1s.
	Timeout time.Duration
}

// DefaultDetectTimeout is DetectConfig.Timeout's default.
const DefaultDetectTimeout = time.Second

// protocol is what detection chose.
type protocol uint8

const (
	protoRaw protocol = iota
	protoTLS
	protoWebSocket
)

func (p protocol) String() string {
	switch p {
	case protoTLS:
		return "tls"
	case protoWebSocket:
		return "websocket"
	}
	return "raw"
}

// classify decides from a connection's first bytes; decided is false while b could still
// start either of the protocols on offer (more bytes are needed). maxLine bounds the
// request line of a WebSocket upgrade.
func classify(b []byte, tls, ws bool, maxLine int) (p protocol, decided bool) {
	if len(b) == 0 {
		return protoRaw, false
	}
	if tls && b[0] == 0x16 {
		if len(b) < 2 {
			return protoRaw, false
		}
		if b[1] == 0x03 {
			return protoTLS, true
		}
		return protoRaw, true
	}
	if ws {
		const get = "GET "
		n := min(len(b), len(get))
		if string(b[:n]) != get[:n] {
			return protoRaw, true
		}
		if n < len(get) {
			return protoRaw, false
		}
		end := bytes.Index(b, []byte("\r\n"))
		if end < 0 {
			if len(b) >= maxLine || bytes.IndexByte(b, '\n') >= 0 {
				return protoRaw, true
			}
			return protoRaw, false
		}
		line := b[:end]
		// "GET <target> HTTP/1.x": one space each side of a target without spaces.
		if sp := bytes.LastIndexByte(line, ' '); sp > len(get) && bytes.IndexByte(line[len(get):sp], ' ') < 0 &&
			len(line)-sp == len(" HTTP/1.1") && bytes.HasPrefix(line[sp:], []byte(" HTTP/1.")) {
			return protoWebSocket, true
		}
		return protoRaw, true
	}
	return protoRaw, true
}

// detect reads c until its first bytes decide the protocol (see classify), within
// timeout, after pre (bytes already read, pooled, which it takes over). It returns the
// protocol and every byte read, pre's included, in a pooled buffer (nil for none). A
// connection still undecided when the time is up, or that ends, is raw; only another
// read error fails.
func detect(c net.Conn, pre []byte, tls, ws bool, limit int, timeout time.Duration) (protocol, []byte, error) {
	if p, ok := classify(pre, tls, ws, limit); ok {
		return p, pre, nil
	}
	c.SetReadDeadline(time.Now().Add(timeout))
	defer c.SetReadDeadline(time.Time{})
	var p protocol
	buf, err := readMore(c, pre, limit, func(b []byte) bool {
		var ok bool
		p, ok = classify(b, tls, ws, limit)
		return ok
	})
	if err != nil && !isTimeout(err) && !isEOF(err) {
		return protoRaw, putBack(buf), err
	}
	return p, keepBytes(buf), nil
}
