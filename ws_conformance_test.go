package supersocket

import (
	"bytes"
	"compress/flate"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/supersocket-go/supersocket/filter"
	"github.com/supersocket-go/supersocket/internal/testcert"
	"github.com/supersocket-go/supersocket/internal/websocket"
)

// The WebSocket conformance suite: the intent of Autobahn testsuite's server cases
// (autobahntestsuite/case/case*.py), groups 1–7, 9, 12 and 13, as table tests on raw
// frames against an echo server. Autobahn itself needs Docker or Python, which these
// machines lack. Every case states what the server must do — echo, answer a ping, close
// with a code — and the session's close reason, which the Closed handler reports.
//
// The server under test echoes every message whole: a filter that takes the whole
// message as one request (wholeMessage), and a handler that sends the request's Frame
// back. One listener sends binary messages, the other text (WebSocketConfig.Text), so a
// case picks the listener of its message type. Both offer permessage-deflate to clients
// that ask.
//
// Where the server's behaviour differs from Autobahn's expectation, the case says so:
// an empty message holds no request, so nothing is echoed for it (the session's filter
// sees whole requests, and an empty message has none).

// wholeMessage is a filter that takes every byte it is given as one request: over a
// WebSocket, a whole message.
type wholeMessage struct{}

func (wholeMessage) Filter(data []byte) (Request, int, error) {
	return Request{Frame: data, Body: data}, len(data), nil
}

// confLimit is the conformance server's MaxRequestLength: room for Autobahn's largest
// message (16 MiB, case 9.1.6).
const confLimit = 16 << 20

// confServer is the echo server of the conformance cases, shared by them: each case's
// connection learns its session's close reason through reasons, keyed by the client's
// address.
type confServer struct {
	srv       *Server[struct{}]
	bin, text string // the listeners' addresses
	mu        sync.Mutex
	reasons   map[string]chan CloseReason
}

// startConfServer starts the echo server; tweak, if not nil, adjusts its Config.
func startConfServer(t *testing.T, tweak func(*Config)) *confServer {
	t.Helper()
	cs := &confServer{reasons: map[string]chan CloseReason{}}
	// A close the server starts waits 30 s for the client's close frame: longer than
	// waitLong, so a case whose close frame the server fails to see fails instead of
	// passing after the timeout.
	ws := WebSocketConfig{Compression: true, CompressionThreshold: 64, CloseTimeout: 30 * time.Second}
	text := ws
	text.Text = true
	cfg := Config{
		Listeners: []ListenerConfig{
			{Network: "ws", Addr: "127.0.0.1:0", WebSocket: &ws},
			{Network: "ws", Addr: "127.0.0.1:0", WebSocket: &text},
		},
		Filter:           func(int) filter.Filter { return wholeMessage{} },
		MaxRequestLength: confLimit,
	}
	if tweak != nil {
		tweak(&cfg)
	}
	cs.srv = startServer(t, cfg, Handlers[struct{}]{
		Request: func(s *Session[struct{}], r Request) {
			if err := s.Send(r.Frame); err != nil && err != ErrSessionClosed {
				t.Errorf("echo of %d bytes: %v", len(r.Frame), err)
			}
		},
		Closed: func(s *Session[struct{}], r CloseReason) {
			cs.mu.Lock()
			ch := cs.reasons[s.RemoteAddr().String()]
			cs.mu.Unlock()
			if ch != nil {
				ch <- r
			}
		},
	})
	addrs := cs.srv.Addrs()
	cs.bin, cs.text = addrs[0].String(), addrs[1].String()
	return cs
}

// dial connects to the text or the binary listener and completes a handshake with extra
// header lines; the channel gets the session's close reason.
func (cs *confServer) dial(t *testing.T, text bool, extra ...string) (*wsClient, <-chan CloseReason, *http.Response) {
	t.Helper()
	addr := cs.bin
	if text {
		addr = cs.text
	}
	conn := dialConn(t, addr)
	ch := cs.register(conn)
	c, resp := handshakeWS(t, conn, upgradeRequest("/ws", extra...))
	if resp.StatusCode != 101 {
		t.Fatalf("handshake: %s", resp.Status)
	}
	if got, want := resp.Header.Get("Sec-WebSocket-Accept"), acceptFor(testKey); got != want {
		t.Fatalf("Sec-WebSocket-Accept %q, want %q", got, want)
	}
	c.deflate = strings.HasPrefix(resp.Header.Get("Sec-WebSocket-Extensions"), "permessage-deflate")
	return c, ch, resp
}

// register returns the channel that gets the close reason of conn's session, before
// conn's session can close.
func (cs *confServer) register(conn net.Conn) <-chan CloseReason {
	ch := make(chan CloseReason, 1)
	cs.mu.Lock()
	cs.reasons[conn.LocalAddr().String()] = ch
	cs.mu.Unlock()
	return ch
}

// The steps of a case's script, besides the frames it sends (wsFrame) and the events it
// expects (wsEvent).
type (
	// together writes its frames in one write: the server reads them at once.
	together []wsFrame
	// rawBytes writes bytes as they are (a frame's parts, cut anywhere).
	rawBytes []byte
	// halfClose shuts the client's sending side down: the server reads EOF.
	halfClose struct{}
)

// wsFrame is a frame a case sends, masked with the client's key unless unmasked, in
// one write or chop bytes per write.
type wsFrame struct {
	fin      bool
	rsv      uint8
	op       websocket.Opcode
	payload  []byte
	unmasked bool
	chop     int
}

func fr(op websocket.Opcode, payload string) wsFrame {
	return wsFrame{fin: true, op: op, payload: []byte(payload)}
}

// frag is a frame of a fragmented message that is not its last.
func frag(op websocket.Opcode, payload string) wsFrame {
	return wsFrame{op: op, payload: []byte(payload)}
}

func txt(payload string) wsFrame   { return fr(websocket.OpText, payload) }
func bin(payload string) wsFrame   { return fr(websocket.OpBinary, payload) }
func ping(payload string) wsFrame  { return fr(websocket.OpPing, payload) }
func pongF(payload string) wsFrame { return fr(websocket.OpPong, payload) }
func cont(payload string) wsFrame  { return fr(websocket.OpContinuation, payload) }
func closeF(payload []byte) wsFrame {
	return wsFrame{fin: true, op: websocket.OpClose, payload: payload}
}

// closeCode is a close frame with code and reason.
func closeCode(code int, reason string) wsFrame {
	return closeF(append(binary.BigEndian.AppendUint16(nil, uint16(code)), reason...))
}

func (f wsFrame) chopped(n int) wsFrame   { f.chop = n; return f }
func (f wsFrame) withRsv(r uint8) wsFrame { f.rsv = r; return f }

// closes reports whether f is a close frame the server takes as the client's close
// (a well-formed frame; its payload may still be refused).
func (f wsFrame) closes() bool {
	return f.op == websocket.OpClose && f.fin && f.rsv == 0 && !f.unmasked && len(f.payload) <= 125
}

func (f wsFrame) encode(key *[4]byte) []byte {
	if f.unmasked {
		key = nil
	}
	return encodeFrame(f.fin, f.rsv, f.op, f.payload, key)
}

// The events a case expects.
func echoT(payload string) wsEvent { return wsEvent{op: websocket.OpText, payload: payload} }
func echoB(payload string) wsEvent { return wsEvent{op: websocket.OpBinary, payload: payload} }
func pong(payload string) wsEvent  { return wsEvent{op: websocket.OpPong, payload: payload} }
func closed(code websocket.CloseCode) wsEvent {
	return wsEvent{op: websocket.OpClose, code: code}
}

