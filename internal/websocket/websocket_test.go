package websocket

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestAcceptKey_RFCExample(t *testing.T) {
	if got := AcceptKey("dGhlIHNhbXBsZSBub25jZQ=="); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("AcceptKey = %q", got)
	}
}

// Headers round-trip through AppendHeader and ParseHeader at every length encoding, and a
// header cut anywhere asks for more bytes.
func TestHeader_RoundTripAndPartial(t *testing.T) {
	key := [4]byte{1, 2, 3, 4}
	for _, length := range []int{0, 1, 125, 126, 0xFFFF, 0x10000, 1 << 20} {
		for _, k := range []*[4]byte{nil, &key} {
			b := AppendHeader(nil, true, Rsv1, OpBinary, length, k)
			for cut := range len(b) {
				if _, n, err := ParseHeader(b[:cut], 1<<30); n != 0 || err != nil {
					t.Fatalf("len %d: a header cut at %d parsed (n %d, %v)", length, cut, n, err)
				}
			}
			h, n, err := ParseHeader(b, 1<<30)
			if err != nil || n != len(b) || !h.Fin || h.Rsv != Rsv1 || h.Op != OpBinary || h.Length != int64(length) || h.Masked != (k != nil) {
				t.Fatalf("len %d masked %v: %+v n %d err %v", length, k != nil, h, n, err)
			}
			if k != nil && h.Key != key {
				t.Fatalf("key %v", h.Key)
			}
		}
	}
}

// A declared length over the limit is refused from the header alone; a 64-bit length with
// its top bit set is a protocol error.
func TestHeader_LimitsAndBadLength(t *testing.T) {
	b := AppendHeader(nil, true, 0, OpText, 1000, nil)
	if _, _, err := ParseHeader(b, 999); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("over the limit: %v", err)
	}
	bad := []byte{0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 1}
	var pe *ProtocolError
	if _, _, err := ParseHeader(bad, 1<<62); !errors.As(err, &pe) || pe.Code != CloseProtocolError {
		t.Fatalf("top bit set: %v", err)
	}
}

// Mask matches the byte-by-byte definition from any starting offset, and is its own
// inverse.
func TestMask_MatchesDefinition(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	key := [4]byte{0xde, 0xad, 0xbe, 0xef}
	for range 200 {
		n, pos := r.IntN(100), r.IntN(9)
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		want := bytes.Clone(b)
		for i := range want {
			want[i] ^= key[(pos+i)%4]
		}
		got := bytes.Clone(b)
		if end := Mask(key, pos, got); end != pos+n || !bytes.Equal(got, want) {
			t.Fatalf("n %d pos %d: wrong mask", n, pos)
		}
		Mask(key, pos, got)
		if !bytes.Equal(got, b) {
			t.Fatal("masking twice is not the identity")
		}
	}
}

// The incremental validator agrees with utf8.Valid on whole inputs, whatever the split,
// and fails fast on a prefix that can never become valid.
func TestUTF8_AgreesWithTheStandardLibrary(t *testing.T) {
	cases := []string{
		"", "hello", "κόσμε", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", "\U0010FFFF", "\xf4\x90\x80\x80",
		"\xed\xa0\x80", "\xc0\xaf", "\xe0\x80\xaf", "\xf0\x80\x80\xaf", "\x80", "\xfe", "abc\xe2\x82",
		"€uro€", strings.Repeat("a", 40) + "\xc3\xa9" + strings.Repeat("b", 17),
	}
	r := rand.New(rand.NewPCG(3, 4))
	for range 2000 {
		b := make([]byte, r.IntN(12))
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		cases = append(cases, string(b))
	}
	for _, c := range cases {
		want := utf8.ValidString(c)
		for split := 0; split <= len(c); split++ {
			var v UTF8
			ok := v.Write([]byte(c[:split])) && v.Write([]byte(c[split:])) && v.Complete()
			if ok != want {
				t.Fatalf("%q split at %d: %v, want %v", c, split, ok, want)
			}
		}
	}
	var v UTF8
	if v.Write([]byte("ok\xf4\x90")) {
		t.Fatal("U+110000's prefix accepted: no fail-fast")
	}
}

