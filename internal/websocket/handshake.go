package websocket

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"net/textproto"
	"strings"
	"unsafe"
)

// acceptGUID is RFC 6455's constant for Sec-WebSocket-Accept.
const acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// AcceptKey returns the Sec-WebSocket-Accept value for a Sec-WebSocket-Key.
func AcceptKey(key string) string { return string(AppendAcceptKey(nil, key)) }

// AppendAcceptKey appends the Sec-WebSocket-Accept value for a Sec-WebSocket-Key to dst;
// for a key of the valid length it allocates nothing beyond dst's growth.
func AppendAcceptKey(dst []byte, key string) []byte {
	var b [24 + len(acceptGUID)]byte
	in := b[:0]
	if len(key) > 24 {
		in = make([]byte, 0, len(key)+len(acceptGUID))
	}
	h := sha1.Sum(append(append(in, key...), acceptGUID...))
	return base64.StdEncoding.AppendEncode(dst, h[:])
}

// Request is an opening-handshake request, as ParseRequest or Parse found it. Its
// strings are slices of Head. A server keeps what it needs of it (KeptHead) and parses
// the header fields into a map only if someone asks (Header).
type Request struct {
	Method, Target, Proto string
	Head                  string // the request's head, request line to the last field's CRLF
	// The header fields, in order (see all): the first 16 in own, so that a Request on
	// the stack parses a common request without allocating (a slice of own kept in the
	// Request itself would move it to the heap); past 16, every one in many.
	own  [16]field
	nOwn int
	many []field
}

// all returns the header fields, in order.
func (r *Request) all() []field {
	if r.many != nil {
		return r.many
	}
	return r.own[:r.nOwn]
}

// add appends a header field.
func (r *Request) add(f field) {
	switch {
	case r.many != nil:
		r.many = append(r.many, f)
	case r.nOwn < len(r.own):
		r.own[r.nOwn] = f
		r.nOwn++
	default:
		r.many = append(append(make([]field, 0, 2*len(r.own)), r.own[:]...), f)
	}
}

// field is one header field, its name as the client wrote it.
type field struct{ name, value string }

// KeptHead returns the request line and the header fields other than the handshake's
// own (Upgrade, Connection, Sec-WebSocket-*), each line ending in CRLF, in one string of
// exactly their size: what a server keeps of an accepted request. ParseRequest parses it
// again (with a blank line after it).
func (r *Request) KeptHead() string {
	line := r.Head[:strings.Index(r.Head, "\r\n")+2]
	n := len(line)
	for _, f := range r.all() {
		if !handshakeField(f.name) {
			n += len(f.name) + len(f.value) + 4
		}
	}
	var b strings.Builder
	b.Grow(n)
	b.WriteString(line)
	for _, f := range r.all() {
		if !handshakeField(f.name) {
			b.WriteString(f.name)
			b.WriteString(": ")
			b.WriteString(f.value)
			b.WriteString("\r\n")
		}
	}
	return b.String()
}

// handshakeField reports whether a header field is the WebSocket handshake's own.
func handshakeField(name string) bool {
	return strings.EqualFold(name, "Upgrade") || strings.EqualFold(name, "Connection") ||
		len(name) > len("Sec-WebSocket-") && strings.EqualFold(name[:len("Sec-WebSocket-")], "Sec-WebSocket-")
}

// Values returns the values of the header fields called name (compared without case), in
// order.
func (r *Request) Values(name string) []string {
	var vs []string
	for _, f := range r.all() {
		if strings.EqualFold(f.name, name) {
			vs = append(vs, f.value)
		}
	}
	return vs
}

// count returns how many header fields are called name.
func (r *Request) count(name string) int {
	n := 0
	for _, f := range r.all() {
		if strings.EqualFold(f.name, name) {
			n++
		}
	}
	return n
}