// confCase is one conformance case.
type confCase struct {
	id, name string
	text     bool                     // the case talks to the text listener
	offer    string                   // a Sec-WebSocket-Extensions offer, "" for none
	declined bool                     // the server declines the offer: no permessage-deflate
	script   []any                    // wsFrame, together, rawBytes, halfClose, wsEvent
	lazy     func(t *testing.T) []any // the script, built when the case runs (large payloads)
	reason   CloseReason
	// desync: the server has stopped reading frames (it refused a header it cannot
	// follow), so the client's close frame goes unseen: the client also shuts its
	// sending side down, and the server ends on that EOF.
	desync bool
}

// run plays the script, then ends the connection as a well-behaved client would: if the
// server closed, it answers with the same code (unless it closed first itself); if
// nobody closed, it closes with 1000 and expects the echo. The server must then end the
// connection without sending anything more, and the session's close reason must be
// tc.reason.
func (tc confCase) run(t *testing.T, cs *confServer) {
	c, reasons, _ := cs.dial(t, tc.text, offerHeader(tc.offer)...)
	if want := tc.offer != "" && !tc.declined; c.deflate != want {
		t.Fatalf("offer %q: permessage-deflate negotiated %v, want %v", tc.offer, c.deflate, want)
	}
	var clientClosed, serverClosed bool
	var serverCode websocket.CloseCode
	script := tc.script
	if tc.lazy != nil {
		script = tc.lazy(t)
	}
	for i, step := range script {
		switch s := step.(type) {
		case wsFrame:
			clientClosed = clientClosed || s.closes()
			c.write(s.encode(&c.key), s.chop)
		case together:
			var b []byte
			for _, f := range s {
				clientClosed = clientClosed || f.closes()
				b = append(b, f.encode(&c.key)...)
			}
			c.write(b, 0)
		case rawBytes:
			c.write(s, 0)
		case halfClose:
			if err := c.Conn.(*net.TCPConn).CloseWrite(); err != nil {
				t.Fatal(err)
			}
		case wsEvent:
			got := c.next()
			if got.op != s.op || got.payload != s.payload && s.op != websocket.OpClose || got.code != s.code {
				t.Fatalf("step %d: got %v, want %v", i, got, s)
			}
			if s.op == websocket.OpClose {
				serverClosed, serverCode = true, s.code
			}
		default:
			t.Fatalf("step %d: %T is not a step", i, step)
		}
	}
	switch {
	case serverClosed && !clientClosed:
		c.closeWith(serverCode, "")
		if tc.desync {
			if err := c.Conn.(*net.TCPConn).CloseWrite(); err != nil {
				t.Fatal(err)
			}
		}
	case !serverClosed && !clientClosed:
		c.closeWith(websocket.CloseNormal, "")
		c.expectClose(websocket.CloseNormal)
	case !serverClosed:
		t.Fatal("the script closes but expects no close frame back")
	}
	c.expectEOF()
	if got := recv(t, reasons, "the Closed handler"); got != tc.reason {
		t.Fatalf("session closed with %v, want %v", got, tc.reason)
	}
}

// offerHeader is the header line of a Sec-WebSocket-Extensions offer, if any.
func offerHeader(offer string) []string {
	if offer == "" {
		return nil
	}
	return []string{"Sec-WebSocket-Extensions: " + offer + "\r\n"}
}

// acceptFor computes Sec-WebSocket-Accept from RFC 6455 §4.2.2, independently of
// internal/websocket.
func acceptFor(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

// runCases runs cases in parallel against cs.
func runCases(t *testing.T, cs *confServer, cases []confCase) {
	t.Helper()
	seen := map[string]bool{}
	for _, tc := range cases {
		if seen[tc.id] {
			t.Fatalf("case %s twice", tc.id)
		}
		seen[tc.id] = true
		t.Run(tc.id+"_"+tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, cs)
		})
	}
}

// repeat returns s repeated to n bytes.
func repeat(s string, n int) string {
	return strings.Repeat(s, n/len(s)+1)[:n]
}

// Group 1, framing: text and binary messages of every length encoding's edges, in one
// write and chopped.
func autobahn1() []confCase {
	var cases []confCase
	sizes := []int{0, 125, 126, 127, 128, 65535, 65536}
	for i, n := range sizes {
		payload := repeat("*", n)
		if n == 0 {
			// Autobahn expects the empty message echoed; it holds no request here, so
			// nothing is, and the message after it is echoed.
			cases = append(cases, confCase{id: fmt.Sprintf("1.1.%d", i+1), name: "empty text", text: true,
				script: []any{txt(""), txt("after"), echoT("after")}, reason: CloseClientClosing})
			continue
		}
		cases = append(cases, confCase{id: fmt.Sprintf("1.1.%d", i+1), name: fmt.Sprintf("text %d", n), text: true,
			script: []any{txt(payload), echoT(payload)}, reason: CloseClientClosing})
	}
	cases = append(cases, confCase{id: "1.1.8", name: "text 65536 chopped 997", text: true,
		script: []any{txt(repeat("*", 65536)).chopped(997), echoT(repeat("*", 65536))}, reason: CloseClientClosing})
	for i, n := range sizes {
		payload := repeat("\xfe", n)
		if n == 0 {
			cases = append(cases, confCase{id: "1.2.1", name: "empty binary",
				script: []any{bin(""), bin("after"), echoB("after")}, reason: CloseClientClosing})
			continue
		}
		cases = append(cases, confCase{id: fmt.Sprintf("1.2.%d", i+1), name: fmt.Sprintf("binary %d", n),
			script: []any{bin(payload), echoB(payload)}, reason: CloseClientClosing})
	}
	cases = append(cases, confCase{id: "1.2.8", name: "binary 65536 chopped 997",
		script: []any{bin(repeat("\xfe", 65536)).chopped(997), echoB(repeat("\xfe", 65536))}, reason: CloseClientClosing})
	return cases
}

// Group 2, pings and pongs: a ping is answered with a pong carrying its payload, up to
// the control frame limit of 125 bytes; a longer one is a protocol error; unsolicited
// pongs are ignored.
func autobahn2() []confCase {
	ok := func(id, name string, script ...any) confCase {
		return confCase{id: id, name: name, script: script, reason: CloseClientClosing}
	}
	binPayload := "\x00\xff\xfe\xfd\xfc\xfb\x00\xff"
	var tenPings, tenPongs []any
	for i := range 10 {
		tenPings = append(tenPings, ping(fmt.Sprintf("payload-%d", i)))
		tenPongs = append(tenPongs, pong(fmt.Sprintf("payload-%d", i)))
	}
	var tenChopped []any
	for _, p := range tenPings {
		tenChopped = append(tenChopped, p.(wsFrame).chopped(1))
	}
	return []confCase{
		ok("2.1", "ping without payload", ping(""), pong("")),
		ok("2.2", "ping with text payload", ping("Hello, world!"), pong("Hello, world!")),
		ok("2.3", "ping with binary payload", ping(binPayload), pong(binPayload)),
		ok("2.4", "ping with 125 bytes", ping(repeat("\xfe", 125)), pong(repeat("\xfe", 125))),
		{id: "2.5", name: "ping with 126 bytes", script: []any{ping(repeat("\xfe", 126)), closed(websocket.CloseProtocolError)},
			reason: CloseProtocolError},
		ok("2.6", "ping with 125 bytes chopped 1", ping(repeat("\xfe", 125)).chopped(1), pong(repeat("\xfe", 125))),
		ok("2.7", "unsolicited pong without payload", pongF(""), closeCode(1000, ""), closed(websocket.CloseNormal)),
		ok("2.8", "unsolicited pong with payload", pongF("unsolicited pong payload"), closeCode(1000, ""),
			closed(websocket.CloseNormal)),
		ok("2.9", "unsolicited pong, then ping", pongF("unsolicited pong payload"), ping("ping payload"), pong("ping payload")),
		ok("2.10", "10 pings", append(tenPings, tenPongs...)...),
		ok("2.11", "10 pings chopped 1", append(tenChopped, tenPongs...)...),
	}
}