func TestParseClose(t *testing.T) {
	var pe *ProtocolError
	for _, tc := range []struct {
		payload []byte
		code    CloseCode
		errCode CloseCode
	}{
		{nil, CloseNoStatus, 0},
		{[]byte{0x03, 0xe8}, CloseNormal, 0},
		{[]byte{0x03, 0xe8, 'o', 'k'}, CloseNormal, 0},
		{[]byte{0x0b, 0xb8}, 3000, 0},
		{[]byte{0x03}, 0, CloseProtocolError},
		{[]byte{0x03, 0xed}, 0, CloseProtocolError}, // 1005 is never sent
		{[]byte{0x03, 0xee}, 0, CloseProtocolError}, // 1006
		{[]byte{0x03, 0xe7}, 0, CloseProtocolError}, // 999
		{[]byte{0x13, 0x88}, 0, CloseProtocolError}, // 5000
		{[]byte{0x03, 0xe8, 0xff}, 0, CloseInvalidPayload},
	} {
		code, _, err := ParseClose(tc.payload)
		switch {
		case tc.errCode == 0 && (err != nil || code != tc.code):
			t.Errorf("%x: %v %v, want %v", tc.payload, code, err, tc.code)
		case tc.errCode != 0 && (!errors.As(err, &pe) || pe.Code != tc.errCode):
			t.Errorf("%x: %v, want a protocol error %v", tc.payload, err, tc.errCode)
		}
	}
	long := AppendClose(nil, CloseNormal, strings.Repeat("é", 100))
	if len(long) > MaxControlPayload || !utf8.Valid(long[2:]) {
		t.Fatalf("AppendClose: %d bytes, valid %v", len(long), utf8.Valid(long[2:]))
	}
}

const goodRequest = "GET /ws?x=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n" +
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nOrigin: http://example.com\r\n" +
	"Sec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"

func TestParseRequest_GoodUpgrade(t *testing.T) {
	b := []byte(goodRequest + "\x81\x80")
	for cut := range len(goodRequest) {
		if req, n, err := ParseRequest(b[:cut], 8192); req != nil || n != 0 || err != nil {
			t.Fatalf("a head cut at %d: %v %d %v", cut, req, n, err)
		}
	}
	req, n, herr := ParseRequest(b, 8192)
	if herr != nil || n != len(goodRequest) {
		t.Fatalf("ParseRequest: n %d, %v", n, herr)
	}
	if Path(req.Target) != "/ws" {
		t.Fatalf("path %q", Path(req.Target))
	}
	u, herr := CheckUpgrade(req)
	if herr != nil {
		t.Fatal(herr)
	}
	if u.Origin != "http://example.com" || strings.Join(u.Protocols, ",") != "chat,superchat" || !AcceptDeflate(u.Extensions) {
		t.Fatalf("upgrade %+v", u)
	}
}

// Parse, in place, reads what ParseRequest reads, a request of more fields than it keeps
// inline included; KeptHead keeps the request line and the fields that are not the
// handshake's, and parses again to the same target and fields.
func TestParse_InPlaceManyFieldsAndKeptHead(t *testing.T) {
	var extra strings.Builder
	for i := range 20 {
		fmt.Fprintf(&extra, "X-Field-%d: v%d\r\n", i, i)
	}
	raw := strings.Replace(goodRequest, "Origin:", extra.String()+"Origin:", 1)
	var req Request
	for cut := range len(raw) - 1 {
		if n, err := req.Parse([]byte(raw[:cut]), 8192); n != 0 || err != nil {
			t.Fatalf("a head cut at %d: %d %v", cut, n, err)
		}
	}
	b := []byte(raw)
	n, herr := req.Parse(b, 8192)
	if herr != nil || n != len(raw) {
		t.Fatalf("Parse: n %d, %v", n, herr)
	}
	h := req.Header()
	if len(h) != 8+20 || h.Get("X-Field-19") != "v19" || h.Get("Origin") != "http://example.com" {
		t.Fatalf("%d fields: %v", len(h), h)
	}
	if v := req.Values("x-field-7"); len(v) != 1 || v[0] != "v7" {
		t.Fatalf("Values: %q", v)
	}
	u, herr := CheckUpgrade(&req)
	if herr != nil || u.Key != "dGhlIHNhbXBsZSBub25jZQ==" {
		t.Fatalf("CheckUpgrade: %+v, %v", u, herr)
	}
	kept := req.KeptHead()
	for i := range b {
		b[i] = 0 // the kept head is a copy: the buffer may be reused
	}
	again, _, herr := ParseRequest([]byte(kept+"\r\n"), 8192)
	if herr != nil || again.Target != "/ws?x=1" {
		t.Fatalf("the kept head %q: %v", kept, herr)
	}
	k := again.Header()
	if len(k) != 1+20+1 || k.Get("Host") != "127.0.0.1" || k.Get("X-Field-0") != "v0" || k.Get("Origin") == "" {
		t.Fatalf("kept fields %v", k)
	}
	for _, f := range []string{"Upgrade", "Connection", "Sec-Websocket-Key", "Sec-Websocket-Version", "Sec-Websocket-Protocol", "Sec-Websocket-Extensions"} {
		if _, ok := k[f]; ok {
			t.Errorf("the kept head has the handshake's %s", f)
		}
	}
}

