package wsclient

import (
	"bytes"
	"errors"
	"net"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"github.com/supersocket-go/supersocket/internal/websocket"
)

// The request AppendRequest writes is one the server's strict parser accepts, with
// everything the handshake asked for.
func TestAppendRequest_ServerAccepts(t *testing.T) {
	h := Handshake{Host: "127.0.0.1:2013", Target: "/ws?room=1", Origin: "https://app.example",
		Protocols: []string{"chat", "superchat"}, Header: textproto.MIMEHeader{"Authorization": {"Bearer x"}}}
	key := NewKey()
	b := h.AppendRequest(nil, key)
	req, n, herr := websocket.ParseRequest(b, 8192)
	if herr != nil || n != len(b) {
		t.Fatalf("ParseRequest: n %d of %d, %v", n, len(b), herr)
	}
	u, herr := websocket.CheckUpgrade(req)
	if herr != nil {
		t.Fatal(herr)
	}
	if req.Target != "/ws?room=1" || req.Header().Get("Host") != "127.0.0.1:2013" || u.Key != key ||
		u.Origin != "https://app.example" || strings.Join(u.Protocols, ",") != "chat,superchat" ||
		req.Header().Get("Authorization") != "Bearer x" {
		t.Fatalf("request %+v, upgrade %+v", req, u)
	}
	if NewKey() == key {
		t.Fatal("two keys alike")
	}
}

func response(key string, extra ...string) string {
	return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
		websocket.AcceptKey(key) + "\r\n" + strings.Join(extra, "") + "\r\n"
}

func TestParseResponse(t *testing.T) {
	h := Handshake{Host: "h", Target: "/", Protocols: []string{"a", "b"}}
	key := NewKey()
	good := response(key, "Sec-WebSocket-Protocol: b\r\n") + "\x81\x02hi"
	for cut := range len(good) - 4 {
		if resp, n, err := h.ParseResponse([]byte(good[:cut]), key); resp != nil || n != 0 || err != nil {
			t.Fatalf("a head cut at %d: %v %d %v", cut, resp, n, err)
		}
	}
	resp, n, err := h.ParseResponse([]byte(good), key)
	if err != nil || resp.Subprotocol != "b" || good[n:] != "\x81\x02hi" {
		t.Fatalf("%+v %d %v", resp, n, err)
	}
	for _, tc := range []struct{ name, resp, want string }{
		{"wrong accept", strings.Replace(response(key), websocket.AcceptKey(key), websocket.AcceptKey("x"), 1), "Sec-WebSocket-Accept"},
		{"no upgrade", strings.Replace(response(key), "Upgrade: websocket\r\n", "", 1), "Upgrade"},
		{"no connection", strings.Replace(response(key), "Connection: Upgrade\r\n", "", 1), "Connection"},
		{"protocol not offered", response(key, "Sec-WebSocket-Protocol: c\r\n"), "not offered"},
		{"two protocols", response(key, "Sec-WebSocket-Protocol: a, b\r\n"), "2 subprotocols"},
		{"extension", response(key, "Sec-WebSocket-Extensions: permessage-deflate\r\n"), "extensions"},
		{"not http", "SSH-2.0-OpenSSH\r\n\r\n", "not an HTTP"},
		{"bad field", strings.Replace(response(key), "Upgrade:", "Up grade:", 1), "malformed header"},
	} {
		if _, _, err := h.ParseResponse([]byte(tc.resp), key); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error about %q", tc.name, err, tc.want)
		}
	}
	var refused *Refused
	if _, n, err := h.ParseResponse([]byte("HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nno\n"), key); !errors.As(err, &refused) ||
		refused.Status != 404 || n == 0 {
		t.Fatalf("404: %v", err)
	}
	if _, _, err := h.ParseResponse(bytes.Repeat([]byte("x"), MaxResponseHead), key); err == nil {
		t.Fatal("an endless head was not refused")
	}
}

func TestCheckHeaderAndProtocols(t *testing.T) {
	for _, h := range []textproto.MIMEHeader{{"sec-websocket-key": {"x"}}, {"Host": {"x"}}, {"Bad Name": {"x"}}, {"X": {"a\r\nb"}}} {
		if CheckHeader(h) == nil {
			t.Errorf("%v accepted", h)
		}
	}
	if err := CheckHeader(textproto.MIMEHeader{"Cookie": {"a=b"}}); err != nil {
		t.Error(err)
	}
	if CheckProtocols([]string{"a", "a"}) == nil || CheckProtocols([]string{"a b"}) == nil || CheckProtocols([]string{"a", "b"}) != nil {
		t.Error("CheckProtocols")
	}
}