// Group 3, reserved bits: a frame with an RSV bit no extension gave a meaning fails the
// connection with 1002; what came before it is still handled, nothing after it is.
func autobahn3() []confCase {
	hello := "Hello, world!"
	fail := func(id, name string, text bool, script ...any) confCase {
		return confCase{id: id, name: name, text: text, script: append(script, closed(websocket.CloseProtocolError)),
			reason: CloseProtocolError}
	}
	return []confCase{
		fail("3.1", "RSV3 on a text frame", true, txt(hello).withRsv(1)),
		fail("3.2", "text, RSV2 text, ping in one write", true, together{txt(hello), txt(hello).withRsv(2), ping("")}, echoT(hello)),
		fail("3.3", "text, RSV2|RSV3 text, ping, one write each", true, txt(hello), echoT(hello), txt(hello).withRsv(3), ping("")),
		fail("3.4", "RSV1 without permessage-deflate, chopped 1", true, txt(hello).chopped(1), echoT(hello),
			txt(hello).withRsv(4).chopped(1), ping("").chopped(1)),
		fail("3.5", "RSV1|RSV3 on a binary frame", false, bin(binaryBytes).withRsv(5)),
		fail("3.6", "RSV1|RSV2 on a binary frame", false, bin(hello).withRsv(6)),
		fail("3.7", "every RSV bit on a close frame", false, closeF(nil).withRsv(7)),
	}
}

const binaryBytes = "\x00\xff\xfe\xfd\xfc\xfb\x00\xff"

// Group 4, reserved opcodes: non-control (3–7) and control (11–15) opcodes fail the
// connection with 1002.
func autobahn4() []confCase {
	hello := "Hello, world!"
	var cases []confCase
	for i, ops := range [][]websocket.Opcode{{3, 4, 5, 6, 7}, {11, 12, 13, 14, 15}} {
		for j, op := range ops {
			id := fmt.Sprintf("4.%d.%d", i+1, j+1)
			name := fmt.Sprintf("opcode %d", op)
			var script []any
			switch j {
			case 0:
				script = []any{fr(op, "")}
			case 1:
				script = []any{fr(op, "reserved opcode payload")}
			case 2:
				script = []any{together{txt(hello), fr(op, ""), ping("")}, echoT(hello)}
				name += " after a text message, then a ping"
			case 3:
				script = []any{together{txt(hello), fr(op, hello), ping("")}, echoT(hello)}
				name += " with payload after a text message, then a ping"
			case 4:
				script = []any{txt(hello).chopped(1), echoT(hello), fr(op, hello).chopped(1), ping("").chopped(1)}
				name += " chopped 1"
			}
			cases = append(cases, confCase{id: id, name: name, text: true,
				script: append(script, closed(websocket.CloseProtocolError)), reason: CloseProtocolError})
		}
	}
	return cases
}

// Group 5, fragmentation: fragmented messages are reassembled, control frames may come
// between their fragments; a fragmented control frame, a continuation without a message
// to continue, and a new message inside a fragmented one fail with 1002.
func autobahn5() []confCase {
	f1, f2 := "fragment1", "fragment2"
	fail := func(id, name string, script ...any) confCase {
		return confCase{id: id, name: name, text: true, script: append(script, closed(websocket.CloseProtocolError)),
			reason: CloseProtocolError}
	}
	ok := func(id, name string, script ...any) confCase {
		return confCase{id: id, name: name, text: true, script: script, reason: CloseClientClosing}
	}
	chop := func(fs ...wsFrame) []any {
		out := make([]any, len(fs))
		for i, f := range fs {
			out[i] = f.chopped(1)
		}
		return out
	}
	pingMid := []wsFrame{frag(websocket.OpText, f1), ping("ping payload"), cont(f2)}
	noStart := []wsFrame{cont("non-continuation payload"), txt("Hello, world!")}
	noStartFrag := []wsFrame{frag(websocket.OpContinuation, "non-continuation payload"), txt("Hello, world!")}
	// 5.19 and 5.20: a ping between fragments, then a pause (here: until its pong is
	// read) before the rest.
	part1 := []wsFrame{frag(websocket.OpText, f1), frag(websocket.OpContinuation, f2), ping("pongme 1!")}
	part2 := []wsFrame{frag(websocket.OpContinuation, "fragment3"), frag(websocket.OpContinuation, "fragment4"),
		ping("pongme 2!"), cont("fragment5")}
	all5 := "fragment1fragment2fragment3fragment4fragment5"
	var sep1, sep2 []any
	for _, f := range part1 {
		sep1 = append(sep1, f)
	}
	for _, f := range part2 {
		sep2 = append(sep2, f)
	}
	return []confCase{
		fail("5.1", "fragmented ping", frag(websocket.OpPing, f1), cont(f2)),
		fail("5.2", "fragmented pong", frag(websocket.OpPong, f1), cont(f2)),
		ok("5.3", "text in 2 fragments", together{frag(websocket.OpText, f1), cont(f2)}, echoT(f1+f2)),
		ok("5.4", "text in 2 fragments, one write each", frag(websocket.OpText, f1), cont(f2), echoT(f1+f2)),
		ok("5.5", "text in 2 fragments chopped 1", append(chop(frag(websocket.OpText, f1), cont(f2)), echoT(f1+f2))...),
		ok("5.6", "ping between fragments", together(pingMid), pong("ping payload"), echoT(f1+f2)),
		ok("5.7", "ping between fragments, one write each", pingMid[0], pingMid[1], pingMid[2], pong("ping payload"), echoT(f1+f2)),
		ok("5.8", "ping between fragments chopped 1", append(chop(pingMid...), pong("ping payload"), echoT(f1+f2))...),
		fail("5.9", "continuation without a message", together(noStart)),
		fail("5.10", "continuation without a message, one write each", noStart[0], noStart[1]),
		fail("5.11", "continuation without a message chopped 1", chop(noStart...)...),
		fail("5.12", "unfinished continuation without a message", together(noStartFrag)),
		fail("5.13", "unfinished continuation without a message, one write each", noStartFrag[0], noStartFrag[1]),
		fail("5.14", "unfinished continuation without a message chopped 1", chop(noStartFrag...)...),
		fail("5.15", "a message, then a continuation without one", together{frag(websocket.OpText, f1), cont(f2),
			frag(websocket.OpContinuation, "fragment3"), txt("fragment4")}, echoT(f1+f2)),
		fail("5.16", "continuation first, twice", together{frag(websocket.OpContinuation, f1),
			frag(websocket.OpText, f2), cont("fragment3"), frag(websocket.OpContinuation, f1),
			frag(websocket.OpText, f2), cont("fragment3")}),
		fail("5.17", "final continuation first, twice", together{cont(f1), frag(websocket.OpText, f2), cont("fragment3"),
			cont(f1), frag(websocket.OpText, f2), cont("fragment3")}),
		fail("5.18", "a text message inside a fragmented one", together{frag(websocket.OpText, f1), txt(f2)}),
		ok("5.19", "pings between fragments, in two batches", together(part1), pong("pongme 1!"), together(part2),
			pong("pongme 2!"), echoT(all5)),
		ok("5.20", "pings between fragments, one write each", append(append(append(sep1, pong("pongme 1!")), sep2...),
			pong("pongme 2!"), echoT(all5))...),
	}
}

