// Package wsclient is the client's side of RFC 6455, over internal/websocket's wire
// format: the opening handshake (the request, and the checks of the server's response),
// masked frames with a fresh key each, and a Reader that turns a server's frames into
// whole messages and control frames. The client package and the load generator
// (internal/loadgen) both speak WebSocket through it.
//
// Like internal/websocket it holds no connection and starts no goroutine, except that
// Handshake.Do runs the handshake on the net.Conn it is given.
package wsclient

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/supersocket-go/supersocket/internal/websocket"
)

// MaxResponseHead bounds the server's response head (status line and header fields).
const MaxResponseHead = 16 << 10

// Handshake is an opening handshake to make.
type Handshake struct {
	Host      string               // the Host field: the URL's host[:port]
	Target    string               // the request target: path and query ("/ws?x=1")
	Origin    string               // the Origin field, "" for none
	Protocols []string             // Sec-WebSocket-Protocol offers, in order of preference
	Header    textproto.MIMEHeader // further fields (Authorization, Cookie…), sent as they are
}

// Response is what the server's 101 response settled.
type Response struct {
	Subprotocol string               // the subprotocol the server chose, "" for none
	Header      textproto.MIMEHeader // the response's header fields
}

// Refused is a server's answer other than 101 Switching Protocols: Status is its HTTP
// status, Reason the status line's reason phrase and, when it came with the head, the
// start of the body (supersocket's server says there why it refused).
type Refused struct {
	Status int
	Reason string
}

func (e *Refused) Error() string {
	return fmt.Sprintf("websocket handshake refused: %d %s", e.Status, e.Reason)
}

// reserved are the fields Do sets itself, which Header may not hold.
var reserved = []string{"Host", "Upgrade", "Connection", "Sec-Websocket-Key", "Sec-Websocket-Version",
	"Sec-Websocket-Protocol", "Sec-Websocket-Extensions", "Origin", "Content-Length", "Transfer-Encoding"}

// CheckHeader reports a field of h that the handshake sets itself, or that is not a
// valid header field.
func CheckHeader(h textproto.MIMEHeader) error {
	for name, values := range h {
		if slices.Contains(reserved, textproto.CanonicalMIMEHeaderKey(name)) {
			return fmt.Errorf("%s is set by the handshake itself", name)
		}
		if !validToken(name) {
			return fmt.Errorf("%q is not a header field name", name)
		}
		for _, v := range values {
			if strings.ContainsAny(v, "\r\n\x00") {
				return fmt.Errorf("the value of %s holds a line break or NUL", name)
			}
		}
	}
	return nil
}

// validToken reports whether s is an RFC 9110 token (a field name, a subprotocol).
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if c <= ' ' || c >= 0x7F || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// CheckProtocols reports a subprotocol that is not a token, or one offered twice.
func CheckProtocols(protocols []string) error {
	for i, p := range protocols {
		if !validToken(p) {
			return fmt.Errorf("%q is not a token", p)
		}
		if slices.Contains(protocols[:i], p) {
			return fmt.Errorf("%q is offered twice", p)
		}
	}
	return nil
}

// NewKey returns a fresh Sec-WebSocket-Key: 16 bytes from crypto/rand, in base64.
func NewKey() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand crashes the program rather)
	return base64.StdEncoding.EncodeToString(b[:])
}

// AppendRequest appends the upgrade request that offers key.
func (h *Handshake) AppendRequest(dst []byte, key string) []byte {
	dst = append(dst, "GET "...)
	dst = append(dst, h.Target...)
	dst = append(dst, " HTTP/1.1\r\nHost: "...)
	dst = append(dst, h.Host...)
	dst = append(dst, "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: "...)
	dst = append(dst, key...)
	dst = append(dst, "\r\nSec-WebSocket-Version: 13\r\n"...)
	if h.Origin != "" {
		dst = append(dst, "Origin: "+h.Origin+"\r\n"...)
	}
	if len(h.Protocols) > 0 {
		dst = append(dst, "Sec-WebSocket-Protocol: "+strings.Join(h.Protocols, ", ")+"\r\n"...)
	}
	names := make([]string, 0, len(h.Header))
	for name := range h.Header {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		for _, v := range h.Header[name] {
			dst = append(dst, name+": "+v+"\r\n"...)
		}
	}
	return append(dst, "\r\n"...)
}

