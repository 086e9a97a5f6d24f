package filter

import (
	"bytes"
	"fmt"
	"net/textproto"
	"strings"
)

// HTTPHeader returns a Factory of filters for HTTP-style requests: a header block ended by
// an empty line ("\r\n\r\n"), then an optional body sized by Content-Length. It is
// SuperSocket's HttpReceiveFilterBase with the body rule built in.
//
// Key is the first word of the request line (the method, case kept, interned per filter).
// Header is the block without its final "\r\n\r\n": the request line and the fields, to be
// parsed with [ParseHeader] when needed. If the block has a Content-Length field (name
// matched case-insensitively), Body is that many bytes after the blank line; otherwise Body
// is empty. Frame is everything. Once a stream's methods are interned, the filter
// allocates nothing.
//
// Limits and errors: the header block with its blank line may be at most the factory's
// limit, else ErrTooLarge once that many bytes are buffered; header, blank line and body
// together too, checked as soon as the header block is complete, before the body is
// waited for. A Content-Length that is not a plain decimal number, is folded over lines,
// has whitespace before its colon, or appears twice with different values is
// ErrMalformed: those are the ambiguities request smuggling feeds on.
//
// Only Content-Length frames a body: a chunked Transfer-Encoding is not decoded, so a
// protocol that needs it must handle the chunks as requests of their own or use its own
// filter.
func HTTPHeader() Factory {
	return func(limit int) Filter {
		return &httpFilter{scan: markScanner{mark: []byte("\r\n\r\n")}, limit: limit}
	}
}

type httpFilter struct {
	scan  markScanner
	limit int
	keys  keyCache
	// Once the header block of the current request is complete: its length (without the
	// blank line), the frame's total length and the key.
	headerLen int
	total     int
	key       string
}

// Filter implements [Filter].
func (f *httpFilter) Filter(data []byte) (Request, int, error) {
	if f.total == 0 {
		end, err := f.scan.find(data, 0, f.limit, "end of header block")
		if end == 0 || err != nil {
			return Request{}, 0, err
		}
		header := data[:end-4]
		bodyLen, declared, err := contentLength(header, f.limit)
		if err != nil {
			return Request{}, 0, err
		}
		if bodyLen > f.limit-end {
			return Request{}, 0, fmt.Errorf("%w: %d-byte header block declares Content-Length %s, over the limit of %d bytes per request",
				ErrTooLarge, end, declared, f.limit)
		}
		f.headerLen, f.total, f.key = len(header), end+bodyLen, f.keys.intern(method(header))
	}
	if len(data) < f.total {
		return Request{}, 0, nil
	}
	total := f.total
	req := Request{
		Key:    f.key,
		Header: data[:f.headerLen],
		Body:   data[f.headerLen+4 : total],
		Frame:  data[:total],
	}
	f.headerLen, f.total, f.key = 0, 0, ""
	return req, total, nil
}

// nextLine splits the first line off b. Lines end at "\n"; a "\r" before it is dropped.
func nextLine(b []byte) (line, rest []byte) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		line, rest = b, nil
	} else {
		line, rest = b[:i], b[i+1:]
	}
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	return line, rest
}

// method returns the first word of the header block's first line.
func method(header []byte) []byte {
	line, _ := nextLine(header)
	if i := bytes.IndexByte(line, ' '); i >= 0 {
		return line[:i]
	}
	return line
}

// trimOWS trims the optional whitespace (spaces and tabs) HTTP allows around a value.
func trimOWS(b []byte) []byte {
	return bytes.Trim(b, " \t")
}

