package supersocket

import (
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/supersocket-go/supersocket/internal/pool"
	"github.com/supersocket-go/supersocket/internal/websocket"
)

// wsConn is a TCP session's WebSocket layer (stream.ws): between the stream's bytes and
// the session's dispatch it turns frames into messages, and between Send and the send
// queue messages into frames. It runs on the stream's own read loop and send queue, so a
// WebSocket session parks, lingers and applies back-pressure like any TCP session.
//
// Reading (received) runs on the session's owner. A message is dispatched as one unit:
// an unfragmented, uncompressed message straight from the read buffer, unmasked in
// place; fragments are gathered into a pooled buffer, bounded by MaxRequestLength before
// they are buffered. Control frames are answered at once (a pong for a ping; the close
// handshake).
//
// The close handshake: when the server closes the session (Close, from any goroutine),
// wake queues a close frame with the code the reason maps to and the read loop keeps
// reading — discarding data — until the client's close frame arrives or CloseTimeout
// passes; then the socket closes. When the client closes first, its code is echoed and
// the socket closes once the echo is written.
type wsConn[T any] struct {
	// It lives in the session's allocation (wsSession) and holds what every WebSocket
	// session needs, in 80 bytes (TestWebSocketLayerSize): an idle WebSocket session
	// costs its TCP twin one size class more. What few sessions need — a fragmented or
	// compressed message in progress, a refused frame to skip, the handshake details
	// once asked for — is in wsRare, made on first use.
	st  *stream[T]
	cfg *WebSocketConfig
	// state: the flags wsText, wsPeerDone, wsClosing and wsWoken, and in its top 16 bits the close
	// code a failure chose before it closed the session (0: the reason's). Any goroutine.
	state atomic.Uint32
	// part: payload bytes of the unfinished frame that textPrefix unmasked and checked
	// (the owner's only).
	part uint32
	// heard: when the client last sent a frame (unix ns); pinged: when an unanswered
	// ping was sent, 0 for none (see pingIdle).
	heard  atomic.Int64
	pinged atomic.Int64
	// ctrl: bytes of control frames queued and not yet written. Their writing does not
	// make the session active (LastActive): a ping the server sends is no sign of life.
	ctrl atomic.Int64

	// The reader's state (the owner's only).
	msgOp   websocket.Opcode // the data message in progress, 0 for none
	msgRsv1 bool             // it is compressed
	discard bool             // out of step with the frames after a header that cannot be followed: drop all
	// Set by the handshake, read-only after it.
	compressed bool  // permessage-deflate was negotiated
	sub        uint8 // 1 + the index in cfg.Subprotocols of the subprotocol chosen; 0 for none
	utf8       websocket.UTF8
	// head is the upgrade request's request line and header fields, less the
	// handshake's own (Upgrade, Connection, Sec-WebSocket-*): what Session.WebSocket
	// parses, if it is ever asked.
	head string
	rare atomic.Pointer[wsRare]
}

// wsRare is the part of a WebSocket session's state that most sessions never need; see
// wsConn.rare.
type wsRare struct {
	// The reader's (the owner's only): the fragments so far (pooled) of a fragmented or
	// compressed message in progress; the bytes of a refused frame still to drop.
	msg  []byte
	skip int64
	// The handshake's details for Session.WebSocket, parsed from head once.
	infoOnce sync.Once
	info     WebSocketInfo
}

// The flags of wsConn.state.
const (
	wsText      = 1 << iota // Send's messages are text
	wsPeerDone              // the client's close frame has arrived (set by the reader; read by wake)
	wsClosing               // our close frame is queued and the reader waits for the client's
	wsWoken                 // the Close's wake has decided whether there is a close handshake (see closeWaits)
	wsCodeShift = 16
)

// closeWaits reports, for a closed session, whether the reader must go on reading: the
// server's close frame is queued and the client's is awaited (wsClosing), or a Close has
// set the reason on another goroutine and its wake has not yet decided whether there is
// a close handshake. In that moment the owner must not finish the session: it would
// close the socket under the close frame that wake is about to queue (the client saw a
// reset, or an end without a close frame, when Shutdown raced a new session).
func (w *wsConn[T]) closeWaits() bool {
	f := w.state.Load()
	return f&wsClosing != 0 || f&wsWoken == 0
}

