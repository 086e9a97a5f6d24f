package supersocket

import (
	"bufio"
	"bytes"
	"compress/flate"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/supersocket-go/supersocket/filter"
	"github.com/supersocket-go/supersocket/internal/websocket"
)

// wsClient is a raw WebSocket client for the tests: it writes frames byte for byte, so a
// test can send anything, valid or not. It encodes and decodes frames itself, from RFC
// 6455 §5.2, rather than with internal/websocket: the tests do not check the codec
// against itself.
type wsClient struct {
	t *testing.T
	net.Conn
	r       *bufio.Reader
	key     [4]byte
	deflate bool // permessage-deflate was negotiated: RSV1 messages are inflated

	// A fragmented message from the server in progress (see next).
	msgOp websocket.Opcode
	msgZ  bool
	msg   []byte
}

// wsListener is a WebSocket listener on loopback.
func wsListener(cfg *WebSocketConfig) []ListenerConfig {
	return []ListenerConfig{{Network: "ws", Addr: "127.0.0.1:0", WebSocket: cfg}}
}

// testKey is the Sec-WebSocket-Key of upgradeRequest.
var testKey = base64.StdEncoding.EncodeToString([]byte("0123456789abcdef"))

// upgradeRequest is a valid upgrade request for path, with extra header lines.
func upgradeRequest(path string, extra ...string) string {
	return "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + testKey + "\r\nSec-WebSocket-Version: 13\r\n" + strings.Join(extra, "") + "\r\n"
}