// Groups 1–5 on raw frames.
func TestWebSocketConformance_FramingPingsReservedFragments(t *testing.T) {
	cs := startConfServer(t, nil)
	var cases []confCase
	for _, g := range [][]confCase{autobahn1(), autobahn2(), autobahn3(), autobahn4(), autobahn5()} {
		cases = append(cases, g...)
	}
	runCases(t, cs, cases)
}

// Group 6, UTF-8: text messages must be valid UTF-8, whole or in fragments split
// anywhere, even inside a code point; invalid ones fail with 1007, as soon as the bytes
// that cannot be valid arrive — in a later fragment, or in the middle of one frame.
func autobahn6() []confCase {
	kosme := "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5" // κόσμε
	hello := "Hello-µ@ßöäüàá-UTF-8!!"
	ok := func(id, name string, script ...any) confCase {
		return confCase{id: id, name: name, text: true, script: script, reason: CloseClientClosing}
	}
	bad := func(id, name string, script ...any) confCase {
		return confCase{id: id, name: name, text: true, script: script, reason: CloseProtocolError}
	}
	invalid := kosme + "\xed\xa0\x80" + "edited"    // a surrogate at byte 12
	beyond := kosme + "\xf4\x90\x80\x80" + "edited" // U+110000 at byte 12
	// One frame for the whole of beyond, sent in three writes cut at cut1 and cut2 bytes
	// of payload.
	oneFrame := func(cut1, cut2 int) (a, b, c rawBytes) {
		enc := txt(beyond).encode(&[4]byte{0x12, 0x34, 0x56, 0x78})
		h := len(enc) - len(beyond)
		return enc[:h+cut1], enc[h+cut1 : h+cut2], enc[h+cut2:]
	}
	a1, a2, a3 := oneFrame(11, 15)
	b1, b2, b3 := oneFrame(12, 13)
	cases := []confCase{
		ok("6.1.1", "empty text message", txt(""), txt("after"), echoT("after")),
		ok("6.1.2", "empty text message in 3 empty fragments", frag(websocket.OpText, ""),
			frag(websocket.OpContinuation, ""), cont(""), txt("after"), echoT("after")),
		ok("6.1.3", "3 fragments, the middle one not empty", frag(websocket.OpText, ""),
			frag(websocket.OpContinuation, "middle frame payload"), cont(""), echoT("middle frame payload")),
		ok("6.2.1", "valid UTF-8 in one frame", txt(hello), echoT(hello)),
		ok("6.2.2", "valid UTF-8 in 2 fragments split at a code point", frag(websocket.OpText, "Hello-µ@ßöä"),
			cont("üàá-UTF-8!!"), echoT(hello)),
		ok("6.2.3", "valid UTF-8, one byte per fragment", append(byteFragments(hello), echoT(hello))...),
		ok("6.2.4", "κόσμε, one byte per fragment", append(byteFragments(kosme), echoT(kosme))...),
		bad("6.3.1", "invalid UTF-8 in one frame", txt(invalid), closed(websocket.CloseInvalidPayload)),
		bad("6.3.2", "invalid UTF-8, one byte per fragment", together(framesOf(byteFragments(invalid))),
			closed(websocket.CloseInvalidPayload)),
		bad("6.4.1", "the fragment that makes it invalid fails at once", frag(websocket.OpText, kosme),
			frag(websocket.OpContinuation, "\xf4\x90\x80\x80"), closed(websocket.CloseInvalidPayload), cont("edited")),
		bad("6.4.2", "the byte that makes it invalid fails at once", frag(websocket.OpText, beyond[:12]),
			frag(websocket.OpContinuation, beyond[12:13]), closed(websocket.CloseInvalidPayload), cont(beyond[13:])),
		bad("6.4.3", "in the middle of one frame, the bytes that make it invalid fail at once", a1, a2,
			closed(websocket.CloseInvalidPayload), a3),
		bad("6.4.4", "in the middle of one frame, the byte that makes it invalid fails at once", b1, b2,
			closed(websocket.CloseInvalidPayload), b3),
	}
	for i, group := range utf8Sequences() {
		for j, seq := range group {
			id := fmt.Sprintf("6.%d.%d", i+5, j+1)
			if seq.valid {
				cases = append(cases,
					ok(id, fmt.Sprintf("valid %x", seq.s), txt(seq.s), echoT(seq.s)),
					ok(id+"f", fmt.Sprintf("valid %x, one byte per fragment", seq.s), together(framesOf(byteFragments(seq.s))),
						echoT(seq.s)))
			} else {
				cases = append(cases,
					bad(id, fmt.Sprintf("invalid %x", seq.s), txt(seq.s), closed(websocket.CloseInvalidPayload)),
					bad(id+"f", fmt.Sprintf("invalid %x, one byte per fragment", seq.s), together(framesOf(byteFragments(seq.s))),
						closed(websocket.CloseInvalidPayload)))
			}
		}
	}
	return cases
}

// byteFragments is a text message sent one byte per frame.
func byteFragments(s string) []any {
	var out []any
	for i := range len(s) {
		op := websocket.OpContinuation
		if i == 0 {
			op = websocket.OpText
		}
		out = append(out, wsFrame{fin: i == len(s)-1, op: op, payload: []byte{s[i]}})
	}
	return out
}

func framesOf(steps []any) []wsFrame {
	out := make([]wsFrame, len(steps))
	for i, s := range steps {
		out[i] = s.(wsFrame)
	}
	return out
}

// utf8Seq is one of Autobahn's UTF-8 test sequences, with its validity as Autobahn
// states it (from Markus Kuhn's UTF-8 decoder capability and stress test).
type utf8Seq struct {
	valid bool
	s     string
}