// is reports whether flag f is set.
func (w *wsConn[T]) is(f uint32) bool { return w.state.Load()&f != 0 }

// set sets or clears flag f and reports whether it was set.
func (w *wsConn[T]) set(f uint32, on bool) bool {
	for {
		old := w.state.Load()
		v := old &^ f
		if on {
			v |= f
		}
		if w.state.CompareAndSwap(old, v) {
			return old&f != 0
		}
	}
}

// chooseCode records the close code of a failure, unless one was recorded already.
func (w *wsConn[T]) chooseCode(code websocket.CloseCode) {
	for {
		old := w.state.Load()
		if old>>wsCodeShift != 0 || w.state.CompareAndSwap(old, old|uint32(code)<<wsCodeShift) {
			return
		}
	}
}

// chosenCode returns the close code a failure recorded, 0 for none.
func (w *wsConn[T]) chosenCode() websocket.CloseCode {
	return websocket.CloseCode(w.state.Load() >> wsCodeShift)
}

// rareState returns the session's wsRare, made on first use (by the owner or by
// Session.WebSocket from any goroutine).
func (w *wsConn[T]) rareState() *wsRare {
	if r := w.rare.Load(); r != nil {
		return r
	}
	r := new(wsRare)
	if w.rare.CompareAndSwap(nil, r) {
		return r
	}
	return w.rare.Load()
}

// pending returns the fragments gathered so far of the message in progress (the owner's
// only).
func (w *wsConn[T]) pending() []byte {
	if r := w.rare.Load(); r != nil {
		return r.msg
	}
	return nil
}

// skipping returns the bytes of a refused frame still to drop (the owner's only).
func (w *wsConn[T]) skipping() int64 {
	if r := w.rare.Load(); r != nil {
		return r.skip
	}
	return 0
}

// setSkip sets the bytes of a refused frame still to drop.
func (w *wsConn[T]) setSkip(n int64) {
	if n != 0 || w.rare.Load() != nil {
		w.rareState().skip = n
	}
}

// limit is the largest message the session takes (MaxRequestLength).
func (w *wsConn[T]) limit() int64 { return int64(w.st.s.srv.cfg.MaxRequestLength) }

// received handles the bytes read (pending after what earlier reads left) and returns
// what stays pending, like Session.dispatch.
//
// A frame the reader refuses closes the session, and the reader goes on to the frames
// after it, which it skips — data, pings and further refusals — until the client's close
// frame ends the close handshake. Only a header that cannot be followed (a length over
// the limit, a malformed length) leaves the reader out of step with the frames: it then
// discards everything until the connection ends or CloseTimeout passes, buffering
// nothing.
func (w *wsConn[T]) received(buf []byte, minCap int) []byte {
	s := w.st.s
	if w.cfg.PingInterval > 0 { // only pings read them: no clock read per read without
		w.heard.Store(time.Now().UnixNano())
		w.pinged.Store(0)
	}
	data := buf
	for len(data) > 0 && !w.is(wsPeerDone) {
		if s.closed.Load() != 0 && !w.closeWaits() {
			break
		}
		if w.discard {
			data = data[len(data):]
			break
		}
		if skip := w.skipping(); skip > 0 {
			k := int(min(skip, int64(len(data))))
			data = data[k:]
			w.setSkip(skip - int64(k))
			continue
		}
		// A data frame may bring the message up to the limit. A control frame's length
		// is check's to refuse (over 125 bytes: 1002, from the header), which keeps
		// the reader in step with the frames.
		limit := w.limit() - int64(len(w.pending()))
		if websocket.Opcode(data[0] & 0x0F).IsControl() {
			limit = math.MaxInt64
		}
		h, hn, err := websocket.ParseHeader(data, limit)
		if err != nil {
			w.discard = true
			if s.closed.Load() == 0 {
				w.failFrame(err)
			}
			continue
		}
		if hn == 0 {
			break // the rest of the header has not arrived
		}
		if err := w.check(&h); err != nil {
			// Refused on its header alone, before its payload is buffered.
			data, w.part = data[hn:], 0
			w.setSkip(h.Length)
			if s.closed.Load() == 0 {
				w.failFrame(err)
			}
			continue
		}
		if int64(len(data)-hn) < h.Length {
			// The rest of the frame has not arrived. A text frame's bytes so far are
			// checked now: invalid UTF-8 fails before the rest is buffered.
			if got := data[hn:]; !w.textPrefix(&h, got) {
				data, w.part = data[len(data):], 0
				w.setSkip(h.Length - int64(len(got)))
				w.fail(websocket.CloseInvalidPayload, "a text message is not valid UTF-8")
			}
			break
		}
		payload := data[hn : hn+int(h.Length)]
		data = data[hn+int(h.Length):]
		done := int(w.part) // bytes of payload textPrefix already unmasked and checked
		w.part = 0
		websocket.Mask(h.Key, done, payload[done:])
		if h.Op.IsControl() {
			w.control(h.Op, payload)
			continue
		}
		if s.closed.Load() != 0 {
			continue // closing: data is discarded until the client's close frame
		}
		if len(data) > 0 && !w.st.held {
			w.st.hold() // more frames follow in this read: their replies leave together
		}
		if h.Fin && h.Rsv == 0 && h.Op != websocket.OpContinuation {
			// The common case: a whole, uncompressed message (check refused a new one
			// inside a fragmented message), dispatched from the read buffer itself, and
			// from this frame: the stack under the handler stays shallow (see send).
			if h.Op != websocket.OpText || w.wholeText(payload[done:], done == 0) {
				s.dispatchMessage(payload)
			}
			continue
		}
		w.data(&h, payload, done)
	}
	if len(data) == 0 || w.is(wsPeerDone) || s.closed.Load() != 0 && !w.closeWaits() {
		pool.Put(buf)
		return nil
	}
	// The buffer grows to hold one whole frame: a payload of up to the limit (or a
	// control frame's 125 bytes) and its header.
	return pool.Compact(buf, data, minCap, int(max(w.limit(), websocket.MaxControlPayload))+websocket.MaxHeaderLen)
}

