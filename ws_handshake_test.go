package supersocket

import (
	"bufio"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/supersocket-go/supersocket/internal/websocket"
)

// The opening handshake (RFC 6455 §4.2), as the server answers it: an upgrade it accepts
// gets 101 with the right Sec-WebSocket-Accept, the subprotocol the server prefers among
// those offered, and permessage-deflate's response when offered; every other request
// gets its HTTP status, the connection closes after it, and no session is created.
func TestWebSocket_Handshake(t *testing.T) {
	var sessions atomic.Int64
	srv := startServer(t, Config{Listeners: wsListener(&WebSocketConfig{
		Origins:        []string{"https://good.example", "https://*.example.org"},
		Subprotocols:   []string{"chat", "superchat"},
		Compression:    true,
		MaxHeaderBytes: 1024,
	})}, Handlers[struct{}]{
		Connected: func(*Session[struct{}]) { sessions.Add(1) },
		Request:   echoFrame[struct{}],
	})
	good := upgradeRequest("/ws")
	edit := func(from, to string) string {
		if !strings.Contains(good, from) {
			t.Fatalf("%q is not in the request", from)
		}
		return strings.Replace(good, from, to, 1)
	}
	with := func(lines ...string) string { return upgradeRequest("/ws", lines...) }
	const deflate = websocket.DeflateResponse
	cases := []struct {
		name, request string
		status        int
		header        map[string]string // response header fields that must be there ("" : absent)
	}{
		{"minimal upgrade", good, 101, map[string]string{"Upgrade": "websocket", "Connection": "Upgrade",
			"Sec-WebSocket-Protocol": "", "Sec-WebSocket-Extensions": ""}},
		{"Upgrade in another case", edit("Upgrade: websocket", "Upgrade: WebSocket"), 101, nil},
		{"Connection with several options", edit("Connection: Upgrade", "Connection: keep-alive, upgrade"), 101, nil},
		{"a query", upgradeRequest("/ws?room=1&token=x"), 101, nil},
		{"absolute form", upgradeRequest("http://127.0.0.1/ws"), 101, nil},
		{"subprotocol: the server's preference wins", with("Sec-WebSocket-Protocol: superchat, chat\r\n"), 101,
			map[string]string{"Sec-WebSocket-Protocol": "chat"}},
		{"subprotocol: over two fields", with("Sec-WebSocket-Protocol: x\r\n", "Sec-WebSocket-Protocol: superchat\r\n"), 101,
			map[string]string{"Sec-WebSocket-Protocol": "superchat"}},
		{"subprotocol: none the server speaks", with("Sec-WebSocket-Protocol: mqtt\r\n"), 101,
			map[string]string{"Sec-WebSocket-Protocol": ""}},
		{"permessage-deflate offered", with("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"), 101,
			map[string]string{"Sec-WebSocket-Extensions": deflate}},
		{"permessage-deflate after an unknown extension", with("Sec-WebSocket-Extensions: x-foo, permessage-deflate\r\n"), 101,
			map[string]string{"Sec-WebSocket-Extensions": deflate}},
		{"permessage-deflate with a window the server cannot keep",
			with("Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=10\r\n"), 101,
			map[string]string{"Sec-WebSocket-Extensions": ""}},
		{"an allowed origin, in another case", with("Origin: https://GOOD.example\r\n"), 101, nil},
		{"an allowed subdomain", with("Origin: https://chat.example.org\r\n"), 101, nil},
		{"no origin (not a browser)", good, 101, nil},

		{"POST", edit("GET /ws", "POST /ws"), 405, nil},
		{"HEAD", edit("GET /ws", "HEAD /ws"), 405, nil},
		{"another path", upgradeRequest("/other"), 404, nil},
		{"the path with a trailing slash", upgradeRequest("/ws/"), 404, nil},
		{"no Upgrade", edit("Upgrade: websocket\r\n", ""), 426, map[string]string{"Upgrade": "websocket", "Sec-WebSocket-Version": "13"}},
		{"Upgrade: h2c", edit("Upgrade: websocket", "Upgrade: h2c"), 426, map[string]string{"Upgrade": "websocket"}},
		{"version 8", edit("Version: 13", "Version: 8"), 426, map[string]string{"Sec-WebSocket-Version": "13", "Upgrade": "websocket"}},
		{"no version", edit("Sec-WebSocket-Version: 13\r\n", ""), 426, map[string]string{"Sec-WebSocket-Version": "13"}},
		{"two versions", edit("Sec-WebSocket-Version: 13\r\n", "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Version: 8\r\n"), 426, nil},
		{"no Connection", edit("Connection: Upgrade\r\n", ""), 400, nil},
		{"Connection without upgrade", edit("Connection: Upgrade", "Connection: keep-alive"), 400, nil},
		{"no key", edit("Sec-WebSocket-Key", "X-Key"), 400, nil},
		{"a key that is not base64", edit(testKey, "not base64!!"), 400, nil},
		{"a key of 15 bytes", edit(testKey, "MDEyMzQ1Njc4OWFiY2Rl"), 400, nil},
		{"two keys", edit("Sec-WebSocket-Version", "Sec-WebSocket-Key: "+testKey+"\r\nSec-WebSocket-Version"), 400, nil},
		{"a forbidden origin", with("Origin: https://evil.example\r\n"), 403, nil},
		{"a subdomain pattern's bare domain", with("Origin: https://example.org\r\n"), 403, nil},
		{"a subdomain pattern with another scheme", with("Origin: http://chat.example.org\r\n"), 403, nil},
		{"HTTP/1.0", edit("HTTP/1.1", "HTTP/1.0"), 400, nil},
		{"HTTP/2.0", edit("HTTP/1.1", "HTTP/2.0"), 505, nil},
		{"no Host", edit("Host: 127.0.0.1\r\n", ""), 400, nil},
		{"two Hosts", edit("Host: 127.0.0.1\r\n", "Host: a\r\nHost: b\r\n"), 400, nil},
		{"a body", edit("Host:", "Content-Length: 5\r\nHost:"), 400, nil},
		{"a head over MaxHeaderBytes", with("X-Padding: " + strings.Repeat("a", 1024) + "\r\n"), 431, nil},
		{"a bare LF", edit("Host: 127.0.0.1\r\n", "Host: 127.0.0.1\n"), 400, nil},
	}
	accepted := 0
	for _, tc := range cases {
		c, resp := dialWSRaw(t, addrOf(srv), tc.request)
		if resp.StatusCode != tc.status {
			t.Errorf("%s: %s, want %d", tc.name, resp.Status, tc.status)
			continue
		}
		for k, v := range tc.header {
			if got := resp.Header.Get(k); got != v {
				t.Errorf("%s: %s: %q, want %q", tc.name, k, got, v)
			}
		}
		if tc.status != 101 {
			// Refused: a short reason, Connection: close, and the connection ends.
			body, _ := io.ReadAll(resp.Body)
			if len(body) == 0 || !resp.Close {
				t.Errorf("%s: body %q, Connection: close %v", tc.name, body, resp.Close)
			}
			c.expectEOF()
			continue
		}
		accepted++
		if got, want := resp.Header.Get("Sec-WebSocket-Accept"), acceptFor(testKey); got != want {
			t.Errorf("%s: Sec-WebSocket-Accept %q, want %q", tc.name, got, want)
		}
		c.deflate = resp.Header.Get("Sec-WebSocket-Extensions") != ""
		c.binary([]byte("ECHO ok\r\n"))
		c.expect(websocket.OpBinary, "ECHO ok\r\n")
		c.closeWith(websocket.CloseNormal, "")
		c.expectClose(websocket.CloseNormal)
		c.expectEOF()
	}
	// A refusal is counted before it is answered; a session's Connected ran before its echo.
	if st := srv.Stats(); st.HandshakeFailures != uint64(len(cases)-accepted) {
		t.Errorf("Stats.HandshakeFailures %d, want %d", st.HandshakeFailures, len(cases)-accepted)
	}
	if n := sessions.Load(); n != int64(accepted) {
		t.Errorf("%d sessions, want one per accepted handshake, %d", n, accepted)
	}
}