// utf8Sequences returns Autobahn's cases 6.5 to 6.23, a group per subsection.
func utf8Sequences() [][]utf8Seq {
	all := func(valid bool, ss ...string) []utf8Seq {
		out := make([]utf8Seq, len(ss))
		for i, s := range ss {
			out[i] = utf8Seq{valid, s}
		}
		return out
	}
	kosme := "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"
	var prefixes []utf8Seq // 6.6: every prefix of κόσμε; whole where a code point ends
	for i := 1; i <= len(kosme); i++ {
		prefixes = append(prefixes, utf8Seq{i == 2 || i == 5 || i == 7 || i == 9 || i == 11, kosme[:i]})
	}
	var continuations strings.Builder // 6.12.8: every continuation byte 0x80–0xbe
	for c := 0x80; c < 0xbf; c++ {
		continuations.WriteByte(byte(c))
	}
	var lonely []string // 6.13: lonely start bytes, each followed by a space
	for _, r := range [][2]int{{0xc0, 0xdf}, {0xe0, 0xef}, {0xf0, 0xf7}, {0xf8, 0xfb}, {0xfc, 0xfd}} {
		var b strings.Builder
		for c := r[0]; c < r[1]; c++ {
			b.WriteByte(byte(c))
			b.WriteByte(' ')
		}
		lonely = append(lonely, b.String())
	}
	missing := []string{"\xc0", "\xe0\x80", "\xf0\x80\x80", "\xf8\x80\x80\x80", "\xfc\x80\x80\x80\x80",
		"\xdf", "\xef\xbf", "\xf7\xbf\xbf", "\xfb\xbf\xbf\xbf", "\xfd\xbf\xbf\xbf\xbf"}
	nonChars := []string{"\xef\xbf\xbe", "\xef\xbf\xbf"} // 6.22: non-characters, valid UTF-8
	for _, z1 := range []string{"\xf0", "\xf1", "\xf2", "\xf3", "\xf4"} {
		for _, z2 := range []string{"\x8f", "\x9f", "\xaf", "\xbf"} {
			if z1 == "\xf4" && z2 != "\x8f" {
				continue // past U+10FFFF
			}
			for _, z3 := range []string{"\xbe", "\xbf"} {
				if zz := z1 + z2 + "\xbf" + z3; z1 != "\xf0" || z2 != "\x8f" { // not overlong
					nonChars = append(nonChars, zz)
				}
			}
		}
	}
	return [][]utf8Seq{
		all(true, "hello\x24world", "hello\xc2\xa2world", "hello\xe2\x82\xacworld", "hello\xf0\xa4\xad\xa2world", kosme),
		prefixes,
		all(true, "\x00", "\xc2\x80", "\xe0\xa0\x80", "\xf0\x90\x80\x80"),
		all(false, "\xf8\x88\x80\x80\x80", "\xfc\x84\x80\x80\x80\x80"),
		all(true, "\x7f", "\xdf\xbf", "\xef\xbf\xbf", "\xf4\x8f\xbf\xbf"),
		all(false, "\xf7\xbf\xbf\xbf", "\xfb\xbf\xbf\xbf\xbf", "\xfd\xbf\xbf\xbf\xbf\xbf"),
		append(all(true, "\xed\x9f\xbf", "\xee\x80\x80", "\xef\xbf\xbd", "\xf4\x8f\xbf\xbf"), utf8Seq{false, "\xf4\x90\x80\x80"}),
		all(false, "\x80", "\xbf", "\x80\xbf", "\x80\xbf\x80", "\x80\xbf\x80\xbf", "\x80\xbf\x80\xbf\x80",
			"\x80\xbf\x80\xbf\x80\xbf", continuations.String()),
		all(false, lonely...),
		all(false, missing...),
		all(false, strings.Join(missing, "")),
		all(false, "\xfe", "\xff", "\xfe\xfe\xff\xff"),
		all(false, "\xc0\xaf", "\xe0\x80\xaf", "\xf0\x80\x80\xaf", "\xf8\x80\x80\x80\xaf", "\xfc\x80\x80\x80\x80\xaf"),
		all(false, "\xc1\xbf", "\xe0\x9f\xbf", "\xf0\x8f\xbf\xbf", "\xf8\x87\xbf\xbf\xbf", "\xfc\x83\xbf\xbf\xbf\xbf"),
		all(false, "\xc0\x80", "\xe0\x80\x80", "\xf0\x80\x80\x80", "\xf8\x80\x80\x80\x80", "\xfc\x80\x80\x80\x80\x80"),
		all(false, "\xed\xa0\x80", "\xed\xad\xbf", "\xed\xae\x80", "\xed\xaf\xbf", "\xed\xb0\x80", "\xed\xbe\x80", "\xed\xbf\xbf"),
		all(false, "\xed\xa0\x80\xed\xb0\x80", "\xed\xa0\x80\xed\xbf\xbf", "\xed\xad\xbf\xed\xb0\x80",
			"\xed\xad\xbf\xed\xbf\xbf", "\xed\xae\x80\xed\xb0\x80", "\xed\xae\x80\xed\xbf\xbf",
			"\xed\xaf\xbf\xed\xb0\x80", "\xed\xaf\xbf\xed\xbf\xbf"),
		all(true, nonChars...),
		all(true, "\xef\xbf\xb9", "\xef\xbf\xba", "\xef\xbf\xbb", "\xef\xbf\xbc", "\xef\xbf\xbd", "\xef\xbf\xbe", "\xef\xbf\xbf"),
	}
}

// The UTF-8 table is Autobahn's, typed in: the standard library, an independent
// validator, agrees with every validity it states.
func TestUTF8Sequences_AgreeWithTheStandardLibrary(t *testing.T) {
	n, groups := 0, utf8Sequences()
	for i, group := range groups {
		for j, seq := range group {
			n++
			if utf8.ValidString(seq.s) != seq.valid {
				t.Errorf("6.%d.%d %x: table says valid %v", i+5, j+1, seq.s, seq.valid)
			}
		}
	}
	if len(groups) != 19 || n != 132 {
		t.Errorf("%d sequences in %d groups, Autobahn has 132 in 19 (6.5–6.23)", n, len(groups))
	}
}

// Group 7, closing: the client's close code is echoed (a close without a code is
// answered with 1000); a close payload of 1 byte, a code no peer may send, a reason
// that is not UTF-8 or a close frame over 125 bytes fail with 1002 or 1007; nothing the
// client sends after its close frame is handled.
func autobahn7() []confCase {
	hello := "Hello World!"
	normal := closed(websocket.CloseNormal)
	ok := func(id, name string, text bool, script ...any) confCase {
		return confCase{id: id, name: name, text: text, script: script, reason: CloseClientClosing}
	}
	bad := func(id, name string, code websocket.CloseCode, script ...any) confCase {
		return confCase{id: id, name: name, script: append(script, closed(code)), reason: CloseProtocolError}
	}
	big := repeat("BAsd7&jh23", 256<<10)
	cases := []confCase{
		ok("7.1.1", "a message, then close", true, txt(hello), echoT(hello), closeCode(1000, ""), normal),
		ok("7.1.2", "close twice", true, together{closeCode(1000, ""), closeF(nil)}, normal),
		ok("7.1.3", "close, then ping", true, together{closeCode(1000, ""), ping("")}, normal),
		ok("7.1.4", "close, then a message", true, together{closeCode(1000, ""), txt(hello)}, normal),
		ok("7.1.5", "close inside a fragmented message", true,
			together{frag(websocket.OpText, "fragment1"), closeCode(1000, ""), cont("fragment2")}, normal),
		// Autobahn leaves it open whether the messages before the close are handled;
		// here they are, in order.
		ok("7.1.6", "a large message, a message, close, ping", true,
			together{txt(big), txt(hello), closeCode(1000, ""), ping("")}, echoT(big), echoT(hello), normal),
		ok("7.3.1", "close without payload", false, closeF(nil), normal),
		bad("7.3.2", "close payload of 1 byte", websocket.CloseProtocolError, closeF([]byte{'a'})),
		ok("7.3.3", "close 1000 without reason", false, closeCode(1000, ""), normal),
		ok("7.3.4", "close 1000 with a reason", false, closeCode(1000, hello), normal),
		ok("7.3.5", "close 1000 with a 123-byte reason", false, closeCode(1000, repeat("*", 123)), normal),
		bad("7.3.6", "close 1000 with a 124-byte reason (a 126-byte control frame)", websocket.CloseProtocolError,
			closeCode(1000, repeat("*", 124))),
		bad("7.5.1", "close reason not UTF-8", websocket.CloseInvalidPayload,
			closeCode(1000, "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64")),
	}
	// 7.7: codes a peer may send are echoed (1012–1014 are registered since Autobahn).
	for i, code := range []int{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999, 1012, 1013, 1014} {
		cases = append(cases, ok(fmt.Sprintf("7.7.%d", i+1), fmt.Sprintf("close %d", code), false,
			closeCode(code, ""), closed(websocket.CloseCode(code))))
	}
	// 7.9: codes no peer may send; 7.13: codes out of range (Autobahn: informational).
	for i, code := range []int{0, 999, 1004, 1005, 1006, 1016, 1100, 2000, 2999, 1015} {
		cases = append(cases, bad(fmt.Sprintf("7.9.%d", i+1), fmt.Sprintf("close %d", code), websocket.CloseProtocolError,
			closeCode(code, "")))
	}
	for i, code := range []int{5000, 65535} {
		cases = append(cases, bad(fmt.Sprintf("7.13.%d", i+1), fmt.Sprintf("close %d", code), websocket.CloseProtocolError,
			closeCode(code, "")))
	}
	return cases
}