// textPrefix unmasks and checks the UTF-8 of the bytes of an unfinished frame that have
// arrived (got, after its header), if it is a frame of an uncompressed text message. It
// reports false for bytes that cannot begin valid UTF-8. w.part counts what it has done,
// for the next call and for the frame's completion.
func (w *wsConn[T]) textPrefix(h *websocket.Header, got []byte) bool {
	text := h.Op == websocket.OpText && h.Rsv == 0 ||
		h.Op == websocket.OpContinuation && w.msgOp == websocket.OpText && !w.msgRsv1
	if !text || len(got) <= int(w.part) || w.st.s.closed.Load() != 0 {
		return true
	}
	if len(got) > math.MaxUint32 {
		return true // a frame past 4 GiB is checked when it is complete
	}
	if w.part == 0 && h.Op == websocket.OpText {
		w.utf8.Reset() // the message's first bytes (data does not reset it again)
	}
	websocket.Mask(h.Key, int(w.part), got[w.part:])
	ok := w.utf8.Write(got[w.part:])
	w.part = uint32(len(got))
	return ok
}

// check applies RFC 6455's rules to a frame header in the reader's state.
func (w *wsConn[T]) check(h *websocket.Header) error {
	switch {
	case !h.Masked:
		return wsFail(websocket.CloseProtocolError, "a client frame is not masked")
	case h.Op.IsReserved():
		return wsFail(websocket.CloseProtocolError, fmt.Sprintf("reserved opcode %#x", h.Op))
	case h.Rsv&^websocket.Rsv1 != 0:
		return wsFail(websocket.CloseProtocolError, "reserved bits RSV2/RSV3 set")
	}
	if h.Op.IsControl() {
		switch {
		case !h.Fin:
			return wsFail(websocket.CloseProtocolError, "a fragmented control frame")
		case h.Length > websocket.MaxControlPayload:
			return wsFail(websocket.CloseProtocolError, fmt.Sprintf("a %d-byte control frame (the limit is 125)", h.Length))
		case h.Rsv != 0:
			return wsFail(websocket.CloseProtocolError, "RSV1 on a control frame")
		}
		return nil
	}
	switch {
	case h.Op == websocket.OpContinuation && w.msgOp == 0:
		return wsFail(websocket.CloseProtocolError, "a continuation frame without a message to continue")
	case h.Op != websocket.OpContinuation && w.msgOp != 0:
		return wsFail(websocket.CloseProtocolError, "a new message inside a fragmented one")
	case h.Rsv != 0 && (!w.compressed || h.Op == websocket.OpContinuation):
		return wsFail(websocket.CloseProtocolError, "RSV1 set without permessage-deflate on a message's first frame")
	}
	return nil
}