// Malformed requests get the status RFC 9112 and RFC 6455 ask for.
func TestParseRequest_Refusals(t *testing.T) {
	good := func(edit func(string) string) string { return edit(goodRequest) }
	for _, tc := range []struct {
		name   string
		req    string
		status int
	}{
		{"bare LF", "GET /ws HTTP/1.1\nHost: a\n\n", 400},
		{"two spaces", good(func(s string) string { return strings.Replace(s, "GET /ws", "GET  /ws", 1) }), 400},
		{"HTTP/1.0", good(func(s string) string { return strings.Replace(s, "HTTP/1.1", "HTTP/1.0", 1) }), 400},
		{"HTTP/2.0", good(func(s string) string { return strings.Replace(s, "HTTP/1.1", "HTTP/2.0", 1) }), 505},
		{"bad version", good(func(s string) string { return strings.Replace(s, "HTTP/1.1", "HTTX/1.1", 1) }), 400},
		{"no Host", good(func(s string) string { return strings.Replace(s, "Host: 127.0.0.1\r\n", "", 1) }), 400},
		{"two Hosts", good(func(s string) string { return strings.Replace(s, "Host: 127.0.0.1\r\n", "Host: a\r\nHost: b\r\n", 1) }), 400},
		{"space before colon", good(func(s string) string { return strings.Replace(s, "Upgrade:", "Upgrade :", 1) }), 400},
		{"folding", good(func(s string) string {
			return strings.Replace(s, "Upgrade: websocket\r\n", "Upgrade:\r\n websocket\r\n", 1)
		}), 400},
		{"control char", good(func(s string) string { return strings.Replace(s, "Origin: http", "Origin: \x01http", 1) }), 400},
		{"body", good(func(s string) string { return strings.Replace(s, "Host:", "Content-Length: 5\r\nHost:", 1) }), 400},
		{"chunked", good(func(s string) string { return strings.Replace(s, "Host:", "Transfer-Encoding: chunked\r\nHost:", 1) }), 400},
		{"bad target", good(func(s string) string { return strings.Replace(s, "/ws?x=1", "ws", 1) }), 400},
	} {
		_, _, herr := ParseRequest([]byte(tc.req), 8192)
		if herr == nil || herr.Status != tc.status {
			t.Errorf("%s: %v, want %d", tc.name, herr, tc.status)
		}
	}
	if _, _, herr := ParseRequest([]byte("GET / HTTP/1.1\r\nX: "+strings.Repeat("a", 200)), 100); herr == nil || herr.Status != 431 {
		t.Errorf("oversized head: %v", herr)
	}
}

func TestCheckUpgrade_Refusals(t *testing.T) {
	for _, tc := range []struct {
		name, from, to string
		status         int
	}{
		{"POST", "GET /ws", "POST /ws", 405},
		{"no Upgrade", "Upgrade: websocket\r\n", "", 426},
		{"Upgrade h2c", "Upgrade: websocket", "Upgrade: h2c", 426},
		{"no Connection upgrade", "Connection: keep-alive, Upgrade", "Connection: keep-alive", 400},
		{"no key", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", "", 400},
		{"short key", "dGhlIHNhbXBsZSBub25jZQ==", "c2hvcnQ=", 400},
		{"version 8", "Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8", 426},
	} {
		req, _, herr := ParseRequest([]byte(strings.Replace(goodRequest, tc.from, tc.to, 1)), 8192)
		if herr != nil {
			t.Fatalf("%s: %v", tc.name, herr)
		}
		if _, herr := CheckUpgrade(req); herr == nil || herr.Status != tc.status {
			t.Errorf("%s: %v, want %d", tc.name, herr, tc.status)
		}
	}
}

func TestAcceptDeflate(t *testing.T) {
	for offer, want := range map[string]bool{
		"permessage-deflate":                         true,
		"permessage-deflate; client_max_window_bits": true,
		"permessage-deflate; server_no_context_takeover; client_max_window_bits=10":  true,
		"permessage-deflate; server_max_window_bits=10":                              false,
		"permessage-deflate; server_max_window_bits=15":                              true,
		"permessage-deflate; x=1":                                                    false,
		"permessage-deflate; client_no_context_takeover; client_no_context_takeover": false,
		"x-webkit-deflate-frame":                                                     false,
	} {
		if got := AcceptDeflate([]string{offer}); got != want {
			t.Errorf("%q: %v, want %v", offer, got, want)
		}
	}
	if !AcceptDeflate([]string{"permessage-deflate; server_max_window_bits=9", "permessage-deflate"}) {
		t.Error("a second, acceptable offer was not taken")
	}
}