// Do against a server that answers in pieces, with its first frame in the same write
// as the head; and a refusal keeps the server's reason.
func TestDo(t *testing.T) {
	serve := func(answer func(c net.Conn, key string)) net.Conn {
		a, b := net.Pipe()
		go func() {
			defer b.Close()
			buf := make([]byte, 4096)
			n, _ := b.Read(buf)
			req, _, herr := websocket.ParseRequest(buf[:n], 4096)
			if herr != nil {
				return
			}
			answer(b, req.Header().Get("Sec-Websocket-Key"))
		}()
		return a
	}
	c := serve(func(c net.Conn, key string) {
		resp := response(key) + "\x82\x01z"
		for i := 0; i < len(resp); i += 7 {
			c.Write([]byte(resp[i:min(i+7, len(resp))]))
		}
	})
	h := Handshake{Host: "x", Target: "/ws"}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	resp, rest, err := h.Do(c)
	if err != nil || resp == nil {
		t.Fatal(err)
	}
	for len(rest) < 3 { // the frame may trail the head's last piece
		b := make([]byte, 8)
		n, err := c.Read(b)
		if err != nil {
			t.Fatal(err)
		}
		rest = append(rest, b[:n]...)
	}
	if string(rest) != "\x82\x01z" {
		t.Fatalf("rest %q", rest)
	}
	c.Close()

	c = serve(func(c net.Conn, _ string) {
		c.Write([]byte("HTTP/1.1 403 Forbidden\r\nContent-Length: 24\r\n\r\norigin not allowed: evil\n"))
	})
	c.SetDeadline(time.Now().Add(5 * time.Second))
	_, _, err = h.Do(c)
	var refused *Refused
	if !errors.As(err, &refused) || refused.Status != 403 || !strings.Contains(err.Error(), "origin not allowed") {
		t.Fatalf("refusal: %v", err)
	}
	c.Close()
}

// parse reads one client frame back: header and unmasked payload.
func parse(t *testing.T, b []byte) (websocket.Header, []byte, int) {
	t.Helper()
	h, hn, err := websocket.ParseHeader(b, 1<<30)
	if err != nil || hn == 0 || !h.Masked {
		t.Fatalf("header: %+v %d %v", h, hn, err)
	}
	p := bytes.Clone(b[hn : hn+int(h.Length)])
	websocket.Mask(h.Key, 0, p)
	return h, p, hn + int(h.Length)
}

func TestAppendFrame(t *testing.T) {
	for _, n := range []int{0, 1, 125, 126, 0xFFFF, 0x10000} {
		a, b := bytes.Repeat([]byte{'a'}, n/3), bytes.Repeat([]byte{'b'}, n-n/3)
		f := AppendFrame([]byte("prefix"), true, websocket.OpBinary, a, b)
		if len(f)-6 != FrameLen(n) {
			t.Fatalf("n %d: %d bytes, FrameLen %d", n, len(f)-6, FrameLen(n))
		}
		h, p, _ := parse(t, f[6:])
		if !h.Fin || h.Op != websocket.OpBinary || !bytes.Equal(p, append(bytes.Clone(a), b...)) {
			t.Fatalf("n %d: %+v", n, h)
		}
		if bytes.Count(a, []byte{'a'}) != len(a) || bytes.Count(b, []byte{'b'}) != len(b) {
			t.Fatal("the parts were modified")
		}
	}
	k1, _, _ := parse(t, AppendFrame(nil, true, websocket.OpText, []byte("x")))
	k2, _, _ := parse(t, AppendFrame(nil, true, websocket.OpText, []byte("x")))
	if k1.Key == k2.Key {
		t.Fatal("two frames with one key")
	}
	h, p, _ := parse(t, AppendClose(nil, websocket.CloseNormal, "bye"))
	if code, reason, err := websocket.ParseClose(p); h.Op != websocket.OpClose || code != websocket.CloseNormal || reason != "bye" || err != nil {
		t.Fatalf("close frame %v %q %v", code, reason, err)
	}
}