// Groups 6 and 7 on raw frames.
func TestWebSocketConformance_UTF8AndClosing(t *testing.T) {
	cs := startConfServer(t, nil)
	runCases(t, cs, append(autobahn6(), autobahn7()...))
}

// Group 9, limits and performance: large messages in one frame, in many fragments and
// chopped into small writes, and many round trips. Autobahn's largest messages (8 and 16
// MiB in one frame, 4 MiB in fragments) run without the race detector; under it, where
// allocating and copying them takes seconds, the fragmented and chopped ones are 1 MiB and
// 256 KiB.
func autobahn9() []confCase {
	var cases []confCase
	echo := func(id, name string, text bool, script func(*testing.T) []any) {
		cases = append(cases, confCase{id: id, name: name, text: text, lazy: script, reason: CloseClientClosing})
	}
	message := func(op websocket.Opcode, p string) wsEvent { return wsEvent{op: op, payload: p} }
	sizes := []int{64 << 10, 256 << 10, 1 << 20, 4 << 20, 8 << 20, 16 << 20}
	fragmented, chopped := 4<<20, 1<<20
	if raceEnabled {
		sizes, fragmented, chopped = sizes[:4], 1<<20, 256<<10
	}
	for g, op := range []websocket.Opcode{websocket.OpText, websocket.OpBinary} {
		pattern := map[websocket.Opcode]string{websocket.OpText: "BAsd7&jh23", websocket.OpBinary: "\x00\xfe\x23\xfa\xf0"}[op]
		for i, n := range sizes {
			echo(fmt.Sprintf("9.%d.%d", g+1, i+1), fmt.Sprintf("%d bytes", n), op == websocket.OpText, func(*testing.T) []any {
				p := repeat(pattern, n)
				return []any{fr(op, p), message(op, p)}
			})
		}
		for i, fs := range []int{64, 256, 1 << 10, 4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20} {
			echo(fmt.Sprintf("9.%d.%d", g+3, i+1), fmt.Sprintf("%d bytes in %d-byte fragments", fragmented, fs),
				op == websocket.OpText, func(*testing.T) []any {
					p := repeat("*", fragmented)
					return []any{together(fragments(op, p, fs)), message(op, p)}
				})
		}
		for i, chop := range []int{64, 128, 256, 512, 1024, 2048} {
			echo(fmt.Sprintf("9.%d.%d", g+5, i+1), fmt.Sprintf("%d bytes chopped %d", chopped, chop), op == websocket.OpText,
				func(*testing.T) []any {
					p := repeat(pattern, chopped)
					return []any{fr(op, p).chopped(chop), message(op, p)}
				})
		}
		for i, n := range []int{0, 16, 64, 256, 1024, 4096} {
			echo(fmt.Sprintf("9.%d.%d", g+7, i+1), fmt.Sprintf("%d round trips of %d bytes", roundTrips, n),
				op == websocket.OpText, func(*testing.T) []any {
					var script []any
					p := repeat("*", n)
					for range roundTrips {
						script = append(script, fr(op, p))
						if n > 0 { // an empty message holds no request: nothing comes back
							script = append(script, message(op, p))
						}
					}
					return append(script, fr(op, "end"), message(op, "end"))
				})
		}
	}
	return cases
}

// roundTrips is the number of messages of cases 9.7 and 9.8 (Autobahn: 1000).
const roundTrips = 200

// fragments is a message of payload p in fragments of size bytes.
func fragments(op websocket.Opcode, p string, size int) []wsFrame {
	var out []wsFrame
	for i := 0; i < len(p); i += size {
		f := wsFrame{op: websocket.OpContinuation, payload: []byte(p[i:min(i+size, len(p))]), fin: i+size >= len(p)}
		if i == 0 {
			f.op = op
		}
		out = append(out, f)
	}
	return out
}

// Group 9 on raw frames.
func TestWebSocketConformance_LimitsAndPerformance(t *testing.T) {
	cs := startConfServer(t, nil)
	runCases(t, cs, autobahn9())
}

// The limits a server applies on top of Autobahn's cases, with MaxRequestLength at its
// default, 64 KiB: a message up to the limit is echoed, in one frame or in many
// fragments; a frame or a message that would pass it fails with 1009 as soon as its
// header says so, before its payload is buffered (the server cannot follow the frames
// after such a header, so the client's close frame goes unseen: desync). Client frames
// must be masked.
func TestWebSocketConformance_MaxRequestLength(t *testing.T) {
	cs := startConfServer(t, func(cfg *Config) { cfg.MaxRequestLength = DefaultMaxRequestLength })
	const limit = DefaultMaxRequestLength
	full, over := repeat("*", limit), repeat("*", limit+1)
	tooBig := closed(websocket.CloseMessageTooBig)
	// A 4-byte character that ends exactly at the limit.
	wide := repeat("*", limit-4) + "\U0001F600"
	var in4k []any
	for _, f := range fragments(websocket.OpBinary, full+"x", 4<<10) {
		in4k = append(in4k, f) // 17 fragments: the last one passes the limit
	}
	var header100M []byte // a binary frame's header declaring 100 MiB, masked
	header100M = append(header100M, 0x82, 0x80|127)
	header100M = binary.BigEndian.AppendUint64(header100M, 100<<20)
	header100M = append(header100M, 1, 2, 3, 4)
	topBit := append([]byte{0x82, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 1}, 1, 2, 3, 4)
	runCases(t, cs, []confCase{
		{id: "L.1", name: "text at the limit", text: true, script: []any{txt(full), echoT(full)}, reason: CloseClientClosing},
		{id: "L.2", name: "text at the limit, ending in a 4-byte character", text: true, script: []any{txt(wide), echoT(wide)},
			reason: CloseClientClosing},
		{id: "L.3", name: "binary at the limit in 16 fragments", script: []any{together(fragments(websocket.OpBinary, full, 4<<10)),
			echoB(full)}, reason: CloseClientClosing},
		{id: "L.4", name: "binary one byte over the limit", script: []any{bin(over), tooBig}, reason: CloseProtocolError, desync: true},
		{id: "L.5", name: "fragments passing the limit", script: append(in4k, tooBig), reason: CloseProtocolError, desync: true},
		{id: "L.6", name: "a header declaring 100 MiB, no payload", script: []any{rawBytes(header100M), tooBig},
			reason: CloseProtocolError, desync: true},
		{id: "L.7", name: "a 64-bit length with its top bit set", script: []any{rawBytes(topBit),
			closed(websocket.CloseProtocolError)}, reason: CloseProtocolError, desync: true},
		{id: "L.8", name: "an unmasked frame", text: true, script: []any{wsFrame{fin: true, op: websocket.OpText,
			payload: []byte("hello"), unmasked: true}, closed(websocket.CloseProtocolError)}, reason: CloseProtocolError},
		{id: "L.9", name: "an unmasked frame after a masked one", text: true, script: []any{txt("a"), echoT("a"),
			wsFrame{fin: true, op: websocket.OpPing, unmasked: true}, closed(websocket.CloseProtocolError)}, reason: CloseProtocolError},
	})
}