// contentLength finds the Content-Length fields of a header block (request line first)
// and returns their value, 0 if there is none, and the value as written, for messages.
// Values over limit are reported as limit+1, which is enough to refuse them and cannot
// overflow. It does not allocate.
func contentLength(header []byte, limit int) (n int, declared []byte, err error) {
	const name = "Content-Length"
	_, rest := nextLine(header) // the request line
	found, inCL := false, false
	for len(rest) > 0 {
		var line []byte
		line, rest = nextLine(rest)
		if len(line) > 0 && (line[0] == ' ' || line[0] == '\t') {
			if inCL {
				return 0, nil, fmt.Errorf("%w: Content-Length folded over lines", ErrMalformed)
			}
			continue
		}
		inCL = false
		colon := bytes.IndexByte(line, ':')
		if colon < 0 {
			continue // not a field; ParseHeader reports it, framing need not
		}
		field := line[:colon]
		if !bytes.EqualFold(field, []byte(name)) {
			if bytes.EqualFold(bytes.TrimRight(field, " \t"), []byte(name)) {
				return 0, nil, fmt.Errorf("%w: whitespace between Content-Length and its colon", ErrMalformed)
			}
			continue
		}
		inCL = true
		raw := trimOWS(line[colon+1:])
		v, err := parseLength(raw, limit)
		if err != nil {
			return 0, nil, err
		}
		if found && v != n {
			return 0, nil, fmt.Errorf("%w: conflicting Content-Length fields %s and %s", ErrMalformed, declared, raw)
		}
		n, declared, found = v, raw, true
	}
	return n, declared, nil
}

// parseLength parses a non-negative decimal, saturating at limit+1.
func parseLength(v []byte, limit int) (int, error) {
	if len(v) == 0 {
		return 0, fmt.Errorf("%w: empty Content-Length", ErrMalformed)
	}
	n := 0
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%w: Content-Length %q is not a decimal number", ErrMalformed, v)
		}
		if n <= limit {
			n = n*10 + int(c-'0')
		}
	}
	return min(n, limit+1), nil
}

// ParseHeader parses a header block as [HTTPHeader] returns it in Request.Header: a
// request (or status) line, then "Name: value" fields, one per line. Lines end at "\r\n"
// or "\n"; a blank line ends the block, and anything after it is ignored. A line starting
// with a space or tab continues the previous field's value (obsolete line folding), joined
// with a single space. A field that repeats gets one value per occurrence, in order. Keys
// are canonicalized as by [textproto.CanonicalMIMEHeaderKey]; values are trimmed of spaces
// and tabs.
//
// A continuation line before any field, a line without a colon, or an empty or invalid
// field name is an error wrapping ErrMalformed. ParseHeader allocates the strings it
// returns; call it only when the fields are needed.
func ParseHeader(header []byte) (requestLine string, fields textproto.MIMEHeader, err error) {
	line, rest := nextLine(header)
	requestLine = string(line)
	fields = make(textproto.MIMEHeader)
	lastKey := ""
	for len(rest) > 0 {
		line, rest = nextLine(rest)
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			if lastKey == "" {
				return "", nil, fmt.Errorf("%w: continuation line %q before any field", ErrMalformed, line)
			}
			if v := trimOWS(line); len(v) > 0 {
				vals := fields[lastKey]
				if last := &vals[len(vals)-1]; *last == "" {
					*last = string(v)
				} else {
					*last += " " + string(v)
				}
			}
			continue
		}
		colon := bytes.IndexByte(line, ':')
		if colon < 0 {
			return "", nil, fmt.Errorf("%w: header line %q has no colon", ErrMalformed, line)
		}
		name := line[:colon]
		if !validFieldName(name) {
			return "", nil, fmt.Errorf("%w: invalid field name %q", ErrMalformed, name)
		}
		key := textproto.CanonicalMIMEHeaderKey(string(name))
		fields[key] = append(fields[key], string(trimOWS(line[colon+1:])))
		lastKey = key
	}
	return requestLine, fields, nil
}

// validFieldName reports whether name is a non-empty HTTP token (RFC 9110, section 5.1).
func validFieldName(name []byte) bool {
	if len(name) == 0 {
		return false
	}
	for _, c := range name {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}
