package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/supersocket-go/supersocket/internal/websocket"
)

// wsExchange upgrades c at path and sends each message as a masked frame of op; it
// returns the reader positioned after the 101 response.
func wsUpgrade(t *testing.T, c net.Conn, path, origin string) *bufio.Reader {
	t.Helper()
	req := "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: MDEyMzQ1Njc4OWFiY2RlZg==\r\nSec-WebSocket-Version: 13\r\n"
	if origin != "" {
		req += "Origin: " + origin + "\r\n"
	}
	io.WriteString(c, req+"\r\n")
	r := bufio.NewReader(c)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 {
		t.Fatalf("upgrade at %s: %s", path, resp.Status)
	}
	return r
}

func wsSend(t *testing.T, c net.Conn, op websocket.Opcode, payload []byte) {
	t.Helper()
	key := [4]byte{1, 2, 3, 4}
	p := append([]byte(nil), payload...)
	websocket.Mask(key, 0, p)
	if _, err := c.Write(append(websocket.AppendHeader(nil, true, 0, op, len(p), &key), p...)); err != nil {
		t.Fatal(err)
	}
}

func wsRecv(t *testing.T, r *bufio.Reader) (websocket.Opcode, string) {
	t.Helper()
	var hb []byte
	for {
		b, err := r.ReadByte()
		if err != nil {
			t.Fatal(err)
		}
		hb = append(hb, b)
		if h, n, err := websocket.ParseHeader(hb, 1<<20); err != nil {
			t.Fatal(err)
		} else if n > 0 {
			p := make([]byte, h.Length)
			if _, err := io.ReadFull(r, p); err != nil {
				t.Fatal(err)
			}
			return h.Op, string(p)
		}
	}
}

// serve -mode ws serves the commandline app to browsers: text messages, a line each; the
// echo app speaks binary messages.
func TestServeWebSocket(t *testing.T) {
	addr, _ := start(t, "serve", "-mode", "ws", "-addr", "127.0.0.1:0", "-ws-path", "/chat", "-ws-origin", "http://127.0.0.1:8000")
	c := dial(t, addr)
	r := wsUpgrade(t, c, "/chat", "http://127.0.0.1:8000")
	wsSend(t, c, websocket.OpText, []byte("ECHO hello"))
	if op, msg := wsRecv(t, r); op != websocket.OpText || msg != "hello" {
		t.Fatalf("ECHO hello → %v %q, want text \"hello\"", op, msg)
	}
	wsSend(t, c, websocket.OpText, []byte("ADD 1 2"))
	if _, msg := wsRecv(t, r); msg != "3" {
		t.Fatalf("ADD 1 2 → %q", msg)
	}

	addr, _ = start(t, "serve", "-mode", "ws", "-app", "echo", "-addr", "127.0.0.1:0")
	c = dial(t, addr)
	r = wsUpgrade(t, c, "/ws", "")
	wsSend(t, c, websocket.OpBinary, echoPacket(7, "hi"))
	want := echoPacket(7, "hi")
	want[4] = 0 // the reply's reserved byte
	if op, msg := wsRecv(t, r); op != websocket.OpBinary || msg != string(want) {
		t.Fatalf("echo over ws: %v %q", op, msg)
	}
}