// A frame that declares 100 MiB is refused from its header, at once: 1009 comes before
// any of its payload is sent. Then, while the client goes on sending 32 MiB of it anyway,
// the server buffers none of it: what it allocates meanwhile is its read buffers (which
// the race detector's sync.Pool sometimes drops), not the payload (which, buffered, would
// come to 32 MiB and more).
func TestWebSocket_TooLargeRefusedBeforeBuffering(t *testing.T) {
	cs := startConfServer(t, func(cfg *Config) { cfg.MaxRequestLength = DefaultMaxRequestLength })
	c, reasons, _ := cs.dial(t, false)
	header := binary.BigEndian.AppendUint64([]byte{0x82, 0x80 | 127}, 100<<20)
	c.write(append(header, 1, 2, 3, 4), 0)
	c.expectClose(websocket.CloseMessageTooBig)

	chunk := make([]byte, 64<<10)
	before := totalAlloc()
	for range 512 {
		c.write(chunk, 0)
	}
	c.Conn.(*net.TCPConn).CloseWrite()
	c.expectEOF()
	if grew := totalAlloc() - before; grew > 16<<20 {
		t.Errorf("the server allocated %d bytes while 32 MiB of a refused frame arrived", grew)
	}
	if got := recv(t, reasons, "Closed"); got != CloseProtocolError {
		t.Errorf("closed with %v, want ProtocolError", got)
	}
}

// Over TLS (wss), where the session reads through crypto/tls rather than the socket, a
// message of exactly MaxRequestLength in one frame — a frame a few bytes longer than the
// limit — is echoed, and so is a 1 MiB one under a larger limit.
func TestWebSocket_SecureMessagesAtTheLimit(t *testing.T) {
	serverTLS, clientTLS, err := testcert.Pair()
	if err != nil {
		t.Fatal(err)
	}
	for _, limit := range []int{DefaultMaxRequestLength, 1 << 20} {
		srv := startServer(t, Config{
			Listeners:        []ListenerConfig{{Network: "ws", Addr: "127.0.0.1:0", TLS: &TLSConfig{Config: serverTLS}}},
			Filter:           func(int) filter.Filter { return wholeMessage{} },
			MaxRequestLength: limit,
		}, Handlers[struct{}]{Request: echoFrame[struct{}]})
		conn, err := tls.Dial("tcp", addrOf(srv), clientTLS)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		c, resp := handshakeWS(t, conn, upgradeRequest("/ws"))
		if resp.StatusCode != 101 {
			t.Fatalf("handshake: %s", resp.Status)
		}
		p := repeat("\xfe", limit)
		c.binary([]byte(p))
		c.expect(websocket.OpBinary, p)
		c.closeWith(websocket.CloseNormal, "")
		c.expectClose(websocket.CloseNormal)
	}
}

// totalAlloc returns the bytes allocated so far by the process.
func totalAlloc() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.TotalAlloc
}

// Groups 12 and 13, permessage-deflate: compressed messages of many sizes, whole and in
// fragments, echoed (compressed back when 64 bytes or more), with every offer of
// Autobahn's group 13; an offer the server cannot honour (a window under 15 bits) is
// declined and the messages go uncompressed. Autobahn sends 1000 messages per case from
// five files; here one or two (up to 16 KiB) per case from five generated data sets of
// the same kinds, and group 13 takes six of the eighteen sizes.
func autobahn12and13() []confCase {
	type size struct{ n, frag int }
	var sizes []size
	for _, n := range []int{16, 64, 256, 1 << 10, 4 << 10, 8 << 10, 16 << 10, 32 << 10, 64 << 10, 128 << 10} {
		sizes = append(sizes, size{n, 0})
	}
	for _, n := range []int{8 << 10, 16 << 10, 32 << 10, 64 << 10, 128 << 10} {
		sizes = append(sizes, size{n, 256})
	}
	for _, f := range []int{1 << 10, 4 << 10, 32 << 10} {
		sizes = append(sizes, size{128 << 10, f})
	}
	sets := compressionData()
	var cases []confCase
	add := func(id string, set dataSet, sz size, offer string, declined bool) {
		name := fmt.Sprintf("%s, %d bytes", set.name, sz.n)
		if sz.frag > 0 {
			name += fmt.Sprintf(" in %d-byte fragments", sz.frag)
		}
		cases = append(cases, confCase{id: id, name: name, text: set.text, offer: offer, declined: declined,
			reason: CloseClientClosing, lazy: func(t *testing.T) []any {
				var script []any
				for k := range 1 + btoi(sz.n <= 16<<10) { // a second message: no context is taken over
					msg := set.window(k*(sz.n+7919), sz.n)
					payload := []byte(msg)
					rsv := uint8(0)
					if !declined {
						payload, rsv = deflateMessage(t, payload), websocket.Rsv1
					}
					frames := fragments(set.op(), string(payload), max(sz.frag, len(payload), 1))
					frames[0].rsv = rsv
					script = append(script, together(frames), wsEvent{op: set.op(), payload: msg})
				}
				return script
			}})
	}
	const browser = "permessage-deflate; client_max_window_bits"
	for j, set := range sets {
		for i, sz := range sizes {
			add(fmt.Sprintf("12.%d.%d", j+1, i+1), set, sz, browser, false)
		}
	}
	offers := []struct {
		offer    string
		declined bool
	}{
		{"permessage-deflate", false},
		{"permessage-deflate; server_no_context_takeover", false},
		{"permessage-deflate; server_max_window_bits=9", true},
		{"permessage-deflate; server_max_window_bits=15", false},
		{"permessage-deflate; server_no_context_takeover; server_max_window_bits=9", true},
		{"permessage-deflate; server_no_context_takeover; server_max_window_bits=15", false},
		{"permessage-deflate; server_no_context_takeover; server_max_window_bits=9, " +
			"permessage-deflate; server_no_context_takeover, permessage-deflate", false},
	}
	for j, o := range offers {
		for i, sz := range sizes {
			// Of Autobahn's 18 sizes, six per offer: small, medium, the largest, and it
			// in small, medium and large fragments.
			if slices.Contains([]int{1, 4, 7, 10, 15, 18}, i+1) {
				add(fmt.Sprintf("13.%d.%d", j+1, i+1), sets[0], sz, o.offer, o.declined)
			}
		}
	}
	return cases
}

// dataSet is data to compress, of one of the kinds of Autobahn's files.
type dataSet struct {
	name string
	text bool // sent as text messages (UTF-8)
	data string
}

func (d dataSet) op() websocket.Opcode {
	if d.text {
		return websocket.OpText
	}
	return websocket.OpBinary
}

// window returns n bytes of the data from offset on, wrapping around; a text window is
// cut at code points (it may be a few bytes shorter).
func (d dataSet) window(offset, n int) string {
	offset %= len(d.data)
	for d.text && !utf8.RuneStart(d.data[offset]) {
		offset = (offset + 1) % len(d.data)
	}
	s := d.data[offset:min(offset+n, len(d.data))]
	if len(s) < n {
		s += d.data[:n-len(s)]
	}
	for d.text && len(s) > 0 {
		if r, _ := utf8.DecodeLastRuneInString(s); r != utf8.RuneError {
			break
		}
		s = s[:len(s)-1]
	}
	return s
}