// server builds a server frame (unmasked).
func server(fin bool, op websocket.Opcode, payload string) []byte {
	return append(websocket.AppendHeader(nil, fin, 0, op, len(payload), nil), payload...)
}

// A stream of frames fed to a Reader whole, and a byte at a time, gives the same
// messages: fragments reassembled around an interleaved ping.
func TestReader_Messages(t *testing.T) {
	var stream []byte
	for _, f := range [][]byte{
		server(true, websocket.OpBinary, "one"),
		server(false, websocket.OpText, "fr"),
		server(true, websocket.OpPing, "p"),
		server(false, websocket.OpContinuation, "ag"),
		server(true, websocket.OpContinuation, "mented é"),
		server(true, websocket.OpText, ""),
		server(true, websocket.OpBinary, strings.Repeat("L", 300)),
		server(true, websocket.OpClose, "\x03\xe9going"),
	} {
		stream = append(stream, f...)
	}
	want := []string{"2 one", "9 p", "1 fragmented é", "1 ", "2 " + strings.Repeat("L", 300), "8 going 1001"}
	for _, step := range []int{len(stream), 1} {
		r := NewReader(1000)
		var got []string
		var pending []byte
		for i := 0; i < len(stream); i += step {
			pending = append(pending, stream[i:min(i+step, len(stream))]...)
			for {
				f, n, err := r.Next(pending)
				if err != nil {
					t.Fatal(err)
				}
				if n == 0 {
					if need := r.Need(); need != 0 && need <= len(pending) {
						t.Fatalf("Need %d with %d bytes pending", need, len(pending))
					}
					break
				}
				pending = pending[n:]
				switch {
				case f.Op == websocket.OpClose:
					got = append(got, "8 "+f.Reason+" "+strings.Fields(f.Code.String())[0])
				case f.Op != 0:
					got = append(got, string('0'+rune(f.Op))+" "+string(f.Payload))
				}
			}
		}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Fatalf("step %d: %q", step, got)
		}
	}
}

func TestReader_Refusals(t *testing.T) {
	masked := websocket.AppendHeader(nil, true, 0, websocket.OpBinary, 1, &[4]byte{1, 2, 3, 4})
	rsv := server(true, websocket.OpBinary, "x")
	rsv[0] |= 0x40
	for _, tc := range []struct {
		name   string
		frames [][]byte
		code   websocket.CloseCode
	}{
		{"masked", [][]byte{append(masked, 'x')}, websocket.CloseProtocolError},
		{"rsv1", [][]byte{rsv}, websocket.CloseProtocolError},
		{"reserved opcode", [][]byte{server(true, 3, "")}, websocket.CloseProtocolError},
		{"fragmented ping", [][]byte{server(false, websocket.OpPing, "")}, websocket.CloseProtocolError},
		{"long ping", [][]byte{server(true, websocket.OpPing, strings.Repeat("p", 126))}, websocket.CloseProtocolError},
		{"lone continuation", [][]byte{server(true, websocket.OpContinuation, "x")}, websocket.CloseProtocolError},
		{"message in message", [][]byte{server(false, websocket.OpText, "a"), server(true, websocket.OpText, "b")}, websocket.CloseProtocolError},
		{"bad utf-8", [][]byte{server(true, websocket.OpText, "\xff")}, websocket.CloseInvalidPayload},
		{"utf-8 cut", [][]byte{server(false, websocket.OpText, "\xc3"), server(true, websocket.OpContinuation, "")}, websocket.CloseInvalidPayload},
		{"too big", [][]byte{server(true, websocket.OpBinary, strings.Repeat("b", 11))}, websocket.CloseMessageTooBig},
		{"too big in fragments", [][]byte{server(false, websocket.OpBinary, "123456"), server(true, websocket.OpContinuation, "78901")}, websocket.CloseMessageTooBig},
		{"bad close code", [][]byte{server(true, websocket.OpClose, "\x03\xed")}, websocket.CloseProtocolError},
	} {
		r := NewReader(10)
		var err error
		for _, f := range tc.frames {
			if _, _, err = r.Next(f); err != nil {
				break
			}
		}
		var pe *websocket.ProtocolError
		if !errors.As(err, &pe) || pe.Code != tc.code {
			t.Errorf("%s: %v, want a protocol error %v", tc.name, err, tc.code)
		}
	}
}
