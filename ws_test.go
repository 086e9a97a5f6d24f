package supersocket

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/supersocket-go/supersocket/filter"
	"github.com/supersocket-go/supersocket/internal/websocket"
)

// wsClient is a raw WebSocket client for the tests: it writes frames byte for byte, so a
// test can send anything, valid or not.
type wsClient struct {
	t *testing.T
	net.Conn
	r   *bufio.Reader
	key [4]byte
}

// wsListener is a WebSocket listener on loopback.
func wsListener(cfg *WebSocketConfig) []ListenerConfig {
	return []ListenerConfig{{Network: "ws", Addr: "127.0.0.1:0", WebSocket: cfg}}
}

// upgradeRequest is a valid upgrade request for path, with extra header lines.
func upgradeRequest(path string, extra ...string) string {
	key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef"))
	return "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\n" + strings.Join(extra, "") + "\r\n"
}

// dialWS dials srv and sends request; it returns the client and the response's status.
func dialWSRaw(t *testing.T, addr, request string) (*wsClient, *http.Response) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, waitLong)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(waitLong))
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatalf("reading the handshake response: %v", err)
	}
	return &wsClient{t: t, Conn: c, r: r, key: [4]byte{0x12, 0x34, 0x56, 0x78}}, resp
}

// dialWS completes a handshake at the listener's default path.
func dialWS(t *testing.T, addr string, extra ...string) *wsClient {
	t.Helper()
	c, resp := dialWSRaw(t, addr, upgradeRequest("/ws", extra...))
	if resp.StatusCode != 101 {
		t.Fatalf("handshake: %s", resp.Status)
	}
	return c
}

// frame writes one frame: fin, opcode, payload, masked unless unmasked.
func (c *wsClient) frame(fin bool, rsv uint8, op websocket.Opcode, payload []byte, unmasked bool) {
	c.t.Helper()
	key := &c.key
	if unmasked {
		key = nil
	}
	b := websocket.AppendHeader(nil, fin, rsv, op, len(payload), key)
	p := bytes.Clone(payload)
	if !unmasked {
		websocket.Mask(c.key, 0, p)
	}
	if _, err := c.Write(append(b, p...)); err != nil {
		c.t.Fatalf("write frame: %v", err)
	}
}

func (c *wsClient) text(s string)   { c.frame(true, 0, websocket.OpText, []byte(s), false) }
func (c *wsClient) binary(b []byte) { c.frame(true, 0, websocket.OpBinary, b, false) }

// read reads one frame from the server.
func (c *wsClient) read() (websocket.Header, []byte) {
	c.t.Helper()
	var hb []byte
	for {
		b, err := c.r.ReadByte()
		if err != nil {
			c.t.Fatalf("reading a frame: %v (after %d header bytes)", err, len(hb))
		}
		hb = append(hb, b)
		h, n, err := websocket.ParseHeader(hb, 1<<30)
		if err != nil {
			c.t.Fatal(err)
		}
		if n > 0 {
			if h.Masked {
				c.t.Fatal("a server frame is masked")
			}
			p := make([]byte, h.Length)
			if _, err := io.ReadFull(c.r, p); err != nil {
				c.t.Fatalf("reading a payload: %v", err)
			}
			return h, p
		}
	}
}

// expect reads one frame and checks its opcode and payload.
func (c *wsClient) expect(op websocket.Opcode, payload string) {
	c.t.Helper()
	h, p := c.read()
	if h.Op != op || string(p) != payload {
		c.t.Fatalf("got %v %q, want %v %q", h.Op, p, op, payload)
	}
}

// expectClose reads a close frame with code, then the connection's end.
func (c *wsClient) expectClose(code websocket.CloseCode) {
	c.t.Helper()
	h, p := c.read()
	if h.Op != websocket.OpClose {
		c.t.Fatalf("got a %v frame %q, want a close frame", h.Op, p)
	}
	got, reason, err := websocket.ParseClose(p)
	if err != nil || got != code {
		c.t.Fatalf("close frame %v %q (%v), want %v", got, reason, err, code)
	}
}

// expectEOF reads until the server closes the connection.
func (c *wsClient) expectEOF() {
	c.t.Helper()
	b, err := io.ReadAll(c.r)
	if err != nil && !isReset(err) {
		c.t.Fatalf("waiting for the connection to end: %v (after %q)", err, b)
	}
}

