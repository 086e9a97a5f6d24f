package supersocket

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	coder "github.com/coder/websocket"
	"github.com/gorilla/websocket"

	"github.com/supersocket-go/supersocket/filter"
)

// Interoperability with two independent WebSocket clients, gorilla/websocket and
// coder/websocket (test-only dependencies: the library itself imports neither): echo of
// text and binary messages, large and fragmented ones, permessage-deflate as each
// negotiates it, pings from the client, and the close codes the client sees when the
// server closes, shuts down, or refuses a message.

// interopMessages are the messages each client sends and expects back: small, empty
// never (an empty message holds no request), compressible and not (random bytes; prose
// for text), and large.
func interopMessages(text bool) [][]byte {
	data := compressionData()
	other := data[4].window(0, 4096) // random bytes
	if text {
		other = data[2].window(0, 4096) // prose
	}
	return [][]byte{
		[]byte("hello"),
		[]byte("ünïcødé ✓"),
		bytes.Repeat([]byte("compress me please; "), 200),
		[]byte(other),
		bytes.Repeat([]byte("0123456789abcdef"), 1<<14),
	}
}

// dialer dials like net.Dialer and registers each connection with cs, the reason of its
// session going to *reasons.
func (cs *confServer) dialer(reasons *<-chan CloseReason) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		if err == nil {
			*reasons = cs.register(c)
		}
		return c, err
	}
}

