package websocket

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"net/textproto"
	"strings"
)

// acceptGUID is RFC 6455's constant for Sec-WebSocket-Accept.
const acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// AcceptKey returns the Sec-WebSocket-Accept value for a Sec-WebSocket-Key.
func AcceptKey(key string) string {
	h := sha1.Sum([]byte(key + acceptGUID))
	return base64.StdEncoding.EncodeToString(h[:])
}

// Request is an opening-handshake request, as ParseRequest found it. Its strings are
// slices of Head, one allocation: a server keeps a request's head for the session's life,
// and its header fields as a map only if someone asks (Header).
type Request struct {
	Method, Target, Proto string
	Head                  string  // the request's head, request line to the last field's CRLF
	fields                []field // the header fields, in order
}

// field is one header field, its name as the client wrote it.
type field struct{ name, value string }

// Values returns the values of the header fields called name (compared without case), in
// order.
func (r *Request) Values(name string) []string {
	var vs []string
	for _, f := range r.fields {
		if strings.EqualFold(f.name, name) {
			vs = append(vs, f.value)
		}
	}
	return vs
}

// count returns how many header fields are called name.
func (r *Request) count(name string) int {
	n := 0
	for _, f := range r.fields {
		if strings.EqualFold(f.name, name) {
			n++
		}
	}
	return n
}

// Header returns the header fields as a map with canonical keys, every value in order.
// It builds the map on each call.
func (r *Request) Header() textproto.MIMEHeader {
	h := make(textproto.MIMEHeader, len(r.fields))
	for _, f := range r.fields {
		k := textproto.CanonicalMIMEHeaderKey(f.name)
		h[k] = append(h[k], f.value)
	}
	return h
}

// HandshakeError is a request the server refuses before any WebSocket exists: Status is
// the HTTP status to answer with (400, 403, 404, 405, 426, 431), Reason a short text for
// the body and the log.
type HandshakeError struct {
	Status int
	Reason string
}

func (e *HandshakeError) Error() string { return "websocket handshake: " + e.Reason }

func refuse(status int, reason string) *HandshakeError {
	return &HandshakeError{Status: status, Reason: reason}
}

// ParseRequest reads an HTTP/1.1 request head (request line and header fields, up to the
// blank line) at the front of b. n > 0 is the head's length, the bytes after it belong to
// the WebSocket; n == 0 with a nil error means more bytes are needed. A head longer than
// maxLen is refused with 431 before it is buffered further. The syntax is checked
// strictly (RFC 9112): CRLF line endings, one space between the three parts of the
// request line, field names that are tokens with the colon right after them, no obsolete
// line folding, exactly one Host field; anything else is a 400.
func ParseRequest(b []byte, maxLen int) (req *Request, n int, err *HandshakeError) {
	end := bytes.Index(b, []byte("\r\n\r\n"))
	if end < 0 {
		if len(b) >= maxLen {
			return nil, 0, refuse(431, "request header fields too large")
		}
		if i := bytes.IndexByte(b, '\n'); i >= 0 && (i == 0 || b[i-1] != '\r') {
			return nil, 0, refuse(400, "a line ends without CR")
		}
		return nil, 0, nil
	}
	if end+4 > maxLen {
		return nil, 0, refuse(431, "request header fields too large")
	}
	n = end + 4
	if bytes.Count(b[:end+2], []byte("\n")) != bytes.Count(b[:end+2], []byte("\r\n")) {
		return nil, 0, refuse(400, "a line ends without CR")
	}
	head := string(b[:end+2]) // every line with its CRLF; the one allocation
	lineEnd := strings.Index(head, "\r\n")
	method, rest, ok1 := strings.Cut(head[:lineEnd], " ")
	target, proto, ok2 := strings.Cut(rest, " ")
	if !ok1 || !ok2 || method == "" || target == "" || strings.Contains(proto, " ") {
		return nil, 0, refuse(400, "malformed request line")
	}
	req = &Request{Method: method, Target: target, Proto: proto, Head: head}
	if !isToken(req.Method) {
		return nil, 0, refuse(400, "malformed method")
	}
	major, minor, ok := parseVersion(req.Proto)
	switch {
	case !ok:
		return nil, 0, refuse(400, "malformed HTTP version")
	case major != 1:
		return nil, 0, refuse(505, "HTTP version not supported")
	case minor < 1:
		return nil, 0, refuse(400, "a WebSocket upgrade needs HTTP/1.1")
	}
	if req.Target[0] != '/' && req.Target != "*" && !strings.Contains(req.Target, "://") {
		return nil, 0, refuse(400, "malformed request target")
	}
	for _, c := range []byte(req.Target) {
		if c <= ' ' || c == 0x7F {
			return nil, 0, refuse(400, "malformed request target")
		}
	}
	req.fields = make([]field, 0, strings.Count(head, "\r\n")-1)
	for rest := head[lineEnd+2:]; len(rest) > 0; {
		i := strings.Index(rest, "\r\n")
		line := rest[:i]
		rest = rest[i+2:]
		if line[0] == ' ' || line[0] == '\t' {
			return nil, 0, refuse(400, "obsolete line folding")
		}
		colon := strings.IndexByte(line, ':')
		if colon <= 0 || !isToken(line[:colon]) {
			return nil, 0, refuse(400, "malformed header field")
		}
		value := strings.Trim(line[colon+1:], " \t")
		for _, c := range []byte(value) {
			if c < ' ' && c != '\t' || c == 0x7F {
				return nil, 0, refuse(400, "a control character in a header field")
			}
		}
		req.fields = append(req.fields, field{line[:colon], value})
	}
	switch {
	case req.count("Host") != 1:
		return nil, 0, refuse(400, "exactly one Host header field is required")
	case req.count("Transfer-Encoding") > 0:
		return nil, 0, refuse(400, "an upgrade request has no body")
	}
	for _, f := range req.fields {
		if strings.EqualFold(f.name, "Content-Length") && f.value != "0" {
			return nil, 0, refuse(400, "an upgrade request has no body")
		}
	}
	return req, n, nil
}