// A browser's "ECHO hello" text message is a command line, and the reply a text message
// without its line ending (Lines); binary messages carry several binary requests.
func TestWebSocket_CommandLineAndBinary(t *testing.T) {
	closed := make(chan closeEvent, 2)
	srv := startServer(t, Config{Listeners: wsListener(&WebSocketConfig{Text: true, Lines: true})}, Handlers[struct{}]{
		Request: func(s *Session[struct{}], r Request) {
			if info := s.WebSocket(); info == nil || info.Path != "/ws" {
				t.Errorf("WebSocket() = %+v", info)
			}
			s.Send(r.Body, []byte("\r\n"))
		},
		Closed: closedInto[struct{}](closed),
	})
	c := dialWS(t, addrOf(srv))
	c.text("ECHO hello")
	c.expect(websocket.OpText, "hello")
	c.text("ECHO one\r\nECHO two\r\n")
	c.expect(websocket.OpText, "one")
	c.expect(websocket.OpText, "two")
	// A fragmented message with a ping between its fragments.
	c.frame(false, 0, websocket.OpText, []byte("ECHO fr"), false)
	c.frame(true, 0, websocket.OpPing, []byte("are you there"), false)
	c.expect(websocket.OpPong, "are you there")
	c.frame(true, 0, websocket.OpContinuation, []byte("agmented"), false)
	c.expect(websocket.OpText, "fragmented")
	// The client closes: its code is echoed, and the session closes with ClientClosing.
	var b []byte
	c.frame(true, 0, websocket.OpClose, websocket.AppendClose(b, 4000, "bye"), false)
	c.expectClose(4000)
	c.expectEOF()
	if ev := recv(t, closed, "Closed"); ev.reason != CloseClientClosing {
		t.Fatalf("closed with %v", ev.reason)
	}
}

// Binary messages of the echo app's packets, several per message.
func TestWebSocket_BinaryPackets(t *testing.T) {
	srv := startServer(t, Config{Listeners: wsListener(nil), Filter: filter.Uint16BE()}, Handlers[struct{}]{
		Request: func(s *Session[struct{}], r Request) { s.Send(r.Frame) },
	})
	c := dialWS(t, addrOf(srv))
	c.binary([]byte{0, 2, 'a', 'b', 0, 1, 'c'})
	c.expect(websocket.OpBinary, "\x00\x02ab")
	c.expect(websocket.OpBinary, "\x00\x01c")
	// A message that ends inside a request is a protocol error: 1002.
	c.binary([]byte{0, 5, 'x'})
	c.expectClose(websocket.CloseProtocolError)
}

// Shutdown says goodbye with 1001 and waits for the client's close frame.
func TestWebSocket_ShutdownSends1001(t *testing.T) {
	srv := startServer(t, Config{Listeners: wsListener(nil)}, Handlers[struct{}]{Request: echoFrame[struct{}]})
	c := dialWS(t, addrOf(srv))
	c.text("ECHO x\r\n")
	c.expect(websocket.OpBinary, "ECHO x\r\n")
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(t.Context()) }()
	c.expectClose(websocket.CloseGoingAway)
	var b []byte
	c.frame(true, 0, websocket.OpClose, websocket.AppendClose(b, websocket.CloseGoingAway, ""), false)
	c.expectEOF()
	if err := recv(t, shut, "Shutdown"); err != nil {
		t.Fatal(err)
	}
}

// Handshakes that are not valid upgrades get their HTTP status and create no session.
func TestWebSocket_HandshakeRefusals(t *testing.T) {
	srv := startServer(t, Config{Listeners: wsListener(&WebSocketConfig{Origins: []string{"https://good.example"}})},
		Handlers[struct{}]{Request: echoFrame[struct{}]})
	for _, tc := range []struct {
		name, req string
		status    int
	}{
		{"wrong path", upgradeRequest("/other"), 404},
		{"bad origin", upgradeRequest("/ws", "Origin: https://evil.example\r\n"), 403},
		{"POST", strings.Replace(upgradeRequest("/ws"), "GET", "POST", 1), 405},
		{"version 8", strings.Replace(upgradeRequest("/ws"), "Version: 13", "Version: 8", 1), 426},
		{"no key", strings.Replace(upgradeRequest("/ws"), "Sec-WebSocket-Key", "X-Key", 1), 400},
		{"plain GET", "GET /ws HTTP/1.1\r\nHost: a\r\n\r\n", 426},
	} {
		_, resp := dialWSRaw(t, addrOf(srv), tc.req)
		if resp.StatusCode != tc.status {
			t.Errorf("%s: %s, want %d", tc.name, resp.Status, tc.status)
		}
	}
	if c := dialWS(t, addrOf(srv), "Origin: https://GOOD.example\r\n"); c == nil {
		t.Fatal("an allowed origin was refused")
	}
	if st := srv.Stats(); st.HandshakeFailures != 6 || st.Accepted != 7 {
		t.Errorf("Stats: %d handshake failures of %d accepted, want 6 of 7", st.HandshakeFailures, st.Accepted)
	}
}