// writeParts writes one message to w (a client's message writer, or the error of
// getting one) in n parts of size bytes, and returns it.
func writeParts(t *testing.T, w io.WriteCloser, err error, n, size int) []byte {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	var sent bytes.Buffer
	for i := range n {
		part := bytes.Repeat([]byte{'a' + byte(i)}, size)
		sent.Write(part)
		if _, err := w.Write(part); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return sent.Bytes()
}

func TestInterop_Gorilla(t *testing.T) {
	cs := startConfServer(t, nil)
	for _, compress := range []bool{false, true} {
		for _, text := range []bool{false, true} {
			var reasons <-chan CloseReason
			d := websocket.Dialer{NetDialContext: cs.dialer(&reasons), EnableCompression: compress,
				WriteBufferSize: 1024, HandshakeTimeout: waitLong}
			addr, typ := cs.bin, websocket.BinaryMessage
			if text {
				addr, typ = cs.text, websocket.TextMessage
			}
			conn, resp, err := d.Dial("ws://"+addr+"/ws", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if ext := resp.Header.Get("Sec-WebSocket-Extensions"); (ext != "") != compress {
				t.Fatalf("compression %v: Sec-WebSocket-Extensions %q", compress, ext)
			}
			conn.SetReadDeadline(time.Now().Add(waitLong))
			for _, m := range interopMessages(text) {
				if err := conn.WriteMessage(typ, m); err != nil {
					t.Fatal(err)
				}
				gotType, got, err := conn.ReadMessage()
				if err != nil || gotType != typ || !bytes.Equal(got, m) {
					t.Fatalf("compression %v text %v: echo of %d bytes: type %d, %d bytes, %v", compress, text, len(m), gotType, len(got), err)
				}
			}
			// A message written in parts: WriteBufferSize 1024 makes gorilla send a frame
			// per kilobyte.
			w, err := conn.NextWriter(typ)
			sent := writeParts(t, w, err, 10, 700)
			if _, got, err := conn.ReadMessage(); err != nil || !bytes.Equal(got, sent) {
				t.Fatalf("a message written in parts: %d bytes back, %v", len(got), err)
			}
			// A ping from the client: the pong carries its payload.
			pong := make(chan string, 1)
			conn.SetPongHandler(func(p string) error { pong <- p; return nil })
			if err := conn.WriteControl(websocket.PingMessage, []byte("are you there?"), time.Now().Add(waitLong)); err != nil {
				t.Fatal(err)
			}
			conn.WriteMessage(typ, []byte("after the ping"))
			if _, got, err := conn.ReadMessage(); err != nil || string(got) != "after the ping" {
				t.Fatalf("after the ping: %q, %v", got, err)
			}
			if p := recv(t, pong, "the pong"); p != "are you there?" {
				t.Fatalf("pong %q", p)
			}
			// The client closes: the server echoes its code.
			conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(4001, "done"), time.Now().Add(waitLong))
			if _, _, err := conn.ReadMessage(); !websocket.IsCloseError(err, 4001) {
				t.Fatalf("after the client's close: %v, want the echo of 4001", err)
			}
			if r := recv(t, reasons, "Closed"); r != CloseClientClosing {
				t.Fatalf("closed with %v, want ClientClosing", r)
			}
		}
	}
}

func TestInterop_Coder(t *testing.T) {
	cs := startConfServer(t, nil)
	ctx := t.Context()
	for _, mode := range []coder.CompressionMode{coder.CompressionDisabled, coder.CompressionNoContextTakeover, coder.CompressionContextTakeover} {
		for _, text := range []bool{false, true} {
			var reasons <-chan CloseReason
			client := &http.Client{Transport: &http.Transport{DialContext: cs.dialer(&reasons)}}
			addr, typ := cs.bin, coder.MessageBinary
			if text {
				addr, typ = cs.text, coder.MessageText
			}
			conn, resp, err := coder.Dial(ctx, "ws://"+addr+"/ws", &coder.DialOptions{HTTPClient: client, CompressionMode: mode,
				CompressionThreshold: 64})
			if err != nil {
				t.Fatal(err)
			}
			defer conn.CloseNow()
			if ext := resp.Header.Get("Sec-WebSocket-Extensions"); (ext != "") != (mode != coder.CompressionDisabled) {
				t.Fatalf("mode %v: Sec-WebSocket-Extensions %q", mode, ext)
			}
			conn.SetReadLimit(confLimit)
			// Twice each: a client that kept its compression context after the server
			// asked for client_no_context_takeover would fail the second time.
			for _, m := range append(interopMessages(text), interopMessages(text)...) {
				if err := conn.Write(ctx, typ, m); err != nil {
					t.Fatal(err)
				}
				gotType, got, err := conn.Read(ctx)
				if err != nil || gotType != typ || !bytes.Equal(got, m) {
					t.Fatalf("mode %v text %v: echo of %d bytes: type %v, %d bytes, %v", mode, text, len(m), gotType, len(got), err)
				}
			}
			// A message written in parts: a frame per Write.
			w, err := conn.Writer(ctx, typ)
			sent := writeParts(t, w, err, 5, 300)
			if _, got, err := conn.Read(ctx); err != nil || !bytes.Equal(got, sent) {
				t.Fatalf("a message written in parts: %d bytes back, %v", len(got), err)
			}
			// A ping from the client, answered while a Read runs (as coder requires).
			read := make(chan error, 1)
			go func() {
				_, _, err := conn.Read(ctx)
				read <- err
			}()
			pingCtx, cancel := context.WithTimeout(ctx, waitLong)
			err = conn.Ping(pingCtx)
			cancel()
			if err != nil {
				t.Fatalf("ping: %v", err)
			}
			if err := conn.Close(coder.StatusNormalClosure, ""); err != nil {
				t.Fatalf("close: %v", err)
			}
			<-read
			if r := recv(t, reasons, "Closed"); r != CloseClientClosing {
				t.Fatalf("closed with %v, want ClientClosing", r)
			}
		}
	}
}

// The close codes each client sees: 1000 when the application closes the session, 1002
// for a message the filter refuses (it ends inside a request), 1007 for a text message
// that is not UTF-8, 1001 on Shutdown.
func TestInterop_CloseCodes(t *testing.T) {
	type client struct {
		name string
		// dial connects; send sends a binary message (text when text is set); code
		// waits for the server's close and returns its code.
		dial func(t *testing.T, addr string) (send func(msg []byte, text bool), code func() int)
	}
	clients := []client{
		{"gorilla", func(t *testing.T, addr string) (func([]byte, bool), func() int) {
			conn, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/ws", nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { conn.Close() })
			conn.SetReadDeadline(time.Now().Add(waitLong))
			return func(msg []byte, text bool) {
					typ := websocket.BinaryMessage
					if text {
						typ = websocket.TextMessage
					}
					conn.WriteMessage(typ, msg)
				}, func() int {
					for {
						if _, _, err := conn.ReadMessage(); err != nil {
							var ce *websocket.CloseError
							if !errors.As(err, &ce) {
								t.Fatalf("gorilla: %v, want a close", err)
							}
							return ce.Code
						}
					}
				}
		}},
		{"coder", func(t *testing.T, addr string) (func([]byte, bool), func() int) {
			conn, _, err := coder.Dial(t.Context(), "ws://"+addr+"/ws", nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { conn.CloseNow() })
			return func(msg []byte, text bool) {
					typ := coder.MessageBinary
					if text {
						typ = coder.MessageText
					}
					conn.Write(t.Context(), typ, msg)
				}, func() int {
					ctx, cancel := context.WithTimeout(t.Context(), waitLong)
					defer cancel()
					for {
						if _, _, err := conn.Read(ctx); err != nil {
							if code := coder.CloseStatus(err); code != -1 {
								return int(code)
							}
							t.Fatalf("coder: %v, want a close", err)
						}
					}
				}
		}},
	}
	for _, cl := range clients {
		t.Run(cl.name, func(t *testing.T) {
			// closeServer closes on a request "bye" (after replying); Uint16BE frames its
			// requests, so "\x00\x05x" ends inside one.
			srv, closed := closeServer(t, nil, func(cfg *Config) { cfg.Filter = filter.Uint16BE() })
			for _, tc := range []struct {
				msg    string
				text   bool
				code   int
				reason CloseReason
			}{
				{"\x00\x03bye", false, 1000, CloseServerClosing},
				{"\x00\x05x", false, 1002, CloseProtocolError},
				{"\x00\x02\xff\xfe", true, 1007, CloseProtocolError},
			} {
				send, code := cl.dial(t, addrOf(srv))
				send([]byte(tc.msg), tc.text)
				if got := code(); got != tc.code {
					t.Errorf("%q: close code %d, want %d", tc.msg, got, tc.code)
				}
				if ev := recv(t, closed, "Closed"); ev.reason != tc.reason {
					t.Errorf("%q: closed with %v, want %v", tc.msg, ev.reason, tc.reason)
				}
			}
			send, code := cl.dial(t, addrOf(srv))
			send([]byte("\x00\x02hi"), false)
			shut := make(chan error, 1)
			go func() { shut <- srv.Shutdown(t.Context()) }()
			if got := code(); got != 1001 {
				t.Errorf("Shutdown: close code %d, want 1001", got)
			}
			if err := recv(t, shut, "Shutdown"); err != nil {
				t.Fatal(err)
			}
			if ev := recv(t, closed, "Closed"); ev.reason != CloseServerShutdown {
				t.Errorf("Shutdown: closed with %v", ev.reason)
			}
		})
	}
}