func parseVersion(p string) (major, minor int, ok bool) {
	if len(p) != 8 || !strings.HasPrefix(p, "HTTP/") || p[6] != '.' || p[5] < '0' || p[5] > '9' || p[7] < '0' || p[7] > '9' {
		return 0, 0, false
	}
	return int(p[5] - '0'), int(p[7] - '0'), true
}

// isToken reports whether s is an RFC 9110 token.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			continue
		}
		if !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}

// Tokens returns the comma-separated elements of a header field's values, trimmed, in
// order (empty elements dropped).
func Tokens(values []string) []string {
	var out []string
	for _, v := range values {
		for t := range strings.SplitSeq(v, ",") {
			if t = strings.TrimSpace(t); t != "" {
				out = append(out, t)
			}
		}
	}
	return out
}

// Upgrade is what the server needs to accept a WebSocket: the checks of RFC 6455 §4.2.1
// passed, and what the client asked for.
type Upgrade struct {
	Key        string   // Sec-WebSocket-Key
	Origin     string   // Origin, "" if the client sent none (not a browser)
	Protocols  []string // Sec-WebSocket-Protocol, in the client's order of preference
	Extensions []string // Sec-WebSocket-Extensions offers, each one element
}

// CheckUpgrade checks that req asks for a WebSocket: GET, Upgrade: websocket, a
// Connection field listing upgrade, a Sec-WebSocket-Key of 16 base64 bytes, and version
// 13 (else 426, and the caller names the version it speaks). The path and the origin
// are the caller's to check.
func CheckUpgrade(req *Request) (*Upgrade, *HandshakeError) {
	switch {
	case req.Method != "GET":
		return nil, refuse(405, "a WebSocket upgrade is a GET")
	case !req.hasToken("Upgrade", "websocket"):
		return nil, refuse(426, "not a WebSocket upgrade: the Upgrade header must name websocket")
	case !req.hasToken("Connection", "upgrade"):
		return nil, refuse(400, "the Connection header must list upgrade")
	}
	keys := req.Values("Sec-WebSocket-Key")
	if len(keys) != 1 {
		return nil, refuse(400, "exactly one Sec-WebSocket-Key is required")
	}
	var raw [18]byte // base64 of 16 bytes is 24 characters, which decode into up to 18
	if k := keys[0]; len(k) != 24 {
		return nil, refuse(400, "Sec-WebSocket-Key is not 16 bytes in base64")
	} else if n, err := base64.StdEncoding.Decode(raw[:], []byte(k)); err != nil || n != 16 {
		return nil, refuse(400, "Sec-WebSocket-Key is not 16 bytes in base64")
	}
	if v := req.Values("Sec-WebSocket-Version"); len(v) != 1 || v[0] != "13" {
		return nil, refuse(426, "unsupported Sec-WebSocket-Version: this server speaks 13")
	}
	u := &Upgrade{Key: keys[0], Protocols: Tokens(req.Values("Sec-WebSocket-Protocol")), Extensions: Tokens(req.Values("Sec-WebSocket-Extensions"))}
	if o := req.Values("Origin"); len(o) > 0 {
		u.Origin = o[0]
	}
	return u, nil
}

// hasToken reports whether the fields called name list token, case-insensitively,
// without allocating.
func (r *Request) hasToken(name, token string) bool {
	for _, f := range r.fields {
		if !strings.EqualFold(f.name, name) {
			continue
		}
		for t := range strings.SplitSeq(f.value, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// Path returns the path of a request target: the part before any query, or of an
// absolute URL the part after its authority.
func Path(target string) string {
	if i := strings.Index(target, "://"); i >= 0 {
		rest := target[i+3:]
		j := strings.IndexByte(rest, '/')
		if j < 0 {
			return "/"
		}
		target = rest[j:]
	}
	if i := strings.IndexAny(target, "?#"); i >= 0 {
		target = target[:i]
	}
	return target
}