// ParseResponse reads the response head at the front of b and checks it against the
// request that offered key. n > 0 is the head's length, the bytes after it are the
// server's first frames; n == 0 with a nil error means more bytes are needed. A status
// other than 101 is a *Refused; a 101 that breaks RFC 6455 §4.1 (Upgrade, Connection,
// Sec-WebSocket-Accept, a subprotocol not offered, an extension not offered) is an error
// that says which.
func (h *Handshake) ParseResponse(b []byte, key string) (resp *Response, n int, err error) {
	end := bytes.Index(b, []byte("\r\n\r\n"))
	if end < 0 {
		if len(b) >= MaxResponseHead {
			return nil, 0, fmt.Errorf("websocket handshake: a response head over %d bytes", MaxResponseHead)
		}
		return nil, 0, nil
	}
	lines := strings.Split(string(b[:end]), "\r\n")
	status, reason, err := parseStatusLine(lines[0])
	if err != nil {
		return nil, 0, err
	}
	header := textproto.MIMEHeader{}
	for _, line := range lines[1:] {
		name, value, ok := strings.Cut(line, ":")
		if !ok || !validToken(name) {
			return nil, 0, fmt.Errorf("websocket handshake: a malformed header field %q", line)
		}
		name = textproto.CanonicalMIMEHeaderKey(name)
		header[name] = append(header[name], strings.Trim(value, " \t"))
	}
	n = end + 4
	if status != 101 {
		return nil, n, &Refused{Status: status, Reason: reason}
	}
	return h.check(header, key, n)
}

// parseStatusLine reads "HTTP/1.x NNN reason".
func parseStatusLine(line string) (status int, reason string, err error) {
	proto, rest, _ := strings.Cut(line, " ")
	code, reason, _ := strings.Cut(rest, " ")
	status, cerr := strconv.Atoi(code)
	if !strings.HasPrefix(proto, "HTTP/1.") || len(code) != 3 || cerr != nil {
		return 0, "", fmt.Errorf("websocket handshake: not an HTTP/1.x response: %.60q", line)
	}
	return status, reason, nil
}

// check applies RFC 6455 §4.1's checks to a 101 response's fields.
func (h *Handshake) check(header textproto.MIMEHeader, key string, n int) (*Response, int, error) {
	fail := func(format string, args ...any) (*Response, int, error) {
		return nil, 0, fmt.Errorf("websocket handshake: "+format, args...)
	}
	switch {
	case !hasToken(header["Upgrade"], "websocket"):
		return fail("the 101 response's Upgrade field is %q, not websocket", header.Get("Upgrade"))
	case !hasToken(header["Connection"], "upgrade"):
		return fail("the 101 response's Connection field %q does not list upgrade", header.Get("Connection"))
	case len(header["Sec-Websocket-Accept"]) != 1 || header.Get("Sec-Websocket-Accept") != websocket.AcceptKey(key):
		return fail("wrong Sec-WebSocket-Accept %q", header.Get("Sec-Websocket-Accept"))
	case len(websocket.Tokens(header["Sec-Websocket-Extensions"])) > 0:
		return fail("the server chose extensions %q, none was offered", header.Get("Sec-Websocket-Extensions"))
	}
	resp := &Response{Header: header}
	switch protos := websocket.Tokens(header["Sec-Websocket-Protocol"]); {
	case len(protos) > 1:
		return fail("the server chose %d subprotocols", len(protos))
	case len(protos) == 1 && !slices.Contains(h.Protocols, protos[0]):
		return fail("the server chose subprotocol %q, which was not offered", protos[0])
	case len(protos) == 1:
		resp.Subprotocol = protos[0]
	}
	return resp, n, nil
}

func hasToken(values []string, token string) bool {
	return slices.ContainsFunc(websocket.Tokens(values), func(t string) bool { return strings.EqualFold(t, token) })
}

// Do makes the handshake on c, within the deadline the caller set on c: it writes the
// request with a fresh key, reads the response and checks it. It returns the response
// and the bytes that came after it (the server's first frames, nil if none), and leaves
// c without deadlines. A refusal (*Refused) carries the start of the response's body
// when it came with the head.
func (h *Handshake) Do(c net.Conn) (*Response, []byte, error) {
	key := NewKey()
	if _, err := c.Write(h.AppendRequest(make([]byte, 0, 256), key)); err != nil {
		return nil, nil, fmt.Errorf("websocket handshake: writing the request: %w", err)
	}
	buf := make([]byte, 0, 1024)
	for {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, min(2*cap(buf), MaxResponseHead+1)-len(buf))
		}
		k, rerr := c.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+k]
		resp, n, err := h.ParseResponse(buf, key)
		if refused, ok := err.(*Refused); ok {
			refused.Reason = withBody(refused.Reason, buf[n:])
			return nil, nil, refused
		}
		if err != nil {
			return nil, nil, err
		}
		if resp != nil {
			var rest []byte
			if n < len(buf) {
				rest = buf[n:]
			}
			c.SetDeadline(time.Time{}) // an error here shows in the next read or write
			return resp, rest, nil
		}
		if rerr != nil {
			return nil, nil, fmt.Errorf("websocket handshake: reading the response: %w", rerr)
		}
	}
}

// withBody appends the first line of a refusal's body, when there is one, to reason.
func withBody(reason string, body []byte) string {
	line, _, _ := bytes.Cut(body, []byte("\n"))
	line = bytes.TrimSpace(line)
	if len(line) == 0 {
		return reason
	}
	if len(line) > 200 {
		line = line[:200]
	}
	return reason + ": " + strings.ToValidUTF8(string(line), "?")
}