// dialConn dials addr for a raw WebSocket client; the connection is closed when the test
// ends.
func dialConn(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, waitLong)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// handshakeWS sends request on c and reads the response.
func handshakeWS(t *testing.T, c net.Conn, request string) (*wsClient, *http.Response) {
	t.Helper()
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

// dialWSRaw dials addr and sends request; it returns the client and the response.
func dialWSRaw(t *testing.T, addr, request string) (*wsClient, *http.Response) {
	t.Helper()
	return handshakeWS(t, dialConn(t, addr), request)
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

// encodeFrame encodes a frame: fin, the RSV bits (RSV1 = 4, RSV2 = 2, RSV3 = 1), the
// opcode, the payload, masked with key unless key is nil.
func encodeFrame(fin bool, rsv uint8, op websocket.Opcode, payload []byte, key *[4]byte) []byte {
	b0 := rsv<<4 | byte(op)
	if fin {
		b0 |= 0x80
	}
	var m byte
	if key != nil {
		m = 0x80
	}
	out := make([]byte, 0, 14+len(payload))
	switch n := len(payload); {
	case n < 126:
		out = append(out, b0, m|byte(n))
	case n < 1<<16:
		out = append(out, b0, m|126, byte(n>>8), byte(n))
	default:
		out = append(out, b0, m|127)
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	}
	if key == nil {
		return append(out, payload...)
	}
	out = append(out, key[:]...)
	h := len(out)
	out = append(out, payload...)
	p := out[h:]
	k := uint64(binary.LittleEndian.Uint32(key[:]))
	k |= k << 32
	i := 0
	for ; i+8 <= len(p); i += 8 { // eight bytes at a time: the race detector checks each access
		binary.LittleEndian.PutUint64(p[i:], binary.LittleEndian.Uint64(p[i:])^k)
	}
	for ; i < len(p); i++ {
		p[i] ^= key[i&3]
	}
	return out
}

// frame writes one frame: fin, opcode, payload, masked unless unmasked.
func (c *wsClient) frame(fin bool, rsv uint8, op websocket.Opcode, payload []byte, unmasked bool) {
	c.t.Helper()
	key := &c.key
	if unmasked {
		key = nil
	}
	c.write(encodeFrame(fin, rsv, op, payload, key), 0)
}

// write writes b, chop bytes per write (0: all at once).
func (c *wsClient) write(b []byte, chop int) {
	c.t.Helper()
	c.SetWriteDeadline(time.Now().Add(waitLong))
	for len(b) > 0 {
		n := len(b)
		if chop > 0 {
			n = min(n, chop)
		}
		if _, err := c.Write(b[:n]); err != nil {
			c.t.Fatalf("write: %v", err)
		}
		b = b[n:]
	}
}

func (c *wsClient) text(s string)   { c.frame(true, 0, websocket.OpText, []byte(s), false) }
func (c *wsClient) binary(b []byte) { c.frame(true, 0, websocket.OpBinary, b, false) }

// read reads one frame from the server, which must not be masked.
func (c *wsClient) read() (websocket.Header, []byte) {
	c.t.Helper()
	c.SetReadDeadline(time.Now().Add(waitLong))
	var hb [8]byte
	if _, err := io.ReadFull(c.r, hb[:2]); err != nil {
		c.t.Fatalf("reading a frame: %v", err)
	}
	h := websocket.Header{Fin: hb[0]&0x80 != 0, Rsv: hb[0] >> 4 & 7, Op: websocket.Opcode(hb[0] & 0xF), Masked: hb[1]&0x80 != 0}
	if h.Masked {
		c.t.Fatal("a server frame is masked")
	}
	h.Length = int64(hb[1] & 0x7F)
	switch h.Length {
	case 126:
		if _, err := io.ReadFull(c.r, hb[:2]); err != nil {
			c.t.Fatalf("reading a frame's length: %v", err)
		}
		h.Length = int64(binary.BigEndian.Uint16(hb[:2]))
	case 127:
		if _, err := io.ReadFull(c.r, hb[:8]); err != nil {
			c.t.Fatalf("reading a frame's length: %v", err)
		}
		h.Length = int64(binary.BigEndian.Uint64(hb[:8]))
		if h.Length < 0 || h.Length > 1<<30 {
			c.t.Fatalf("a server frame declares %d bytes", h.Length)
		}
	}
	p := make([]byte, h.Length)
	if _, err := io.ReadFull(c.r, p); err != nil {
		c.t.Fatalf("reading a %d-byte payload: %v", h.Length, err)
	}
	return h, p
}

// wsEvent is what the server sends, as a test expects it: a message (OpText, OpBinary,
// reassembled and inflated), a ping or a pong with its payload, or a close frame with its
// code (CloseNoStatus for none).
type wsEvent struct {
	op      websocket.Opcode
	payload string
	code    websocket.CloseCode
}

func (e wsEvent) String() string {
	name := map[websocket.Opcode]string{websocket.OpText: "text", websocket.OpBinary: "binary",
		websocket.OpPing: "ping", websocket.OpPong: "pong"}[e.op]
	switch {
	case e.op == websocket.OpClose:
		return fmt.Sprintf("close %v", e.code)
	case name == "":
		name = fmt.Sprintf("opcode %#x", byte(e.op))
	}
	if len(e.payload) > 40 {
		return fmt.Sprintf("%s (%d bytes)", name, len(e.payload))
	}
	return fmt.Sprintf("%s %q", name, e.payload)
}

// next reads the server's next message or control frame, and checks that it keeps RFC
// 6455's rules for a server: no mask, no RSV bits but RSV1 on the first frame of a
// compressed message (when negotiated), control frames whole and at most 125 bytes, a
// close payload of a valid code and a UTF-8 reason, text messages in UTF-8.
func (c *wsClient) next() wsEvent {
	c.t.Helper()
	for {
		h, p := c.read()
		rsv1 := h.Rsv&websocket.Rsv1 != 0
		switch {
		case h.Rsv&^websocket.Rsv1 != 0:
			c.t.Fatalf("a server frame with RSV2/RSV3: %#x", h.Rsv)
		case rsv1 && (!c.deflate || h.Op.IsControl() || h.Op == websocket.OpContinuation):
			c.t.Fatalf("RSV1 on a frame with opcode %#x (deflate negotiated: %v)", byte(h.Op), c.deflate)
		case h.Op.IsReserved():
			c.t.Fatalf("a server frame with reserved opcode %#x", byte(h.Op))
		}
		if h.Op.IsControl() {
			if !h.Fin || len(p) > 125 {
				c.t.Fatalf("a control frame (opcode %#x) of %d bytes, fin %v", byte(h.Op), len(p), h.Fin)
			}
			if h.Op != websocket.OpClose {
				return wsEvent{op: h.Op, payload: string(p)}
			}
			switch {
			case len(p) == 0:
				return wsEvent{op: h.Op, code: websocket.CloseNoStatus}
			case len(p) == 1 || !utf8.Valid(p[2:]):
				c.t.Fatalf("a malformed close payload %q", p)
			}
			return wsEvent{op: h.Op, code: websocket.CloseCode(binary.BigEndian.Uint16(p)), payload: string(p[2:])}
		}
		if (h.Op == websocket.OpContinuation) != (c.msgOp != 0) {
			c.t.Fatalf("a frame with opcode %#x while the server's message in progress has %#x", byte(h.Op), byte(c.msgOp))
		}
		if c.msgOp == 0 {
			c.msgOp, c.msgZ, c.msg = h.Op, rsv1, nil
		}
		c.msg = append(c.msg, p...)
		if !h.Fin {
			continue
		}
		msg, op := c.msg, c.msgOp
		c.msgOp, c.msg = 0, nil
		if c.msgZ {
			msg = inflateMessage(c.t, msg)
		}
		if op == websocket.OpText && !utf8.Valid(msg) {
			c.t.Fatalf("a text message that is not UTF-8 (%d bytes)", len(msg))
		}
		return wsEvent{op: op, payload: string(msg)}
	}
}

// expect reads one frame and checks its opcode and payload.
func (c *wsClient) expect(op websocket.Opcode, payload string) {
	c.t.Helper()
	if got := c.next(); got.op != op || got.payload != payload {
		c.t.Fatalf("got %v, want %v", got, wsEvent{op: op, payload: payload})
	}
}

// expectClose reads a close frame with code.
func (c *wsClient) expectClose(code websocket.CloseCode) {
	c.t.Helper()
	if got := c.next(); got.op != websocket.OpClose || got.code != code {
		c.t.Fatalf("got %v, want a close frame with %v", got, code)
	}
}

// closeWith sends a close frame with code (CloseNoStatus: an empty one) and reason.
func (c *wsClient) closeWith(code websocket.CloseCode, reason string) {
	c.t.Helper()
	var p []byte
	if code != websocket.CloseNoStatus {
		p = binary.BigEndian.AppendUint16(nil, uint16(code))
	}
	c.frame(true, 0, websocket.OpClose, append(p, reason...), false)
}

// expectEOF reads until the server closes the connection, which must send nothing more.
func (c *wsClient) expectEOF() {
	c.t.Helper()
	c.SetReadDeadline(time.Now().Add(waitLong))
	b, err := io.ReadAll(c.r)
	if err != nil && !isReset(err) {
		c.t.Fatalf("waiting for the connection to end: %v (after %d bytes)", err, len(b))
	}
	if len(b) > 0 {
		c.t.Fatalf("%d bytes (%q…) before the connection ended, want none", len(b), b[:min(len(b), 16)])
	}
}

// deflateMessage compresses a message as permessage-deflate does (RFC 7692 §7.2.1): one
// sync-flushed deflate stream without its 4-byte tail, without context takeover.
func deflateMessage(t testing.TB, msg []byte) []byte {
	var buf bytes.Buffer
	fw, err := flate.NewWriter(&buf, flate.BestSpeed)
	if err != nil {
		t.Fatal(err)
	}
	fw.Write(msg)
	fw.Flush()
	b := buf.Bytes()
	if !bytes.HasSuffix(b, []byte{0, 0, 0xff, 0xff}) {
		t.Fatalf("a sync flush without its tail: %x", b[max(len(b)-8, 0):])
	}
	return b[:len(b)-4]
}

// inflateMessage undoes deflateMessage.
func inflateMessage(t testing.TB, z []byte) []byte {
	fr := flate.NewReader(io.MultiReader(bytes.NewReader(z), bytes.NewReader([]byte{0, 0, 0xff, 0xff})))
	b, err := io.ReadAll(fr)
	if err != nil && err != io.ErrUnexpectedEOF {
		t.Fatalf("a compressed message from the server does not inflate: %v", err)
	}
	return b
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
	c.closeWith(4000, "bye")
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
	c.closeWith(websocket.CloseGoingAway, "")
	c.expectEOF()
	if err := recv(t, shut, "Shutdown"); err != nil {
		t.Fatal(err)
	}
}

// WebSocket() reports the handshake: target, path, subprotocol, compression, and the
// request's header fields (parsed only when asked).
func TestWebSocket_Info(t *testing.T) {
	infos := make(chan *WebSocketInfo, 1)
	srv := startServer(t, Config{Listeners: wsListener(&WebSocketConfig{Path: "/game", Subprotocols: []string{"v2", "v1"}})},
		Handlers[struct{}]{
			Connected: func(s *Session[struct{}]) { infos <- s.WebSocket() },
			Request:   echoFrame[struct{}],
		})
	c, resp := dialWSRaw(t, addrOf(srv), upgradeRequest("/game?room=7",
		"Cookie: token=abc\r\n", "Sec-WebSocket-Protocol: v1, v2\r\n", "X-Forwarded-For: 192.0.2.1\r\n"))
	defer c.Close()
	if resp.StatusCode != 101 || resp.Header.Get("Sec-WebSocket-Protocol") != "v2" {
		t.Fatalf("handshake: %s, protocol %q", resp.Status, resp.Header.Get("Sec-WebSocket-Protocol"))
	}
	info := recv(t, infos, "Connected")
	if info.Target != "/game?room=7" || info.Path != "/game" || info.Subprotocol != "v2" || info.Compressed {
		t.Fatalf("info %+v", info)
	}
	if info.Header.Get("Cookie") != "token=abc" || info.Header.Get("X-Forwarded-For") != "192.0.2.1" || info.Header.Get("Host") == "" {
		t.Fatalf("header %v", info.Header)
	}
	// The handshake's own fields are not kept: the session keeps only what the
	// application may need.
	for _, k := range []string{"Upgrade", "Connection", "Sec-Websocket-Key", "Sec-Websocket-Version", "Sec-Websocket-Protocol"} {
		if v, ok := info.Header[k]; ok {
			t.Errorf("Header keeps the handshake's %s: %q", k, v)
		}
	}
}