// The upgrade request may arrive one byte per write, and the client's first frames may
// come in the same write as its request: they are the session's first bytes.
func TestWebSocket_HandshakeChoppedAndFramesAfterIt(t *testing.T) {
	srv := startServer(t, Config{Listeners: wsListener(nil)}, Handlers[struct{}]{Request: echoFrame[struct{}]})
	conn := dialConn(t, addrOf(srv))
	c := &wsClient{t: t, Conn: conn, r: bufio.NewReader(conn), key: [4]byte{9, 8, 7, 6}}
	c.write([]byte(upgradeRequest("/ws")), 1)
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("chopped handshake: %v %v", resp, err)
	}

	conn = dialConn(t, addrOf(srv))
	c = &wsClient{t: t, Conn: conn, r: bufio.NewReader(conn), key: [4]byte{9, 8, 7, 6}}
	first := encodeFrame(true, 0, websocket.OpBinary, []byte("ECHO first\r\n"), &c.key)
	c.write(append([]byte(upgradeRequest("/ws")), first...), 0)
	if resp, err := http.ReadResponse(c.r, nil); err != nil || resp.StatusCode != 101 {
		t.Fatalf("handshake with a frame after it: %v %v", resp, err)
	}
	c.expect(websocket.OpBinary, "ECHO first\r\n")
}

// A client that sends part of its request and nothing more is cut off after
// HandshakeTimeout, with no response and no session.
func TestWebSocket_HandshakeTimeout(t *testing.T) {
	var sessions atomic.Int64
	srv := startServer(t, Config{Listeners: wsListener(nil), HandshakeTimeout: 100 * time.Millisecond},
		Handlers[struct{}]{Connected: func(*Session[struct{}]) { sessions.Add(1) }, Request: echoFrame[struct{}]})
	start := time.Now() // before the dial: the server's clock starts at its accept, which may come before dialAddr returns
	c := dialAddr(t, addrOf(srv))
	c.send("GET /ws HTTP/1.1\r\nHost: a\r\n")
	c.expectClosed()
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Errorf("cut off after %v, before HandshakeTimeout", d)
	}
	eventually(t, "the handshake failure", func() bool { return srv.Stats().HandshakeFailures == 1 })
	if n := sessions.Load(); n != 0 {
		t.Errorf("%d sessions", n)
	}
}