// wholeText checks the UTF-8 of an unfragmented text message's rest, the bytes textPrefix
// did not check (all of it when fresh), and fails the session if it is not valid.
func (w *wsConn[T]) wholeText(rest []byte, fresh bool) bool {
	if fresh {
		w.utf8.Reset()
	}
	if w.utf8.Write(rest) && w.utf8.Complete() {
		return true
	}
	w.fail(websocket.CloseInvalidPayload, "a text message is not valid UTF-8")
	return false
}

// data handles one frame of a fragmented or compressed message, its payload already
// unmasked; its first done bytes have been checked as UTF-8 already (see textPrefix).
func (w *wsConn[T]) data(h *websocket.Header, payload []byte, done int) {
	s := w.st.s
	if h.Op != websocket.OpContinuation {
		w.msgOp, w.msgRsv1 = h.Op, h.Rsv&websocket.Rsv1 != 0
		if done == 0 {
			w.utf8.Reset()
		}
	}
	if w.msgOp == websocket.OpText && !w.msgRsv1 && !w.utf8.Write(payload[done:]) {
		w.fail(websocket.CloseInvalidPayload, "a text message is not valid UTF-8")
		return
	}
	r := w.rareState()
	if r.msg == nil {
		r.msg = pool.Get(max(len(payload), 512))[:0]
	}
	r.msg = append(r.msg, payload...) // bounded: the header was parsed against limit - len(msg)
	if !h.Fin {
		return
	}
	msg, op := r.msg, w.msgOp
	w.msgOp = 0
	if w.msgRsv1 {
		inflated, err := inflate(msg, int(w.limit()))
		pool.Put(msg)
		r.msg = nil
		if err != nil {
			if errors.Is(err, errInflateTooLarge) {
				w.fail(websocket.CloseMessageTooBig, err.Error())
			} else {
				w.fail(websocket.CloseInvalidPayload, err.Error())
			}
			return
		}
		msg = inflated
		r.msg = msg
		if op == websocket.OpText && !(w.utf8.Write(msg) && w.utf8.Complete()) {
			w.fail(websocket.CloseInvalidPayload, "a text message is not valid UTF-8")
			return
		}
	} else if op == websocket.OpText && !w.utf8.Complete() {
		w.fail(websocket.CloseInvalidPayload, "a text message ends inside a UTF-8 sequence")
		return
	}
	s.dispatchMessage(msg)
	w.dropMessage()
}

// control handles a control frame, its payload already unmasked.
func (w *wsConn[T]) control(op websocket.Opcode, payload []byte) {
	s := w.st.s
	switch op {
	case websocket.OpPing:
		if s.closed.Load() == 0 {
			w.sendControl(websocket.OpPong, payload)
		}
	case websocket.OpPong:
		// heard and pinged were updated for the whole read.
	case websocket.OpClose:
		w.set(wsPeerDone, true)
		code, _, err := websocket.ParseClose(payload)
		if w.set(wsClosing, false) {
			return // the client's answer to our close: the handshake is complete
		}
		reply := code
		if err != nil {
			var pe *websocket.ProtocolError
			errors.As(err, &pe)
			reply = pe.Code
			s.srv.log.Info("websocket close frame refused; closing session", "session", s.id, "err", err)
		} else if code == websocket.CloseNoStatus {
			reply = websocket.CloseNormal
		}
		var b [2]byte
		w.st.queue.CloseWith(w.frame(websocket.OpClose, websocket.AppendClose(b[:0], reply, "")))
		reason := CloseClientClosing
		if err != nil {
			reason = CloseProtocolError
		}
		s.Close(reason)
		// A Close from another goroutine may have won and begun waiting for the client's
		// close frame: it has come.
		w.set(wsClosing, false)
	}
}

// wsError is a frame the reader refuses, with the close code to answer.
type wsError struct {
	code   websocket.CloseCode
	reason string
}

func (e *wsError) Error() string { return "websocket: " + e.reason }

func wsFail(code websocket.CloseCode, reason string) error { return &wsError{code, reason} }