// compressionData returns 256 KiB of each of five kinds of data, made once from a fixed
// seed: JSON, an 8-bit image, prose with non-ASCII letters, HTML, and incompressible
// bytes.
var compressionData = sync.OnceValue(func() []dataSet {
	const n = 256 << 10
	r := rand.New(rand.NewPCG(12, 13))
	words := []string{"Faust", "Gretchen", "Mephistopheles", "und", "der", "die", "Straße", "Größe", "schön",
		"über", "Mühe", "Natur", "Geist", "habe", "nun", "ach", "Philosophie", "Juristerei", "Medizin"}
	var json, prose, html strings.Builder
	for json.Len() < n {
		fmt.Fprintf(&json, `{"id":%d,"name":"user%d","active":%v,"score":%.4f,"tags":["%s","%s"]},`,
			r.IntN(1e6), r.IntN(1e4), r.IntN(2) == 0, r.Float64(), words[r.IntN(len(words))], words[r.IntN(len(words))])
	}
	for prose.Len() < n {
		prose.WriteString(words[r.IntN(len(words))])
		prose.WriteString([]string{" ", " ", " ", ", ", ".\n"}[r.IntN(5)])
	}
	for html.Len() < n {
		fmt.Fprintf(&html, `<div class="row r%d"><a href="/item/%d">%s</a><span>%d</span></div>`+"\n",
			r.IntN(10), r.IntN(1e5), words[r.IntN(len(words))], r.IntN(1e3))
	}
	image := make([]byte, n)
	for i := range image {
		x, y := i%512, i/512
		image[i] = byte((x+y)/4 + r.IntN(8))
	}
	random := make([]byte, n)
	for i := range random {
		random[i] = byte(r.Uint32())
	}
	return []dataSet{
		{"JSON", true, json.String()[:n]},
		{"image", false, string(image)},
		{"prose", true, prose.String()},
		{"HTML", true, html.String()[:n]},
		{"random bytes", false, string(random)},
	}
})

// Groups 12 and 13 on raw frames, and the ways a client can get compression wrong.
func TestWebSocketConformance_Compression(t *testing.T) {
	cs := startConfServer(t, nil)
	runCases(t, cs, append(autobahn12and13(), compressionErrors(t)...))
}

// compressionErrors: RSV1 is allowed on the first frame of a data message only, and only
// once negotiated (3.4 covers a session without it); a compressed message must inflate,
// to valid UTF-8 for text, and to no more than MaxRequestLength (a zip bomb fails with
// 1009, in step with the frames: the client's close frame is seen). A message may also go
// uncompressed in a compressing session, and an empty compressed message holds no
// request.
func compressionErrors(t *testing.T) []confCase {
	const offer = "permessage-deflate"
	z := func(op websocket.Opcode, msg string) wsFrame {
		return wsFrame{fin: true, rsv: websocket.Rsv1, op: op, payload: deflateMessage(t, []byte(msg))}
	}
	hello := "Hello, compressed world! Hello, compressed world!"
	zh := deflateMessage(t, []byte(hello))
	bomb := zipBomb(t, confLimit+1)
	fail := func(id, name string, code websocket.CloseCode, script ...any) confCase {
		return confCase{id: id, name: name, text: true, offer: offer, script: append(script, closed(code)), reason: CloseProtocolError}
	}
	ok := func(id, name string, script ...any) confCase {
		return confCase{id: id, name: name, text: true, offer: offer, script: script, reason: CloseClientClosing}
	}
	return []confCase{
		fail("Z.1", "RSV1 on a continuation frame", websocket.CloseProtocolError,
			wsFrame{rsv: websocket.Rsv1, op: websocket.OpText, payload: zh[:5]}, wsFrame{fin: true, rsv: websocket.Rsv1,
				op: websocket.OpContinuation, payload: zh[5:]}),
		fail("Z.2", "RSV1 on a ping", websocket.CloseProtocolError, ping("x").withRsv(websocket.Rsv1)),
		fail("Z.3", "compressed bytes that do not inflate", websocket.CloseInvalidPayload,
			wsFrame{fin: true, rsv: websocket.Rsv1, op: websocket.OpBinary, payload: []byte{0xff, 0xff, 0xff, 0xff}}),
		fail("Z.4", "compressed text that is not UTF-8", websocket.CloseInvalidPayload, z(websocket.OpText, "caf\xe9 au lait")),
		fail("Z.5", "a zip bomb: 16 MiB + 1 inflated from a few KiB", websocket.CloseMessageTooBig,
			wsFrame{fin: true, rsv: websocket.Rsv1, op: websocket.OpBinary, payload: bomb}),
		ok("Z.6", "compressed, then uncompressed, then compressed", z(websocket.OpText, hello), echoT(hello),
			txt(hello), echoT(hello), z(websocket.OpText, hello), echoT(hello)),
		ok("Z.7", "an empty compressed message", z(websocket.OpText, ""), txt("after"), echoT("after")),
		ok("Z.8", "a ping between the fragments of a compressed message", wsFrame{rsv: websocket.Rsv1,
			op: websocket.OpText, payload: zh[:7]}, ping("p"), cont(string(zh[7:])), pong("p"), echoT(hello)),
		ok("Z.9", "a compressed message chopped 1", z(websocket.OpText, hello).chopped(1), echoT(hello)),
	}
}

// zipBomb returns a permessage-deflate payload that inflates to n zero bytes or a
// little more: one compressed MiB of zeros, sync-flushed (so each copy starts on a byte
// boundary and refers only to itself), repeated.
func zipBomb(t *testing.T, n int) []byte {
	var buf bytes.Buffer
	fw, err := flate.NewWriter(&buf, flate.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	fw.Write(make([]byte, 1<<20))
	fw.Flush()
	mib := buf.Bytes()
	return bytes.Repeat(mib, (n+1<<20-1)>>20)[:len(mib)*((n+1<<20-1)>>20)-4]
}

// A zip bomb costs the server its limit, not what the bomb inflates to: 32 MiB of zeros,
// in a message of about 32 KiB, with MaxRequestLength at 64 KiB.
func TestWebSocket_ZipBombIsRefusedWithoutTheMemory(t *testing.T) {
	cs := startConfServer(t, func(cfg *Config) { cfg.MaxRequestLength = DefaultMaxRequestLength })
	bomb := zipBomb(t, 32<<20)
	if len(bomb) > DefaultMaxRequestLength {
		t.Fatalf("a %d-byte bomb: over the limit before it inflates", len(bomb))
	}
	c, reasons, _ := cs.dial(t, false, "Sec-WebSocket-Extensions: permessage-deflate\r\n")
	if !c.deflate {
		t.Fatal("permessage-deflate not negotiated")
	}
	frame := encodeFrame(true, websocket.Rsv1, websocket.OpBinary, bomb, &c.key)
	before := totalAlloc()
	c.write(frame, 0)
	c.expectClose(websocket.CloseMessageTooBig)
	if grew := totalAlloc() - before; grew > 8<<20 {
		t.Errorf("the server allocated %d bytes for a %d-byte zip bomb", grew, len(bomb))
	}
	c.closeWith(websocket.CloseMessageTooBig, "")
	c.expectEOF()
	if got := recv(t, reasons, "Closed"); got != CloseProtocolError {
		t.Errorf("closed with %v, want ProtocolError", got)
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