// Header returns the header fields as a map with canonical keys, every value in order.
// It builds the map on each call.
func (r *Request) Header() textproto.MIMEHeader {
	h := make(textproto.MIMEHeader, len(r.all()))
	for _, f := range r.all() {
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
	end := headEnd(b)
	if end < 0 {
		return nil, 0, needMore(b, maxLen)
	}
	req = new(Request)
	// A copy of the head: req outlives b.
	if n, err = req.parse(string(b[:end+2]), maxLen); err != nil {
		return nil, 0, err
	}
	return req, n, nil
}

// Parse is ParseRequest into r, without allocating for a request of up to 16 header
// fields: r's strings are views of b's bytes, valid only until b is modified or reused.
// n == 0 with a nil error means more bytes are needed.
func (r *Request) Parse(b []byte, maxLen int) (n int, err *HandshakeError) {
	end := headEnd(b)
	if end < 0 {
		return 0, needMore(b, maxLen)
	}
	return r.parse(unsafe.String(&b[0], end+2), maxLen)
}

// headEnd returns the index of the blank line's CRLFCRLF ending the head at b's front,
// -1 if it has not arrived.
func headEnd(b []byte) int { return bytes.Index(b, []byte("\r\n\r\n")) }

// needMore checks the start of a head whose end has not arrived: too long (431), or a
// line ended without CR (400); nil if more bytes may come.
func needMore(b []byte, maxLen int) *HandshakeError {
	if len(b) >= maxLen {
		return refuse(431, "request header fields too large")
	}
	if i := bytes.IndexByte(b, '\n'); i >= 0 && (i == 0 || b[i-1] != '\r') {
		return refuse(400, "a line ends without CR")
	}
	return nil
}

// parse parses head, every line of a request head with its CRLF but not the blank line,
// into req; it returns the length of the head with the blank line.
func (req *Request) parse(head string, maxLen int) (n int, err *HandshakeError) {
	if len(head)+2 > maxLen {
		return 0, refuse(431, "request header fields too large")
	}
	n = len(head) + 2
	if strings.Count(head, "\n") != strings.Count(head, "\r\n") {
		return 0, refuse(400, "a line ends without CR")
	}
	lineEnd := strings.Index(head, "\r\n")
	method, rest, ok1 := strings.Cut(head[:lineEnd], " ")
	target, proto, ok2 := strings.Cut(rest, " ")
	if !ok1 || !ok2 || method == "" || target == "" || strings.Contains(proto, " ") {
		return 0, refuse(400, "malformed request line")
	}
	req.Method, req.Target, req.Proto, req.Head = method, target, proto, head
	if !isToken(req.Method) {
		return 0, refuse(400, "malformed method")
	}
	major, minor, ok := parseVersion(req.Proto)
	switch {
	case !ok:
		return 0, refuse(400, "malformed HTTP version")
	case major != 1:
		return 0, refuse(505, "HTTP version not supported")
	case minor < 1:
		return 0, refuse(400, "a WebSocket upgrade needs HTTP/1.1")
	}
	if req.Target[0] != '/' && req.Target != "*" && !strings.Contains(req.Target, "://") {
		return 0, refuse(400, "malformed request target")
	}
	for _, c := range []byte(req.Target) {
		if c <= ' ' || c == 0x7F {
			return 0, refuse(400, "malformed request target")
		}
	}
	req.nOwn, req.many = 0, nil
	for rest := head[lineEnd+2:]; len(rest) > 0; {
		i := strings.Index(rest, "\r\n")
		line := rest[:i]
		rest = rest[i+2:]
		if line[0] == ' ' || line[0] == '\t' {
			return 0, refuse(400, "obsolete line folding")
		}
		colon := strings.IndexByte(line, ':')
		if colon <= 0 || !isToken(line[:colon]) {
			return 0, refuse(400, "malformed header field")
		}
		value := strings.Trim(line[colon+1:], " \t")
		for _, c := range []byte(value) {
			if c < ' ' && c != '\t' || c == 0x7F {
				return 0, refuse(400, "a control character in a header field")
			}
		}
		req.add(field{line[:colon], value})
	}
	switch {
	case req.count("Host") != 1:
		return 0, refuse(400, "exactly one Host header field is required")
	case req.count("Transfer-Encoding") > 0:
		return 0, refuse(400, "an upgrade request has no body")
	}
	for _, f := range req.all() {
		if strings.EqualFold(f.name, "Content-Length") && f.value != "0" {
			return 0, refuse(400, "an upgrade request has no body")
		}
	}
	return n, nil
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
// are the caller's to check. It allocates only for the subprotocols and extensions the
// client offers.
func CheckUpgrade(req *Request) (Upgrade, *HandshakeError) {
	switch {
	case req.Method != "GET":
		return Upgrade{}, refuse(405, "a WebSocket upgrade is a GET")
	case !req.hasToken("Upgrade", "websocket"):
		return Upgrade{}, refuse(426, "not a WebSocket upgrade: the Upgrade header must name websocket")
	case !req.hasToken("Connection", "upgrade"):
		return Upgrade{}, refuse(400, "the Connection header must list upgrade")
	}
	key, n := req.only("Sec-WebSocket-Key")
	if n != 1 {
		return Upgrade{}, refuse(400, "exactly one Sec-WebSocket-Key is required")
	}
	var raw [18]byte // base64 of 16 bytes is 24 characters, which decode into up to 18
	var k [24]byte
	if len(key) != 24 {
		return Upgrade{}, refuse(400, "Sec-WebSocket-Key is not 16 bytes in base64")
	} else if n, err := base64.StdEncoding.Decode(raw[:], append(k[:0], key...)); err != nil || n != 16 {
		return Upgrade{}, refuse(400, "Sec-WebSocket-Key is not 16 bytes in base64")
	}
	if v, n := req.only("Sec-WebSocket-Version"); n != 1 || v != "13" {
		return Upgrade{}, refuse(426, "unsupported Sec-WebSocket-Version: this server speaks 13")
	}
	u := Upgrade{Key: key}
	u.Origin, _ = req.only("Origin")
	if req.count("Sec-WebSocket-Protocol") > 0 {
		u.Protocols = Tokens(req.Values("Sec-WebSocket-Protocol"))
	}
	if req.count("Sec-WebSocket-Extensions") > 0 {
		u.Extensions = Tokens(req.Values("Sec-WebSocket-Extensions"))
	}
	return u, nil
}

// only returns the first value of the fields called name and how many there are.
func (r *Request) only(name string) (string, int) {
	v, n := "", 0
	for _, f := range r.all() {
		if strings.EqualFold(f.name, name) {
			if n == 0 {
				v = f.value
			}
			n++
		}
	}
	return v, n
}

// hasToken reports whether the fields called name list token, case-insensitively,
// without allocating.
func (r *Request) hasToken(name, token string) bool {
	for _, f := range r.all() {
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