// failFrame closes the session for a frame that breaks the protocol or the limit.
func (w *wsConn[T]) failFrame(err error) {
	var we *wsError
	var pe *websocket.ProtocolError
	switch {
	case errors.As(err, &we):
		w.fail(we.code, we.reason)
	case errors.As(err, &pe):
		w.fail(pe.Code, pe.Reason)
	case errors.Is(err, websocket.ErrFrameTooLarge):
		w.fail(websocket.CloseMessageTooBig, fmt.Sprintf("%v (MaxRequestLength %d)", err, w.limit()))
	default:
		w.fail(websocket.CloseProtocolError, err.Error())
	}
}

// fail closes the session with CloseProtocolError and the WebSocket close code that
// says why.
func (w *wsConn[T]) fail(code websocket.CloseCode, reason string) {
	s := w.st.s
	w.msgOp = 0
	w.dropMessage()
	s.srv.log.Info("websocket protocol error; closing session", "session", s.id, "remote", s.RemoteAddr().String(),
		"code", code.String(), "err", reason)
	w.chooseCode(code)
	s.Close(CloseProtocolError)
}

// closeCode maps why a session closes to the code of the server's close frame.
func (w *wsConn[T]) closeCode(reason CloseReason) (websocket.CloseCode, string) {
	if c := w.chosenCode(); c != 0 {
		return c, ""
	}
	switch reason {
	case CloseServerShutdown:
		return websocket.CloseGoingAway, "server shutdown"
	case CloseApplicationError, CloseInternalError:
		return websocket.CloseInternalError, ""
	case CloseProtocolError:
		return websocket.CloseProtocolError, ""
	case CloseTimeOut:
		return websocket.CloseNormal, "timeout"
	}
	return websocket.CloseNormal, ""
}

// wake starts the server's side of the close handshake (close protocol step 1 for a
// WebSocket session): a close frame goes after what is queued, within linger, and the
// reader waits up to CloseTimeout for the client's. It reports false when there is no
// handshake to make — the client closed first (its echo is queued) or the socket failed
// — and the stream closes as it would without a WebSocket.
func (w *wsConn[T]) wake(linger time.Duration) bool {
	// Decided: the owner, which may have seen the reason before this ran, may finish the
	// session once there is no handshake to wait for (closeWaits).
	defer w.set(wsWoken, true)
	st := w.st
	reason := st.s.CloseReason()
	if w.is(wsPeerDone) || reason == CloseSocketError || reason == CloseClientClosing {
		return false
	}
	if linger < 0 {
		st.queue.Discard()
	}
	_, queued := st.queue.Len()
	code, text := w.closeCode(reason)
	var b [websocket.MaxControlPayload]byte
	w.set(wsClosing, true)
	if w.is(wsPeerDone) {
		// The client's close frame came meanwhile, and the reader echoed it: nothing to
		// wait for.
		w.set(wsClosing, false)
		return false
	}
	if st.queue.CloseWith(w.frame(websocket.OpClose, websocket.AppendClose(b[:0], code, text))) {
		st.conn.SetWriteDeadline(time.Now().Add(max(linger, w.cfg.CloseTimeout)))
	}
	// The client has CloseTimeout to answer once the close frame is out: behind bytes
	// still queued, that may take up to linger more.
	wait := w.cfg.CloseTimeout
	if linger > 0 && queued > 0 {
		wait += linger
	}
	st.conn.SetReadDeadline(time.Now().Add(wait))
	st.s.srv.unpark(&st.tok)
	return true
}

// staleDeadline reports whether err, which ended a read of the closed session, is a
// deadline set before the Close (the idle one) while the Close's wake has not yet run:
// the reader then reads on, after letting wake's goroutine run, since wake sets the
// deadline that counts.
func (w *wsConn[T]) staleDeadline(err error) bool {
	if w.is(wsWoken) || !errors.Is(err, os.ErrDeadlineExceeded) {
		return false
	}
	runtime.Gosched()
	return true
}

// endCloseWait stops waiting for the client's close frame: the read failed or timed out.
func (w *wsConn[T]) endCloseWait() { w.set(wsClosing, false) }

// release returns the reader's buffers.
func (w *wsConn[T]) release() { w.dropMessage() }

// dropMessage returns the buffer of the message in progress, if any.
func (w *wsConn[T]) dropMessage() {
	if r := w.rare.Load(); r != nil && r.msg != nil {
		pool.Put(r.msg)
		r.msg = nil
	}
}
