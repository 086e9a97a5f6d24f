package supersocket

import (
	"time"

	"github.com/supersocket-go/supersocket/internal/pool"
	"github.com/supersocket-go/supersocket/internal/sendq"
	"github.com/supersocket-go/supersocket/internal/websocket"
)

// maxStackParts is how many parts of a line protocol's message (WebSocketConfig.Lines)
// Send trims without gathering them into one buffer first.
const maxStackParts = 4

// A WebSocket session's Send (stream.send) frames parts as one message (text or binary,
// as the session says), compressed when negotiated and large enough, and queues header
// and payload as one queue message, so a message's frame is never split by another's:
// sendLine for a line protocol's text, else sendBody.
//
// This runs below the handler, at the deepest point of the owner's stack, so its frames
// are kept small: a WebSocket owner whose stack outgrows the goroutine's first 4 KiB
// doubles the stack of every connection in flight (every session waits its parkAfter on
// its goroutine), which showed as 1.4x raw TCP's idle RSS per connection
// (TestOwnerStackFitsIn4KiB). The frame header goes to the queue beside the parts, not
// in an array of parts built here; the rarer cases take frames of their own (noinline,
// so that their arrays stay off the common path's frame).

// sendLine sends a text message of a line protocol without its line ending
// (WebSocketConfig.Lines).
//
//go:noinline
func (w *wsConn[T]) sendLine(parts [][]byte, wait time.Duration) error {
	var trimmed [maxStackParts][]byte
	if len(parts) <= maxStackParts {
		return w.sendBody(trimLineEnding(trimmed[:copy(trimmed[:], parts)]), true, wait)
	}
	gathered := pool.Get(sendq.Size(parts))[:0]
	for _, p := range parts {
		gathered = append(gathered, p...)
	}
	trimmed[0] = gathered
	err := w.sendBody(trimLineEnding(trimmed[:1]), true, wait)
	pool.Put(gathered)
	return err
}

// sendBody frames and queues body, a message's parts, as a text or a binary message.
func (w *wsConn[T]) sendBody(body [][]byte, text bool, wait time.Duration) error {
	op, rsv, n, compressed, err := w.prepare(body, text)
	if err != nil {
		return err
	}
	if compressed != nil {
		return w.sendCompressed(op, compressed, wait)
	}
	var hb [websocket.MaxHeaderLen]byte
	return w.st.sendFramed(websocket.AppendHeader(hb[:0], true, rsv, op, n, nil), body, wait)
}

// sendCompressed frames and queues a compressed message, and returns its buffer.
//
//go:noinline
func (w *wsConn[T]) sendCompressed(op websocket.Opcode, compressed []byte, wait time.Duration) error {
	var hb [websocket.MaxHeaderLen]byte
	var one [1][]byte
	one[0] = compressed
	err := w.st.sendFramed(websocket.AppendHeader(hb[:0], true, websocket.Rsv1, op, len(compressed), nil), one[:], wait)
	pool.Put(compressed)
	return err
}

// prepare checks a message's parts and chooses its frame: the opcode, RSV1 and length,
// and the compressed payload (pooled) when it is sent compressed.
func (w *wsConn[T]) prepare(body [][]byte, text bool) (op websocket.Opcode, rsv uint8, n int, compressed []byte, err error) {
	n = sendq.Size(body)
	op = websocket.OpBinary
	if text {
		op = websocket.OpText
		var v websocket.UTF8
		for _, p := range body {
			if !v.Write(p) {
				return 0, 0, 0, nil, ErrInvalidUTF8
			}
		}
		if !v.Complete() {
			return 0, 0, 0, nil, ErrInvalidUTF8
		}
	}
	if w.compressed && n >= w.cfg.CompressionThreshold {
		compressed = deflate(body, n)
		return op, websocket.Rsv1, len(compressed), compressed, nil
	}
	return op, 0, n, nil, nil
}

// trimLineEnding drops one trailing "\n", and a "\r" before it, from the message parts
// make, which it may modify (they are the caller's copy of the slice headers).
func trimLineEnding(parts [][]byte) [][]byte {
	trim := func(c byte) bool {
		for len(parts) > 0 && len(parts[len(parts)-1]) == 0 {
			parts = parts[:len(parts)-1]
		}
		if len(parts) == 0 {
			return false
		}
		last := parts[len(parts)-1]
		if last[len(last)-1] != c {
			return false
		}
		parts[len(parts)-1] = last[:len(last)-1]
		return true
	}
	if trim('\n') {
		trim('\r')
	}
	return parts
}

// sendControl queues a control frame (a pong, a ping). It never waits: a full queue
// drops it, as the client will ask again or time out.
func (w *wsConn[T]) sendControl(op websocket.Opcode, payload []byte) {
	frame := w.frame(op, payload)
	w.ctrl.Add(int64(len(frame[0]) + len(payload)))
	if w.st.queue.Push(frame) != nil {
		w.ctrl.Add(-int64(len(frame[0]) + len(payload)))
	}
}

// frame returns a control frame's header and payload as a queue message.
func (w *wsConn[T]) frame(op websocket.Opcode, payload []byte) [][]byte {
	return [][]byte{websocket.AppendHeader(make([]byte, 0, websocket.MaxHeaderLen), true, 0, op, len(payload), nil), payload}
}

// activity reports whether writing n bytes was more than the control frames queued: a
// write of control frames alone is no sign of the application's activity.
func (w *wsConn[T]) activity(n int64) bool {
	for {
		c := w.ctrl.Load()
		if c == 0 {
			return true
		}
		if w.ctrl.CompareAndSwap(c, max(c-n, 0)) {
			return n > c
		}
	}
}

// pingIdle pings the session if it has sent nothing for PingInterval, and closes it
// with CloseTimeOut if an earlier ping went unanswered for PongTimeout. The server's
// idle scan calls it.
func (w *wsConn[T]) pingIdle(now time.Time) {
	if w.cfg.PingInterval <= 0 || w.st.s.closed.Load() != 0 {
		return
	}
	if p := w.pinged.Load(); p != 0 {
		if now.UnixNano()-p >= int64(w.cfg.PongTimeout) {
			w.st.s.srv.log.Debug("websocket ping unanswered; closing session", "session", w.st.s.id)
			w.st.s.Close(CloseTimeOut)
		}
		return
	}
	if now.UnixNano()-w.heard.Load() >= int64(w.cfg.PingInterval) && w.pinged.CompareAndSwap(0, now.UnixNano()) {
		w.sendControl(websocket.OpPing, nil)
	}
}
