// Package filter turns a byte stream into requests: SuperSocket's ReceiveFilters, the Go way.
//
// A [Filter] looks at the bytes of a stream that nothing has consumed yet and either
// finds one complete request at their front, asks for more bytes, or reports a protocol
// error. The server (and the client package) own the buffer; a filter never copies
// request bytes and, in the built-ins, never allocates per request.
//
// # The Filter contract
//
// Filter(data) is called with every byte received and not yet consumed, oldest first.
// It returns (req, n, err) in one of five cases, the framing cases of getty's Reader:
//
//  1. Error: err != nil. The stream cannot be framed (a bad length field, a missing begin
//     mark, a request over the limit). The server closes the session with ProtocolError;
//     req and n are ignored.
//  2. Header incomplete: n == 0, err == nil, while the bytes that say how long the request
//     is have not all arrived. The caller reads more and calls again with data extended.
//  3. Body incomplete: n == 0, err == nil, after the header arrived but not all of the body.
//     The filter has already checked the declared length against its limit, so the caller
//     never buffers a body that will be refused.
//  4. One request: n > 0. data[:n] is consumed and req describes it. Its byte slices alias
//     data: they stay valid until the caller reuses its buffer (for a server: until the
//     Request handler returns). Copy what must outlive that.
//  5. Several requests in one read: the caller sees case 4, consumes data[:n], and calls
//     Filter again with data[n:], until the filter asks for more bytes.
//
// A request split over many reads, down to one byte per read, is case 2 or 3 repeated; a
// filter may keep state between such calls (the built-ins remember how far they have
// scanned, so the work stays linear in the request's size) and must drop that state once
// it returns n > 0. A filter is therefore used by one stream at a time: a [Factory] makes
// one per session.
//
// # Limits
//
// Every filter enforces the maximum request length its [Factory] is given: the whole
// frame (header, marks and terminator included) may be at most that many bytes. A frame
// that cannot fit is refused with an error wrapping [ErrTooLarge] as soon as that is
// known: for a length field, when the header arrives, before any memory for the body is
// allocated; for a terminator or an end mark, once the limit has been scanned without
// finding it.
//
// # Switching filters
//
// A filter that implements [Switcher] may hand the following bytes to another filter
// (SuperSocket's NextReceiveFilter): after each request, the caller asks it for the next
// one. A server's Request handler may also set a session's filter directly, which is how a
// protocol upgrade (STARTTLS and the like) is done. [Switch] picks a filter per request
// from the request's first byte.
package filter

import (
	"bytes"
	"errors"
)

// Request is one request found in the stream: SuperSocket's RequestInfo. Which fields a
// filter sets is part of that filter's documentation. Every byte slice aliases the
// caller's receive buffer and is valid only until the caller reuses it; for a server that
// is until the Request handler returns.
type Request struct {
	// Key names the request, for routing: the first word of a command line, the first
	// part of a count-split frame, the method of an HTTP-style request. Empty for binary
	// filters, whose keys live in their Header.
	Key string
	// Header is the fixed header of a FixedHeader frame, or the header block of an
	// HTTP-style request (request line and fields, without the blank line).
	Header []byte
	// Body is the payload: a line without its key, a frame without header, marks or
	// terminator.
	Body []byte
	// Frame is every byte the request occupied in the stream, marks, header and
	// terminator included: what a gateway forwards untouched.
	Frame []byte

	// sep splits Body into Params; 0 means none was set and Params splits on spaces.
	sep byte
	// keepEmpty keeps empty parameters (count-split frames are positional).
	keepEmpty bool
}

// Params splits Body into parameters: on spaces for a command line (empty parameters
// dropped, as SuperSocket's BasicRequestInfoParser does), on the separator for a
// count-split frame (empty parameters kept, since positions matter). It allocates the
// returned strings; call it only when the parameters are needed, or use AppendParams.
func (r Request) Params() []string {
	var fields [maxStackParams][]byte
	parts := r.AppendParams(fields[:0])
	if len(parts) == 0 {
		return nil
	}
	out := make([]string, len(parts))
	for i, p := range parts {
		out[i] = string(p)
	}
	return out
}

// maxStackParams is how many parameters Params splits without a heap slice of fields.
const maxStackParams = 16

// AppendParams appends Params' parameters to dst as sub-slices of Body, without copying
// or allocating (beyond growing dst), and returns the extended slice. The slices alias the
// receive buffer: they are valid while Body is.
func (r Request) AppendParams(dst [][]byte) [][]byte {
	body := r.Body
	if len(body) == 0 {
		return dst
	}
	sep := r.sep
	if sep == 0 {
		sep = ' '
	}
	for {
		i := bytes.IndexByte(body, sep)
		field := body
		if i >= 0 {
			field = body[:i]
		}
		if len(field) > 0 || r.keepEmpty {
			dst = append(dst, field)
		}
		if i < 0 {
			return dst
		}
		body = body[i+1:]
	}
}

// Filter finds requests in a byte stream. See the package documentation for the five
// cases its result falls into. A Filter is used by one goroutine at a time.
type Filter interface {
	Filter(data []byte) (req Request, n int, err error)
}

// Switcher is implemented by a filter that may hand the stream over to another filter
// after a request (SuperSocket's NextReceiveFilter). The caller asks Next after every
// request the filter returns; a nil result keeps the current filter.
type Switcher interface {
	Next() Filter
}

// Finisher is implemented by a filter whose last request may end where a message ends,
// without its usual terminator: a text line typed into a browser's WebSocket, a UDP
// datagram holding one command. A message-oriented transport (a WebSocket message, a UDP
// datagram) must deliver whole requests; when a message ends with bytes that Filter
// could not complete, the caller asks Finish, if the filter has it, to take them as the
// message's last request. Finish consumes all of data (n == len(data)) or returns an
// error; it leaves the filter ready for the next message.
type Finisher interface {
	Finish(data []byte) (req Request, n int, err error)
}

// Factory makes the filter of one stream (one session). maxRequestLength is the largest
// frame, in bytes, the filter may accept; it is always at least 1.
type Factory func(maxRequestLength int) Filter

// ErrTooLarge is wrapped by the error a filter returns for a request over its limit.
var ErrTooLarge = errors.New("filter: request too large")

// ErrMalformed is wrapped by the error a filter returns for bytes that break its framing
// (a missing begin mark, a length field that cannot be right).
var ErrMalformed = errors.New("filter: malformed request")
