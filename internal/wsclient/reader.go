package wsclient

import (
	"errors"
	"fmt"

	"github.com/supersocket-go/supersocket/internal/websocket"
)

// Reader turns the frames a server sends into whole messages and control frames,
// applying RFC 6455's rules for a client that negotiated no extension: server frames are
// unmasked, RSV bits clear, control frames whole and short, fragments in order, text
// valid UTF-8 (checked as fragments arrive), and a message no longer than the limit
// (checked from each frame's header, before its payload is buffered). A broken rule is a
// *websocket.ProtocolError whose Code is the close code to answer with. A Reader is used
// by one goroutine at a time.
type Reader struct {
	limit int64
	op    websocket.Opcode // the fragmented message in progress, 0 for none
	msg   []byte           // its fragments so far
	utf8  websocket.UTF8
	need  int // see Need
}

// keepMsg is the largest reassembly buffer a Reader keeps between messages.
const keepMsg = 64 << 10

// NewReader returns a Reader of messages up to limit bytes.
func NewReader(limit int) *Reader { return &Reader{limit: int64(limit)} }

// Frame is what Next found: a whole data message (Op OpText or OpBinary; a fragmented
// message is returned once, reassembled, with its first frame's opcode), a control frame
// (OpPing, OpPong, OpClose, with Code and Reason parsed for a close), or, for a fragment
// that does not end its message, Op 0.
type Frame struct {
	Op      websocket.Opcode
	Payload []byte // valid until the next call of Next; it may alias the data Next was given
	Code    websocket.CloseCode
	Reason  string
}

// Next reads the frame at the front of data. n > 0 is the frame's length; n == 0 with a
// nil error means data does not hold the whole frame yet (see Need).
func (r *Reader) Next(data []byte) (f Frame, n int, err error) {
	r.need = 0
	room := r.limit - int64(len(r.msg))
	h, hn, err := websocket.ParseHeader(data, max(room, websocket.MaxControlPayload))
	switch {
	case errors.Is(err, websocket.ErrFrameTooLarge) && h.Op.IsControl():
		return f, 0, r.check(&h) // a control frame over 125 bytes
	case errors.Is(err, websocket.ErrFrameTooLarge), err == nil && hn > 0 && !h.Op.IsControl() && h.Length > room:
		return f, 0, &websocket.ProtocolError{Code: websocket.CloseMessageTooBig,
			Reason: fmt.Sprintf("a message over %d bytes (%d so far, a %d-byte frame)", r.limit, len(r.msg), h.Length)}
	case err != nil:
		return f, 0, err
	case hn == 0:
		return f, 0, nil
	case int64(len(data)-hn) < h.Length:
		r.need = hn + int(h.Length)
		return f, 0, nil
	}
	if err := r.check(&h); err != nil {
		return f, 0, err
	}
	n = hn + int(h.Length)
	payload := data[hn:n]
	if h.Op.IsControl() {
		f = Frame{Op: h.Op, Payload: payload}
		if h.Op == websocket.OpClose {
			if f.Code, f.Reason, err = websocket.ParseClose(payload); err != nil {
				return Frame{}, 0, err
			}
		}
		return f, n, nil
	}
	first := h.Op != websocket.OpContinuation
	if first {
		r.op = h.Op
		r.utf8.Reset()
	}
	if r.op == websocket.OpText && !r.utf8.Write(payload) {
		return Frame{}, 0, &websocket.ProtocolError{Code: websocket.CloseInvalidPayload, Reason: "a text message is not valid UTF-8"}
	}
	if !h.Fin {
		r.msg = append(r.msg, payload...)
		return Frame{}, n, nil
	}
	op := r.op
	r.op = 0
	if op == websocket.OpText && !r.utf8.Complete() {
		return Frame{}, 0, &websocket.ProtocolError{Code: websocket.CloseInvalidPayload, Reason: "a text message ends inside a UTF-8 sequence"}
	}
	if first {
		return Frame{Op: op, Payload: payload}, n, nil // the common case: no copy
	}
	msg := append(r.msg, payload...)
	r.msg = msg[:0]
	if cap(msg) > keepMsg {
		r.msg = nil
	}
	return Frame{Op: op, Payload: msg}, n, nil
}

// Need returns, after Next found an incomplete frame, the frame's whole length (header
// and payload), so the caller can make room for it; 0 when even its header is incomplete.
func (r *Reader) Need() int { return r.need }

// check applies RFC 6455's rules to a server frame's header in the reader's state.
func (r *Reader) check(h *websocket.Header) error {
	fail := func(format string, args ...any) error {
		return &websocket.ProtocolError{Code: websocket.CloseProtocolError, Reason: fmt.Sprintf(format, args...)}
	}
	switch {
	case h.Masked:
		return fail("a server frame is masked")
	case h.Op.IsReserved():
		return fail("reserved opcode %#x", byte(h.Op))
	case h.Rsv != 0:
		return fail("reserved bits set (RSV %#x) without an extension", h.Rsv)
	case h.Op.IsControl() && !h.Fin:
		return fail("a fragmented control frame")
	case h.Op.IsControl() && h.Length > websocket.MaxControlPayload:
		return fail("a %d-byte control frame (the limit is 125)", h.Length)
	case h.Op == websocket.OpContinuation && r.op == 0:
		return fail("a continuation frame without a message to continue")
	case !h.Op.IsControl() && h.Op != websocket.OpContinuation && r.op != 0:
		return fail("a new message inside a fragmented one")
	}
	return nil
}
